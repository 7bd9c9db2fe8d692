//! The DEV mock: Forem's answers, its faults in-process and over a socket, determinism.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use unattended_core::{BoxError, Clock};
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

fn post(key: &str, article: &serde_json::Value) -> Request<Full<Bytes>> {
    Request::post("https://dev.to/api/articles")
        .header("api-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::json!({ "article": article }).to_string())))
        .unwrap()
}

fn get(key: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://dev.to{path}"))
        .header("api-key", key)
        .body(Full::default())
        .unwrap()
}

async fn call(
    mock: &DevTo,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, http::HeaderMap, String), BoxError> {
    let res = mock.clone().oneshot(req).await?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Ok((parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned()))
}

fn article(title: &str) -> serde_json::Value {
    serde_json::json!({"title": title, "body_markdown": "Hello", "published": true,
        "canonical_url": format!("https://blog.example/{title}"), "tags": ["rust"]})
}

#[tokio::test(start_paused = true)]
async fn publishing_follows_forem() {
    let mock = DevTo::new(clock(), 1);
    let key = mock.key("k1");
    let (status, headers, body) = call(&mock, post(&key, &article("first"))).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers["location"].to_str().unwrap().starts_with("https://dev.to/test-user/first-"));
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["published_at"], "2026-11-28T10:00:00Z");

    // One write per second per key: the next one at once is throttled.
    let (status, headers, body) = call(&mock, post(&key, &article("second"))).await.unwrap();
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap(), body.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "1", "Retry later\n")
    );
    clock().sleep(Duration::from_secs(1)).await;

    // The same title and body again: a replayed POST is refused.
    let (status, _, body) = call(&mock, post(&key, &article("first"))).await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("has already been taken"), "{body}");
    clock().sleep(Duration::from_secs(1)).await;
    let mut other = article("other");
    other["canonical_url"] = "https://blog.example/first".into();
    let (status, _, body) = call(&mock, post(&key, &other)).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":"Canonical url has already been taken","status":422}"#
        )
    );

    let (status, _, body) =
        call(&mock, get(&key, "/api/articles/me/all?per_page=10")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_u64().unwrap();

    clock().sleep(Duration::from_secs(1)).await;
    let put = Request::put(format!("https://dev.to/api/articles/{id}"))
        .header("api-key", &key)
        .body(Full::new(Bytes::from(r#"{"article":{"title":"renamed"}}"#)))
        .unwrap();
    let (status, _, body) = call(&mock, put).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("renamed"));
    clock().sleep(Duration::from_secs(1)).await;
    let put = Request::put("https://dev.to/api/articles/1")
        .header("api-key", &key)
        .body(Full::new(Bytes::from(r#"{"article":{}}"#)))
        .unwrap();
    let (status, _, body) = call(&mock, put).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, r#"{"error":"not found","status":404}"#)
    );

    let (status, _, body) = call(&mock, post("wrong", &article("x"))).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"unauthorized","status":401}"#)
    );
    clock().sleep(Duration::from_secs(1)).await;
    let bad = Request::post("https://dev.to/api/articles")
        .header("api-key", &key)
        .body(Full::new(Bytes::from(r#"{"article":"text"}"#)))
        .unwrap();
    assert_eq!(call(&mock, bad).await.unwrap().0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mock.titles(), ["renamed"]);
    // The log keeps what the protocol turns on, and never a credential.
    let first = &mock.log().all()[0];
    assert_eq!(first.headers, [("api-key", "[present]".to_owned())]);
    assert!(first.body_len > 0);
}

#[tokio::test(start_paused = true)]
async fn reads_are_throttled_to_three_a_second() {
    let mock = DevTo::new(clock(), 1);
    let key = mock.key("k");
    for _ in 0..3 {
        assert_eq!(call(&mock, get(&key, "/api/articles/me/all")).await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(
        call(&mock, get(&key, "/api/articles/me/all")).await.unwrap().0,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock().sleep(Duration::from_secs(1)).await;
    assert_eq!(call(&mock, get(&key, "/api/articles/me/all")).await.unwrap().0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn each_fault_in_process() {
    let mock = DevTo::new(clock(), 1);
    let key = mock.key("k");
    let reads = Route::of(Method::GET, "/api/articles");
    mock.fault(reads.clone(), Trigger::Nth(1, 1), Fault::Unavailable);
    mock.fault(reads.clone(), Trigger::Nth(2, 2), Fault::RateLimited(Some(RetryAfter::Date(5))));
    mock.fault(reads.clone(), Trigger::Nth(3, 3), Fault::QuotaHeaders { reset: 30 });
    mock.fault(reads.clone(), Trigger::Nth(4, 4), Fault::MalformedJson);
    mock.fault(reads.clone(), Trigger::Nth(5, 5), Fault::Oversized(1 << 20));
    mock.fault(reads.clone(), Trigger::Nth(6, 6), Fault::Transport);
    let answers: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(call(&mock, get(&key, "/api/articles/me/all")).await);
            clock().sleep(Duration::from_secs(1)).await;
        }
        v
    };
    let (s, _, body) = answers[0].as_ref().unwrap();
    assert_eq!(*s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("<html>"));
    let (s, h, _) = answers[1].as_ref().unwrap();
    assert_eq!(
        (*s, h["retry-after"].to_str().unwrap()),
        (StatusCode::TOO_MANY_REQUESTS, "Sat, 28 Nov 2026 10:00:06 GMT")
    );
    let (_, h, _) = answers[2].as_ref().unwrap();
    assert_eq!(h["ratelimit"].to_str().unwrap(), "\"default\";r=0;t=30");
    assert!(serde_json::from_str::<serde_json::Value>(&answers[3].as_ref().unwrap().2).is_err());
    assert_eq!(answers[4].as_ref().unwrap().2.len(), 1 << 20);
    let err = answers[5].as_ref().unwrap_err();
    assert_eq!(
        err.downcast_ref::<std::io::Error>().unwrap().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert_eq!(mock.log().faulted().len(), 6);

    // Commit then drop: the article is stored, the answer is lost.
    mock.fault(Route::of(Method::POST, "/api/articles"), Trigger::Nth(1, 1), Fault::CommitThenDrop);
    assert!(call(&mock, post(&key, &article("lost"))).await.is_err());
    assert_eq!(mock.titles(), ["lost"]);

    // A hang never answers; a slow body arrives over time.
    let slow = DevTo::new(clock(), 1);
    let key = slow.key("k");
    slow.fault(Route::any("/"), Trigger::Nth(1, 1), Fault::Hang);
    slow.fault(
        Route::any("/"),
        Trigger::Nth(2, 2),
        Fault::SlowBody { every: Duration::from_millis(500) },
    );
    let hung = clock()
        .timeout(Duration::from_secs(60), call(&slow, get(&key, "/api/articles/me/all")))
        .await;
    assert!(hung.is_err(), "no answer in 60 s");
    let start = clock().now();
    let (_, _, body) = call(&slow, get(&key, "/api/articles/me/all")).await.unwrap();
    assert_eq!(body, "{\"slow\":true}");
    assert_eq!(clock().now() - start, Duration::from_secs(2), "4 pieces, 500 ms apart");
}

#[tokio::test(start_paused = true)]
async fn a_seeded_plan_gives_the_same_log_twice() {
    async fn run(seed: u64) -> Vec<Option<&'static str>> {
        let mock = DevTo::new(clock(), seed);
        let key = mock.key("k");
        mock.fault(Route::any("/"), Trigger::Chance(0.3), Fault::Unavailable);
        for _ in 0..40 {
            let _ = call(&mock, get(&key, "/api/articles/me/all")).await;
            clock().sleep(Duration::from_millis(400)).await;
        }
        mock.log().all().into_iter().map(|r| r.fault).collect()
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert_ne!(first, run(43).await);
    let fired = first.iter().filter(|f| f.is_some()).count();
    assert!((4..=20).contains(&fired), "{fired} of 40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_socket_with_the_same_state() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use unattended_testkit::serve::serve;

    let mock = DevTo::new(Clock::system(), 1);
    let key = mock.key("k");
    mock.fault(Route::of(Method::GET, "/api/articles"), Trigger::Nth(1, 1), Fault::Transport);
    mock.fault(Route::of(Method::GET, "/api/articles"), Trigger::Nth(2, 2), Fault::Hang);
    let served = serve(mock.clone()).await.unwrap();
    // A new connection per request, so a dropped one is not reused.
    let send = |req: Request<Full<Bytes>>| {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().unwrap().as_str().to_owned();
        parts.uri = format!("{}{path}", served.url()).parse().unwrap();
        client.request(Request::from_parts(parts, body))
    };
    let res = send(post(&key, &article("over-socket"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(mock.titles(), ["over-socket"], "one state for both modes");
    assert!(send(get(&key, "/api/articles/me/all")).await.is_err(), "the connection was dropped");
    let hung = Clock::system()
        .timeout(Duration::from_millis(300), send(get(&key, "/api/articles/me/all")))
        .await;
    assert!(hung.is_err(), "the hang held the connection without an answer");
    let res = send(get(&key, "/api/articles/me/all")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn revoked_keys_hung_commits_and_updates_that_keep_the_url() {
    let mock = DevTo::new(clock(), 1);
    let key = mock.key("k");
    let (_, _, body) = call(&mock, post(&key, &article("kept"))).await.unwrap();
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    clock().sleep(Duration::from_secs(1)).await;
    let id = created["id"].as_u64().unwrap();
    let put = Request::put(format!("https://dev.to/api/articles/{id}"))
        .header("api-key", &key)
        .body(Full::new(Bytes::from(
            r#"{"article":{"title":"renamed","canonical_url":"https://blog.example/x","tags":["a","b"]}}"#,
        )))
        .unwrap();
    let (_, _, body) = call(&mock, put).await.unwrap();
    let updated: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(updated["url"], created["url"], "the URL made at creation stays");
    assert_eq!(updated["canonical_url"], "https://blog.example/x");
    assert_eq!(updated["tag_list"], serde_json::json!(["a", "b"]));
    assert_eq!(mock.articles()[0]["title"], "renamed");

    // The write applied, the answer never comes.
    clock().sleep(Duration::from_secs(1)).await;
    mock.fault(Route::of(Method::POST, "/api/articles"), Trigger::Nth(1, 1), Fault::CommitThenHang);
    let hung = clock().timeout(Duration::from_secs(60), call(&mock, post(&key, &article("hung"))));
    assert!(hung.await.is_err(), "no answer in 60 s");
    assert_eq!(mock.titles(), ["renamed", "hung"], "but the article is there");

    mock.revoke(&key);
    let (status, _, _) = call(&mock, get(&key, "/api/articles/me/all")).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
