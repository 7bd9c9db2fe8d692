//! Real sockets on 127.0.0.1 and real time: a wiremock server answers `429 Retry-After: 1`.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use unattended_core::Clock;
use unattended_ratelimit::RateLimitLayer;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn retry_after_one_second_holds_the_next_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;

    let clock = Clock::system();
    let layer = RateLimitLayer::new().clock(clock).release_spread(Duration::from_millis(20));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let svc = layer.layer(client);
    let get =
        || Request::get(format!("{}/items", server.uri())).body(Full::new(Bytes::new())).unwrap();

    let first = svc.clone().oneshot(get()).await.unwrap();
    assert_eq!(first.status(), 429);
    let start = clock.now();
    let second = svc.oneshot(get()).await.unwrap();
    let waited = clock.now() - start;
    assert_eq!(second.status(), 200);
    assert!(waited >= Duration::from_millis(900), "sent after {waited:?}");
    assert!(waited < Duration::from_secs(3), "sent after {waited:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
