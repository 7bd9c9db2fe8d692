//! The typed clients alone: Hashnode's errors inside `200` answers read into the layers'
//! failure classes (never a silent success), DEV's refusals, what may have been applied.

use std::time::Duration;

use bytes::Bytes;
use unattended_client::{Client, ServiceConfig};
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_engine_blog::api::{ApiError, Dev, Draft, Hashnode};
use unattended_engine_blog::{Post, Target};
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_token::{Placement, StaticToken};

fn clock() -> Clock {
    Clock::starting_at("2026-12-01T10:00:00Z".parse().unwrap())
}

fn client<T>(base: &str, header: &str, token: &str, transport: T) -> Client
where
    T: tower::Service<
            http::Request<unattended_client::RequestBody>,
            Response = http::Response<unattended_testkit::body::MockBody>,
            Error = unattended_core::BoxError,
        > + Clone
        + Send
        + Sync
        + 'static,
    T::Future: Send + 'static,
{
    let config = ServiceConfig::from_toml(&format!("base_url = \"{base}\"")).unwrap();
    Client::builder(config)
        .clock(clock())
        .seed(1)
        .token_source(StaticToken::new(token), Placement::header(header.parse().unwrap()))
        .build_with(transport)
        .unwrap()
}

fn draft(title: &str) -> Draft {
    let text = format!("---\ntitle: \"{title}\"\ntags: [Rust Lang]\n---\nHello.\n");
    let post = Post::parse("p.md".as_ref(), "p.md", &text, &[Target::Dev]).unwrap().unwrap();
    Draft::new(&post, Some("https://dev.to/u/p-1"))
}

fn hashnode(mock: &unattended_testkit::hashnode::Hashnode, token: &str) -> Hashnode {
    let publication = mock.publication("blog.example.dev");
    let client = client("https://gql.hashnode.com", "authorization", token, mock.clone());
    Hashnode::new(client, publication, clock())
}

#[tokio::test(start_paused = true)]
async fn hashnode_errors_in_200_answers_are_the_layers_failure_classes() {
    let now = clock(); // made at the start, like the others: reads the paused time
    let mock = unattended_testkit::hashnode::Hashnode::new(clock(), 1);
    mock.token("pat");
    let api = hashnode(&mock, "pat");

    let published = api.create(&draft("First")).await.unwrap();
    assert_eq!(published.url, "https://blog.example.dev/first");
    let post = &mock.posts()[0];
    assert_eq!(post["canonicalUrl"], "https://dev.to/u/p-1");
    assert_eq!(post["tags"][0]["slug"], "rust-lang");
    assert!(post["content"]["markdown"].as_str().unwrap().ends_with("-->\n"));

    // Validation: the post fails with Hashnode's message.
    let err = api.create(&draft("")).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Rejected { message, .. } if message == "Title is required"),
        "{err}"
    );
    assert!(err.is_about_the_post() && !err.may_have_applied());

    // Throttled: retry at the time Hashnode gave, else a minute on.
    mock.limits(1, 100);
    clock().sleep(Duration::from_secs(61)).await;
    api.create(&draft("Second")).await.unwrap();
    let err = api.create(&draft("Third")).await.unwrap_err();
    let at = now.wall();
    assert_eq!(
        err.disposition(),
        Disposition::RetryAt(at.checked_add(Duration::from_secs(60)).unwrap())
    );
    assert!(!err.may_have_applied());
    mock.limits(500, 100);
    mock.fault(Route::any("/"), Trigger::Nth(1, 1), Fault::GraphQlError("TOO_MANY_REQUESTS"));
    let err = api.create(&draft("Third")).await.unwrap_err();
    assert!(matches!(err, ApiError::Throttled { .. }));
    assert_eq!(
        err.disposition(),
        Disposition::RetryAt(at.checked_add(Duration::from_secs(60)).unwrap())
    );

    // Failed inside: unknown whether it was applied.
    mock.fault(Route::any("/"), Trigger::Nth(1, 1), Fault::GraphQlError("INTERNAL_SERVER_ERROR"));
    let err = api.create(&draft("Fourth")).await.unwrap_err();
    assert!(matches!(&err, ApiError::Server { code, .. } if code == "INTERNAL_SERVER_ERROR"));
    assert!(err.may_have_applied());
    assert_eq!(err.disposition(), Disposition::RetryAt(now.wall()));

    // Gone, and revoked.
    let err = api.update("0000", &draft("x")).await.unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err}");
    assert!(err.is_about_the_post(), "the copy is gone: a new one when the file changes");
    // A publication that is not there is the settings' fault, not the post's.
    let client = client("https://gql.hashnode.com", "authorization", "pat", mock.clone());
    let elsewhere = Hashnode::new(client, "0123456789abcdef01234567", clock());
    let err = elsewhere.create(&draft("Nowhere")).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Publication { publication, message, .. }
            if publication == "0123456789abcdef01234567" && message == "Publication not found"),
        "{err}"
    );
    assert!(!err.is_about_the_post() && !err.may_have_applied());
    assert_eq!(err.disposition(), Disposition::Stop);
    mock.revoke("pat");
    let err = api.create(&draft("Fifth")).await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthenticated { .. }));
    assert_eq!(err.disposition(), Disposition::Reauthorize);
    assert!(!err.may_have_applied());
    assert_eq!(mock.titles(), ["First", "Second"]);
}

