//! The tower service contract: readiness before call, backpressure, dropped futures.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_test::mock;
use unattended_breaker::{BreakerConfig, CircuitBreakerLayer, FailurePolicy, OpenDuration};
use unattended_core::BoxError;

fn get() -> Request<Bytes> {
    Request::get("https://a.example/").body(Bytes::new()).unwrap()
}

fn layer() -> CircuitBreakerLayer {
    CircuitBreakerLayer::new(
        BreakerConfig::standard()
            .policy(FailurePolicy::consecutive(1))
            .open_duration(OpenDuration::fixed(Duration::from_secs(1))),
    )
    .unwrap()
}

/// `ConcurrencyLimit::call` panics unless `poll_ready` came first: probes and normal calls go
/// through readiness like any call.
#[tokio::test(start_paused = true)]
async fn readiness_comes_before_every_call() {
    let ok = service_fn(|_: Request<Bytes>| async { Ok::<_, BoxError>(Response::new(())) });
    let mut svc = layer().layer(ConcurrencyLimit::new(ok, 1));
    for _ in 0..3 {
        svc.ready().await.unwrap().call(get()).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn backpressure_reaches_the_caller() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<Bytes>, Response<()>, _>(layer());
    handle.allow(0);
    assert_pending!(svc.poll_ready());
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut response = task::spawn(svc.call(get()));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(()));
    assert_ready_ok!(response.poll());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_releases_what_it_held() {
    let slow = service_fn(|_: Request<Bytes>| async {
        std::future::pending::<()>().await;
        Ok::<_, BoxError>(Response::new(()))
    });
    let mut svc = layer().layer(ConcurrencyLimit::new(slow, 1));
    let mut first = task::spawn(svc.ready().await.unwrap().call(get()));
    assert_pending!(first.poll());
    let mut other = svc.clone();
    let mut ready = task::spawn(async move { other.ready().await.map(|_| ()) });
    assert_pending!(ready.poll());
    drop(first);
    assert_ready_ok!(ready.poll());
}
