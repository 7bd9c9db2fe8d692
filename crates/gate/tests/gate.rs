//! The gate under a paused clock: exact opening instants, waits, classes, DST.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use jiff::Timestamp;
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt, service_fn};
use unattended_core::{BoxError, Clock, Disposition, HasDisposition};
use unattended_gate::{ActionClass, GateLayer, OutsideWindow, WhenClosed, WindowCalendar};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn business_hours() -> WindowCalendar {
    WindowCalendar::new("America/Los_Angeles", &["mon-fri 09:00-22:00"], &[]).unwrap()
}

/// A service that records the wall time of each request it receives.
fn recorder(
    clock: Clock,
) -> (
    impl Service<Request<Bytes>, Response = Response<()>, Error = BoxError, Future: Send> + Clone,
    Arc<Mutex<Vec<Timestamp>>>,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let svc = service_fn(move |_: Request<Bytes>| {
        seen.lock().unwrap().push(clock.wall());
        async { Ok::<_, BoxError>(Response::new(())) }
    });
    (svc, log)
}

fn post() -> Request<Bytes> {
    Request::post("https://blog.example/posts").body(Bytes::new()).unwrap()
}

fn get() -> Request<Bytes> {
    Request::get("https://blog.example/posts").body(Bytes::new()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn reject_says_exactly_when_the_window_opens() {
    let clock = Clock::starting_at(ts("2026-11-27T22:30:00-08:00")); // Friday, after hours
    let (svc, log) = recorder(clock);
    let gate = GateLayer::new()
        .class("write", business_hours(), WhenClosed::Reject)
        .clock(clock)
        .layer(svc);
    let err = gate.clone().oneshot(post()).await.unwrap_err();
    let outside = err.downcast_ref::<OutsideWindow>().unwrap();
    assert_eq!(outside.class, "write");
    assert_eq!(outside.opens_at, Some(ts("2026-11-30T09:00:00-08:00")));
    assert_eq!(outside.disposition(), Disposition::RetryAt(ts("2026-11-30T09:00:00-08:00")));
    assert_eq!(
        outside.to_string(),
        "\"write\" actions are outside their time window; it opens at 2026-11-30T17:00:00Z"
    );
    // Reads pass while writes are refused.
    gate.oneshot(get()).await.unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_releases_the_request_at_the_opening_instant() {
    let clock = Clock::starting_at(ts("2026-11-30T08:15:00-08:00")); // Monday, before hours
    let (svc, log) = recorder(clock);
    let gate = GateLayer::new()
        .class("write", business_hours(), WhenClosed::Wait { max: Duration::from_secs(3600) })
        .clock(clock)
        .layer(svc);
    let held = tokio::spawn(gate.clone().oneshot(post()));
    // Reads go straight through while the write waits.
    gate.clone().oneshot(get()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), [ts("2026-11-30T08:15:00-08:00")]);
    held.await.unwrap().unwrap();
    assert_eq!(log.lock().unwrap()[1], ts("2026-11-30T09:00:00-08:00"));
    // Beyond the limit, waiting turns into a refusal.
    let clock = Clock::starting_at(ts("2026-11-28T08:00:00-08:00")); // Saturday
    let (svc, _) = recorder(clock);
    let gate = GateLayer::new()
        .class("write", business_hours(), WhenClosed::Wait { max: Duration::from_secs(3600) })
        .clock(clock)
        .layer(svc);
    assert!(gate.oneshot(post()).await.unwrap_err().is::<OutsideWindow>());
}

#[tokio::test(start_paused = true)]
async fn the_cached_open_span_ends_on_time() {
    let clock = Clock::starting_at(ts("2026-11-27T21:59:00-08:00")); // a minute before closing
    let (svc, log) = recorder(clock);
    let mut gate = GateLayer::new()
        .class("write", business_hours(), WhenClosed::Reject)
        .clock(clock)
        .layer(svc);
    gate.ready().await.unwrap().call(post()).await.unwrap();
    clock.sleep(Duration::from_secs(59)).await;
    gate.ready().await.unwrap().call(post()).await.unwrap();
    clock.sleep(Duration::from_secs(1)).await;
    assert!(gate.ready().await.unwrap().call(post()).await.unwrap_err().is::<OutsideWindow>());
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn explicit_classes_and_custom_classifiers() {
    let clock = Clock::starting_at(ts("2026-11-29T12:00:00-08:00")); // Sunday noon
    let (svc, _) = recorder(clock);
    let gate = GateLayer::new()
        .class("publish", business_hours(), WhenClosed::Reject)
        .clock(clock)
        .layer(svc);
    // A POST of an unlisted class passes; an explicit "publish" GET is gated.
    gate.clone().oneshot(post()).await.unwrap();
    let mut publish = get();
    publish.extensions_mut().insert(ActionClass::new("publish"));
    assert!(gate.oneshot(publish).await.unwrap_err().is::<OutsideWindow>());

    // Around a service that is not HTTP, the class comes from a function of the request.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let mailer = service_fn(move |_: &'static str| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(()) }
    });
    let quiet_nights = WindowCalendar::new("Europe/Berlin", &["daily 08:00-21:00"], &[]).unwrap();
    let gate = GateLayer::new()
        .classes(|_: &&'static str| "email")
        .class("email", quiet_nights, WhenClosed::Reject)
        .clock(Clock::starting_at(ts("2026-11-29T23:30:00+01:00")))
        .layer(mailer);
    assert!(gate.oneshot("hello").await.unwrap_err().is::<OutsideWindow>());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A clock started just before the spring-forward change in Los Angeles: a window edge at 02:30
/// (which does not exist that day) opens at 03:30 PDT, 31 simulated minutes later.
#[tokio::test(start_paused = true)]
async fn waits_across_a_dst_change() {
    let clock = Clock::parse_start("2026-03-08T01:59:00-08:00[America/Los_Angeles]").unwrap();
    let (svc, log) = recorder(clock);
    let night = WindowCalendar::new("America/Los_Angeles", &["sun 02:30-05:00"], &[]).unwrap();
    let gate = GateLayer::new()
        .class("write", night, WhenClosed::Wait { max: Duration::from_secs(7200) })
        .clock(clock)
        .layer(svc);
    let start = clock.now();
    gate.oneshot(post()).await.unwrap();
    assert_eq!(clock.now() - start, Duration::from_secs(31 * 60));
    assert_eq!(log.lock().unwrap()[0], ts("2026-03-08T03:30:00-07:00"));

    // Fall back in Berlin: a window opening at 02:30 opens at the first 02:30 (CEST).
    let clock = Clock::parse_start("2026-10-25T01:00:00+02:00[Europe/Berlin]").unwrap();
    let (svc, log) = recorder(clock);
    let night = WindowCalendar::new("Europe/Berlin", &["sun 02:30-05:00"], &[]).unwrap();
    let gate = GateLayer::new()
        .class("write", night, WhenClosed::Wait { max: Duration::from_secs(7200) })
        .clock(clock)
        .layer(svc);
    gate.oneshot(post()).await.unwrap();
    assert_eq!(log.lock().unwrap()[0], ts("2026-10-25T02:30:00+02:00"));
}

/// `ConcurrencyLimit::call` panics unless `poll_ready` came first: a held request readies the
/// service it took with it before sending.
#[tokio::test(start_paused = true)]
async fn a_held_request_is_readied_before_it_is_sent() {
    let clock = Clock::starting_at(ts("2026-11-30T08:59:00-08:00"));
    let (svc, log) = recorder(clock);
    let mut gate = GateLayer::new()
        .class("write", business_hours(), WhenClosed::Wait { max: Duration::from_secs(600) })
        .clock(clock)
        .layer(ConcurrencyLimit::new(svc, 1));
    let held = gate.ready().await.unwrap().call(post());
    clock.timeout(Duration::from_secs(120), held).await.expect("no deadlock").unwrap();
    gate.ready().await.unwrap().call(post()).await.unwrap();
    assert_eq!(log.lock().unwrap().len(), 2);
}
