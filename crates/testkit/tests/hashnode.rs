//! The Hashnode mock: GraphQL answers holding what was selected, errors inside `200` answers,
//! per-token limits, faults in-process and over a socket.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;
use unattended_core::{BoxError, Clock};
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::hashnode::Hashnode;

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

const PUBLISH: &str = "mutation P($input: PublishPostInput!) { publishPost(input: $input) { post { id slug url canonicalUrl title tags { slug } } } }";

fn gql(token: Option<&str>, query: &str, variables: &Value) -> Request<Full<Bytes>> {
    let mut req = Request::post("https://gql.hashnode.com/");
    if let Some(token) = token {
        req = req.header("authorization", token);
    }
    let body = json!({ "query": query, "variables": variables }).to_string();
    req.header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap()
}

async fn call(
    mock: &Hashnode,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, http::HeaderMap, Value), BoxError> {
    let res = mock.clone().oneshot(req).await?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Ok((parts.status, parts.headers, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn input(publication: &str, title: &str) -> Value {
    json!({"input": {"title": title, "contentMarkdown": "Hello", "publicationId": publication,
        "tags": [{"slug": "rust", "name": "Rust"}], "originalArticleURL": "https://dev.to/u/a-1"}})
}

#[tokio::test(start_paused = true)]
async fn publishing_updating_and_listing_follow_hashnode() {
    let mock = Hashnode::new(clock(), 1);
    let token = mock.token("pat-1");
    let publication = mock.publication("blog.example.dev");

    let (status, _, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "Hello world"))).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let post = &body["data"]["publishPost"]["post"];
    assert_eq!(post["slug"], "hello-world");
    assert_eq!(post["url"], "https://blog.example.dev/hello-world");
    assert_eq!(post["canonicalUrl"], "https://dev.to/u/a-1");
    assert_eq!(post["tags"], json!([{"slug": "rust"}]), "only what was selected");
    assert!(post.get("content").is_none());
    let id = post["id"].as_str().unwrap().to_owned();

    // No duplicate guard: the same input again is a second post, with a free slug.
    let (_, _, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "Hello world"))).await.unwrap();
    assert_eq!(body["data"]["publishPost"]["post"]["slug"], "hello-world-1");
    assert_eq!(mock.titles(), ["Hello world", "Hello world"]);

    let update = "mutation U($input: UpdatePostInput!) { updatePost(input: $input) { post { id title content { markdown } } } }";
    let vars = json!({"input": {"id": id, "title": "Renamed", "contentMarkdown": "Bye"}});
    let (_, _, body) = call(&mock, gql(Some(&token), update, &vars)).await.unwrap();
    assert_eq!(
        body["data"]["updatePost"]["post"],
        json!({"id": id, "title": "Renamed", "content": {"markdown": "Bye"}})
    );
    let vars = json!({"input": {"id": "nope", "title": "x"}});
    let (status, _, body) = call(&mock, gql(Some(&token), update, &vars)).await.unwrap();
    assert_eq!(status, StatusCode::OK, "errors come in 200 answers");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(body["data"], Value::Null);

    let list = "query L($page: Int!) { me { username posts(pageSize: 1, page: $page) { nodes { title } pageInfo { hasNextPage nextPage } totalDocuments } } }";
    let (_, _, body) = call(&mock, gql(Some(&token), list, &json!({"page": 1}))).await.unwrap();
    let posts = &body["data"]["me"]["posts"];
    assert_eq!(posts["nodes"], json!([{"title": "Hello world"}]), "newest first");
    assert_eq!(posts["pageInfo"], json!({"hasNextPage": true, "nextPage": 2}));
    assert_eq!(posts["totalDocuments"], 2);
    let (_, _, body) = call(&mock, gql(Some(&token), list, &json!({"page": 2}))).await.unwrap();
    assert_eq!(body["data"]["me"]["posts"]["nodes"], json!([{"title": "Renamed"}]));
    assert_eq!(body["data"]["me"]["posts"]["pageInfo"]["hasNextPage"], false);

    let big = "{ me { posts(pageSize: 50, page: 1) { nodes { id } } } }";
    let (_, _, body) = call(&mock, gql(Some(&token), big, &json!({}))).await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // The log never holds the token.
    assert_eq!(mock.log().all()[0].headers, [("authorization", "[present]".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn errors_are_graphql_errors_with_codes() {
    let mock = Hashnode::new(clock(), 1);
    let token = mock.token("pat-1");
    let publication = mock.publication("blog.example.dev");

    // No token, or a revoked one: 200 with UNAUTHENTICATED, nothing done.
    let (status, _, body) =
        call(&mock, gql(None, PUBLISH, &input(&publication, "t"))).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["path"], json!(["publishPost"]));
    mock.revoke(&token);
    let (_, _, body) =
        call(&mock, gql(Some(&token), "{ me { username } }", &json!({}))).await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let token = mock.token("pat-2");

    // Validation of the input: the reason as the message.
    let mut bad = input(&publication, " ");
    let (_, _, body) = call(&mock, gql(Some(&token), PUBLISH, &bad)).await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["message"], "Title is required");
    bad["input"]["title"] = "ok".into();
    bad["input"]["originalArticleURL"] = "not a url".into();
    let (_, _, body) = call(&mock, gql(Some(&token), PUBLISH, &bad)).await.unwrap();
    assert_eq!(body["errors"][0]["message"], "originalArticleURL must be a valid URL");
    let (_, _, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input("000000000000000000000000", "t")))
            .await
            .unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");

    // A query the schema does not have, or that does not parse: 400, before anything runs.
    let (status, _, body) = call(
        &mock,
        gql(
            Some(&token),
            "mutation P($input: PublishPostInput!) { publishPost(input: $input) { post { id nope } } }",
            &input(&publication, "t"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(body["errors"][0]["message"], "Cannot query field \"nope\" on type \"Post\".");
    let (status, _, body) =
        call(&mock, gql(Some(&token), "{ me { posts { nodes { id } } } }", &json!({})))
            .await
            .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("\"pageSize\""));
    let (status, _, body) = call(&mock, gql(Some(&token), "{ me { ", &json!({}))).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    let req = Request::post("/").body(Full::new(Bytes::from_static(b"not json"))).unwrap();
    assert_eq!(call(&mock, req).await.unwrap().0, StatusCode::BAD_REQUEST);
    assert!(mock.titles().is_empty(), "nothing refused was applied");
}

#[tokio::test(start_paused = true)]
async fn mutations_are_limited_per_token_per_minute() {
    let mock = Hashnode::new(clock(), 1);
    mock.limits(3, 100);
    let token = mock.token("pat");
    let publication = mock.publication("b.dev");
    for n in 0..3 {
        let (_, _, body) =
            call(&mock, gql(Some(&token), PUBLISH, &input(&publication, &format!("p{n}"))))
                .await
                .unwrap();
        assert!(body["errors"].is_null(), "{body}");
        clock().sleep(Duration::from_secs(10)).await;
    }
    let (status, headers, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "p3"))).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["errors"][0]["extensions"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(headers["retry-after"], "30", "the first of the minute's three frees up then");
    // Queries have their own limit.
    let (_, _, body) =
        call(&mock, gql(Some(&token), "{ me { username } }", &json!({}))).await.unwrap();
    assert_eq!(body["data"]["me"]["username"], "test-user");
    clock().sleep(Duration::from_secs(30)).await;
    let (_, _, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "p3"))).await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(mock.titles().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn faults_give_hashnode_errors_or_lose_the_answer_after_the_write() {
    let mock = Hashnode::new(clock(), 1);
    let token = mock.token("pat");
    let publication = mock.publication("b.dev");
    let all = Route::any("/");
    mock.fault(all.clone(), Trigger::Nth(1, 1), Fault::GraphQlError("INTERNAL_SERVER_ERROR"));
    mock.fault(all.clone(), Trigger::Nth(2, 2), Fault::CommitThenDrop);
    mock.fault(all.clone(), Trigger::Nth(3, 3), Fault::RateLimited(None));
    let (status, _, body) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "a"))).await.unwrap();
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (StatusCode::OK, &json!("INTERNAL_SERVER_ERROR"))
    );
    assert!(mock.titles().is_empty(), "an injected error applies nothing");
    let lost = call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "b"))).await;
    assert!(lost.is_err(), "the answer is lost");
    assert_eq!(mock.titles(), ["b"], "after the write");
    let (status, _, _) =
        call(&mock, gql(Some(&token), PUBLISH, &input(&publication, "c"))).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the edge's own throttle");
    mock.fault(all.clone(), Trigger::Nth(1, 1), Fault::CommitThenStatus(502));
    clock().sleep(Duration::from_secs(1)).await;
    let res = mock.clone().oneshot(gql(Some(&token), PUBLISH, &input(&publication, "d"))).await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let page = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("<html>"), "a proxy's page, not GraphQL");
    assert_eq!(mock.titles(), ["b", "d"], "applied all the same");
    let faulted = mock.log().faulted();
    assert_eq!(faulted.len(), 4);
    assert_eq!(
        (faulted[3].fault, faulted[3].status),
        (Some("commit_then_status"), Some(StatusCode::BAD_GATEWAY))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_socket_with_the_same_state() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use unattended_testkit::serve::serve;

    let mock = Hashnode::new(Clock::system(), 1);
    let token = mock.token("pat");
    let publication = mock.publication("b.dev");
    mock.fault(Route::any("/"), Trigger::Nth(1, 1), Fault::CommitThenDrop);
    let served = serve(mock.clone()).await.unwrap();
    let send = |req: Request<Full<Bytes>>| {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let (mut parts, body) = req.into_parts();
        parts.uri = format!("{}/", served.url()).parse().unwrap();
        client.request(Request::from_parts(parts, body))
    };
    assert!(send(gql(Some(&token), PUBLISH, &input(&publication, "a"))).await.is_err());
    assert_eq!(mock.titles(), ["a"], "applied, the connection dropped");
    let res = send(gql(Some(&token), PUBLISH, &input(&publication, "b"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["data"]["publishPost"]["post"]["slug"], "b");
    assert_eq!(mock.titles(), ["a", "b"]);
}
