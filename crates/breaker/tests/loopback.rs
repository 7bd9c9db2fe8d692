//! Real sockets on 127.0.0.1 and real time: a server fails, the breaker opens, the server
//! recovers, and the breaker closes after its probe.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};
use unattended_breaker::{
    BreakerConfig, BreakerOpen, BreakerState, CircuitBreakerLayer, FailurePolicy, OpenDuration,
};
use unattended_core::Clock;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn opens_on_a_failing_server_and_closes_when_it_recovers() {
    let server = MockServer::start().await;
    let failing = Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;

    let layer = CircuitBreakerLayer::new(
        BreakerConfig::standard()
            .policy(FailurePolicy::consecutive(3))
            .open_duration(OpenDuration::fixed(Duration::from_millis(200))),
    )
    .unwrap();
    let handle = layer.handle();
    // The default key of http://127.0.0.1:PORT is the URI itself.
    let key = server.uri();
    let mut svc = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let get =
        || Request::get(format!("{}/items", server.uri())).body(Full::new(Bytes::new())).unwrap();

    for _ in 0..3 {
        assert_eq!(svc.ready().await.unwrap().call(get()).await.unwrap().status(), 503);
    }
    let err = svc.ready().await.unwrap().call(get()).await.unwrap_err();
    assert!(err.is::<BreakerOpen>());
    assert!(
        matches!(handle.state(&key), Some(BreakerState::Open { .. })),
        "{:?}",
        handle.state(&key)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // The server recovers; after the open time one probe goes through and closes the breaker.
    drop(failing);
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    Clock::system().sleep(Duration::from_millis(250)).await;
    assert_eq!(svc.ready().await.unwrap().call(get()).await.unwrap().status(), 200);
    assert_eq!(handle.state(&key), Some(BreakerState::Closed));
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 200);
}