/// A transport that answers every request with `status` and `body`.
fn scripted(
    status: u16,
    body: &'static str,
) -> impl tower::Service<
    http::Request<unattended_client::RequestBody>,
    Response = http::Response<unattended_testkit::body::MockBody>,
    Error = unattended_core::BoxError,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |_req: http::Request<unattended_client::RequestBody>| async move {
        let mut res =
            http::Response::new(unattended_testkit::body::MockBody::full(Bytes::from(body)));
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Ok::<_, unattended_core::BoxError>(res)
    })
}

#[tokio::test(start_paused = true)]
async fn a_5xx_answer_to_a_create_may_have_been_applied() {
    // The client turns the 5xx of passing failures (500, 502, 503, 504) into errors; the
    // others reach the typed clients as answers, and prove no more.
    for (status, body) in [(501, "<html>Not Implemented</html>"), (507, "{}")] {
        let dev =
            Dev::new(client("https://dev.to", "api-key", "k", scripted(status, body)), clock());
        let hashnode = Hashnode::new(
            client("https://gql.hashnode.com", "authorization", "t", scripted(status, body)),
            "pub",
            clock(),
        );
        for err in [
            dev.create(&draft("x")).await.unwrap_err(),
            hashnode.create(&draft("x")).await.unwrap_err(),
        ] {
            let code = format!("HTTP {status}");
            assert!(matches!(&err, ApiError::Server { code: c, .. } if *c == code), "{err}");
            assert!(err.may_have_applied(), "{err}: look before creating again");
            assert_eq!(err.disposition(), Disposition::RetryAt(clock().wall()), "{err}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_the_post_is_never_taken_for_a_success() {
    let answers = [
        (200, r#"{"data":null}"#),
        (200, r#"{"data":{"publishPost":null}}"#),
        (200, r#"{"data":{"publishPost":{"post":null}}}"#),
        (200, r#"{}"#),
        (200, "<html>oops</html>"),
        (200, r#"{"errors":[{"message":"who knows"}]}"#),
        (
            400,
            r#"{"errors":[{"message":"Cannot query field","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}]}"#,
        ),
    ];
    for (status, body) in answers {
        let api = Hashnode::new(
            client("https://gql.hashnode.com", "authorization", "t", scripted(status, body)),
            "pub",
            clock(),
        );
        let err = api.create(&draft("x")).await.unwrap_err();
        if status == 400 {
            assert!(matches!(err, ApiError::Refused { status: 400, .. }), "{body}: {err}");
            assert_eq!(err.disposition(), Disposition::Stop, "a bug to report");
        } else {
            assert!(
                matches!(err, ApiError::Unreadable { .. } | ApiError::Server { .. }),
                "{body}: {err}"
            );
            assert!(err.may_have_applied(), "{body}: look before creating again");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn dev_refusals_say_what_they_are() {
    let mock = DevTo::new(clock(), 1);
    let key = mock.key("k");
    let api = Dev::new(client("https://dev.to", "api-key", &key, mock.clone()), clock());
    let created = api.create(&draft("Once")).await.unwrap();
    assert_eq!(api.find(&marker_of(&mock)).await.unwrap(), Some(created.clone()));
    clock().sleep(Duration::from_secs(1)).await;
    let err = api.create(&draft("Once")).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Taken { message, .. } if message.contains("already been taken")),
        "{err}"
    );
    assert!(err.may_have_applied(), "a copy is there: look");
    clock().sleep(Duration::from_secs(1)).await;
    let err = api.create(&draft("")).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Rejected { message, .. } if message == "Title can't be blank"),
        "{err}"
    );
    clock().sleep(Duration::from_secs(1)).await;
    let err = api.update("1", &draft("x")).await.unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err}");
    mock.revoke(&key);
    clock().sleep(Duration::from_secs(1)).await;
    let err = api.create(&draft("Later")).await.unwrap_err();
    assert_eq!(err.disposition(), Disposition::Reauthorize, "{err}");
    assert!(!err.may_have_applied());
}

fn marker_of(mock: &DevTo) -> String {
    let body = mock.articles()[0]["body_markdown"].as_str().unwrap().to_owned();
    unattended_engine_blog::api::marker_in(&body).unwrap().to_owned()
}
