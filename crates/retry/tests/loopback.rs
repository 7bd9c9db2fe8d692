//! Real sockets on 127.0.0.1, real time, short waits: the layer around hyper-util's client.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use unattended_retry::{Jitter, RetryConfig, RetryLayer};
use unattended_testkit::socket::{Reply, ScriptedServer};

/// Short backoff; `attempt_timeout` generous enough that a loaded machine never times out a
/// healthy loopback answer.
fn layer(attempt_timeout: Duration) -> RetryLayer {
    let config = RetryConfig::standard()
        .jitter(Jitter::None)
        .backoff(Duration::from_millis(10), 2.0, Duration::from_millis(50))
        .attempt_timeout(Some(attempt_timeout))
        .deadline(Some(Duration::from_secs(30)));
    RetryLayer::new(config).unwrap()
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[tokio::test]
async fn a_503_then_a_reset_then_200() {
    let server = ScriptedServer::start(vec![Reply::status(503), Reply::Reset], Reply::ok("ok"))
        .await
        .unwrap();
    let svc = layer(Duration::from_secs(10)).layer(client());
    let req = Request::get(format!("{}/v", server.url())).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_response_that_never_comes_becomes_a_retry() {
    let server = ScriptedServer::start(vec![Reply::Hang], Reply::ok("ok")).await.unwrap();
    let svc = layer(Duration::from_secs(1)).layer(client());
    let req = Request::get(format!("{}/v", server.url())).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn wiremock_503_burst_then_200() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .with_priority(2)
        .mount(&server)
        .await;
    let svc = layer(Duration::from_secs(10)).layer(client());
    let req =
        Request::get(format!("{}/items", server.uri())).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}
