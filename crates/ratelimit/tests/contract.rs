//! The tower service contract: readiness, backpressure, shared state, dropped futures.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use jiff::Timestamp;
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_test::mock;
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock};
use unattended_ratelimit::RateLimitLayer;

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

fn get(uri: &str) -> Request<Bytes> {
    Request::get(uri).body(Bytes::new()).unwrap()
}

fn layer() -> RateLimitLayer {
    RateLimitLayer::new().clock(clock()).release_spread(Duration::ZERO)
}

fn pause_a(layer: &RateLimitLayer, secs: u64) {
    layer.registry().pause(
        "https://a.example:443",
        add_saturating(t0(), Duration::from_secs(secs)),
        t0(),
    );
}

fn ok()
-> impl Service<Request<Bytes>, Response = Response<()>, Error = BoxError, Future: Send> + Clone {
    service_fn(|_: Request<Bytes>| async { Ok::<_, BoxError>(Response::new(())) })
}

/// `ConcurrencyLimit::call` panics unless `poll_ready` came first; a held request must also not
/// deadlock when the caller keeps its service (and so its clone's readiness) alive.
#[tokio::test(start_paused = true)]
async fn a_held_request_uses_the_readiness_it_was_given() {
    let layer = layer();
    pause_a(&layer, 2);
    let mut svc = layer.layer(ConcurrencyLimit::new(ok(), 1));
    let start = clock().now();
    let first = svc.ready().await.unwrap().call(get("https://a.example/"));
    // The caller keeps `svc` and goes on using it while the first request is held.
    let res = clock()
        .timeout(Duration::from_secs(10), first)
        .await
        .expect("the held request deadlocked")
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(clock().now() - start, Duration::from_secs(2));
    svc.ready().await.unwrap().call(get("https://b.example/")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn backpressure_reaches_the_caller() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<Bytes>, Response<()>, _>(layer());
    handle.allow(0);
    assert_pending!(svc.poll_ready());
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut response = task::spawn(svc.call(get("https://a.example/")));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(()));
    assert_ready_ok!(response.poll());
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_pauses() {
    let limited = service_fn(|req: Request<Bytes>| async move {
        let status = if req.uri().path() == "/limited" { 429 } else { 200 };
        Ok::<_, BoxError>(
            Response::builder().status(status).header("retry-after", "5").body(()).unwrap(),
        )
    });
    let svc = layer().layer(limited);
    let other = svc.clone();
    svc.oneshot(get("https://a.example/limited")).await.unwrap();
    let start = clock().now();
    other.oneshot(get("https://a.example/fine")).await.unwrap();
    assert_eq!(clock().now() - start, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_held_future_holds_nothing() {
    let layer = layer();
    pause_a(&layer, 60);
    let registry = layer.registry();
    let mut svc = layer.layer(ConcurrencyLimit::new(ok(), 1));
    let mut held = task::spawn(svc.ready().await.unwrap().call(get("https://a.example/")));
    assert_pending!(held.poll());
    // The held request took the only permit with it.
    let mut other = svc.clone();
    let mut ready = task::spawn(async move { other.ready().await.map(|_| ()) });
    assert_pending!(ready.poll());
    drop(held);
    assert!(ready.is_woken());
    assert_ready_ok!(ready.poll());
    // And dropping it changed nothing about the pause.
    assert_eq!(registry.snapshot(t0()).len(), 1);
}
