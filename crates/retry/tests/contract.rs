//! The tower service contract: readiness before every attempt, backpressure, released permits.

mod support;

use std::time::Duration;

use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;
use unattended_retry::{Jitter, RetryConfig, RetryLayer};

use support::{Answer, Script, clock, get};

fn layer() -> RetryLayer {
    RetryLayer::new(RetryConfig::standard().jitter(Jitter::None).attempt_timeout(None))
        .unwrap()
        .clock(clock())
}

/// `ConcurrencyLimit::call` panics unless `poll_ready` came first, so this passes only if the
/// layer readies the inner service before each retry.
#[tokio::test(start_paused = true)]
async fn readiness_is_polled_before_every_attempt() {
    let script = Script::new(clock(), [Answer::Status(503), Answer::Status(502)]);
    let svc = layer().layer(ConcurrencyLimit::new(script.clone(), 1));
    let res = svc.oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(script.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn backpressure_reaches_the_caller() {
    let (mut svc, mut handle) =
        mock::spawn_layer::<http::Request<bytes::Bytes>, http::Response<()>, _>(layer());
    handle.allow(0);
    assert_pending!(svc.poll_ready());
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut response = task::spawn(svc.call(get("https://a.example/")));
    assert_pending!(response.poll());
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.uri(), "https://a.example/");
    send.send_response(http::Response::builder().status(503).body(()).unwrap());
    // The retry waits 250 ms, then needs readiness again, which the mock withholds.
    assert_pending!(response.poll());
    tokio::time::advance(Duration::from_millis(250)).await;
    assert_pending!(response.poll());
    assert!(!response.is_woken());
    handle.allow(1);
    assert!(response.is_woken());
    assert_pending!(response.poll());
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(http::Response::builder().status(200).body(()).unwrap());
    let res = assert_ready!(response.poll()).unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_response_future_releases_its_permit() {
    let script = Script::new(clock(), [Answer::Status(503), Answer::Hang]);
    let svc = layer().layer(ConcurrencyLimit::new(script.clone(), 1));
    let mut first = svc.clone();
    let mut other = svc;
    let mut response = task::spawn(
        ServiceExt::<http::Request<bytes::Bytes>>::ready(&mut first)
            .await
            .unwrap()
            .call(get("https://a.example/")),
    );
    assert_pending!(response.poll());
    tokio::time::advance(Duration::from_millis(250)).await;
    // The second attempt is in flight (it hangs) and holds the only permit.
    assert_pending!(response.poll());
    assert_eq!(script.count(), 2);
    let mut ready = task::spawn(async {
        ServiceExt::<http::Request<bytes::Bytes>>::ready(&mut other).await.map(|_| ())
    });
    assert_pending!(ready.poll());
    drop(response);
    assert!(ready.is_woken());
    assert_ready_ok!(ready.poll());
}
