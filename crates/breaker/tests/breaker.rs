//! The breaker under a paused clock: opening, half-open probes, keys, slow calls, persistence.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use jiff::Timestamp;
use tokio_test::{assert_pending, task};
use tower::{Layer, Service, ServiceExt};
use unattended_breaker::{
    BreakerConfig, BreakerEvent, BreakerOpen, BreakerState, CircuitBreakerLayer, FailurePolicy,
    OpenDuration,
};
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock, Disposition, HasDisposition};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

fn get(host: &str) -> Request<Bytes> {
    Request::get(format!("https://{host}/x")).body(Bytes::new()).unwrap()
}

/// A server whose answer (status and latency) can be changed while it runs; counts requests.
#[derive(Clone)]
struct Server {
    status: Arc<Mutex<u16>>,
    latency: Arc<Mutex<Duration>>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn new(status: u16) -> Self {
        Self {
            status: Arc::new(Mutex::new(status)),
            latency: Arc::default(),
            requests: Arc::default(),
        }
    }
    fn set(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }
    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Service<Request<Bytes>> for Server {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Bytes>) -> Self::Future {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let status = *self.status.lock().unwrap();
        let sleep = clock().sleep(*self.latency.lock().unwrap());
        Box::pin(async move {
            sleep.await;
            Ok(Response::builder().status(status).body(()).unwrap())
        })
    }
}

fn layer(config: BreakerConfig) -> CircuitBreakerLayer {
    CircuitBreakerLayer::new(config.seed(Some(1))).unwrap().clock(clock())
}

async fn send(
    svc: &mut (impl Service<Request<Bytes>, Response = Response<()>, Error = BoxError> + Send),
    host: &str,
) -> Result<u16, BoxError> {
    svc.ready().await?.call(get(host)).await.map(|r| r.status().as_u16())
}

const KEY: &str = "https://a.example:443";

#[tokio::test(start_paused = true)]
async fn opens_after_failures_whatever_the_history() {
    for policy in [
        FailurePolicy::count_window(20, 0.5).min_calls(10),
        FailurePolicy::time_window(Duration::from_secs(10), 0.5).min_calls(10),
        FailurePolicy::consecutive(10),
        // The preset's: 50% over 60 s, or 10 in a row (the history stays in the window).
        FailurePolicy::time_window(Duration::from_secs(60), 0.5).or_consecutive(10),
    ] {
        let server = Server::new(200);
        let mut svc = layer(BreakerConfig::standard().policy(policy)).layer(server.clone());
        for _ in 0..10_000 {
            send(&mut svc, "a.example").await.unwrap();
        }
        if matches!(policy, FailurePolicy::TimeWindow { .. }) {
            clock().sleep(Duration::from_secs(11)).await;
        }
        server.set(503);
        let mut sent = 0;
        while send(&mut svc, "a.example").await.is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 10, "{policy:?}: a long history must not delay opening");
        assert_eq!(server.count(), 10_010);
    }
    let preset = FailurePolicy::time_window(Duration::from_secs(60), 0.5).or_consecutive(10);
    assert_eq!(BreakerConfig::standard(), BreakerConfig::standard().policy(preset));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_with_its_retry_time() {
    let server = Server::new(503);
    let config = BreakerConfig::standard()
        .policy(FailurePolicy::consecutive(2))
        .open_duration(OpenDuration::fixed(Duration::from_secs(30)));
    let mut svc = layer(config).layer(server.clone());
    send(&mut svc, "a.example").await.unwrap();
    send(&mut svc, "a.example").await.unwrap();
    let err = send(&mut svc, "a.example").await.unwrap_err();
    let open = err.downcast_ref::<BreakerOpen>().unwrap();
    assert_eq!(open.key.as_str(), KEY);
    assert_eq!(open.retry_at, add_saturating(t0(), Duration::from_secs(30)));
    assert_eq!(open.disposition(), Disposition::Skip(KEY.into()));
    assert_eq!(server.count(), 2, "the inner service was not called");
    // Failures that say nothing about health do not count.
    let server = Server::new(404);
    let mut svc = layer(BreakerConfig::standard().policy(FailurePolicy::consecutive(2)))
        .layer(server.clone());
    for status in [404, 429, 401, 404] {
        server.set(status);
        assert_eq!(send(&mut svc, "a.example").await.unwrap(), status);
    }
}

/// A throttled host is alive: 429s, with or without `Retry-After`, never open the breaker.
#[tokio::test(start_paused = true)]
async fn a_429_never_counts_with_or_without_retry_after() {
    for policy in [
        FailurePolicy::consecutive(2),
        FailurePolicy::count_window(10, 0.5).min_calls(2),
        FailurePolicy::time_window(Duration::from_secs(10), 0.5).min_calls(2),
    ] {
        let server = Server::new(429);
        let layer = layer(BreakerConfig::standard().policy(policy));
        let handle = layer.handle();
        let mut svc = layer.layer(server.clone());
        for _ in 0..100 {
            assert_eq!(send(&mut svc, "a.example").await.unwrap(), 429, "{policy:?}");
        }
        assert_eq!(handle.state(KEY), Some(BreakerState::Closed), "{policy:?}");
        // 503s do count (once the 429s have left the time window).
        clock().sleep(Duration::from_secs(11)).await;
        server.set(503);
        let mut sent = 0;
        while send(&mut svc, "a.example").await.is_ok() {
            sent += 1;
        }
        assert!(sent <= 10, "{policy:?}: {sent}");
    }
    // Through the hand-held permit too.
    let handle = layer(BreakerConfig::standard().policy(FailurePolicy::consecutive(2))).handle();
    let throttled = unattended_core::FailureClass::Transient(
        unattended_core::TransientCause::Status(http::StatusCode::TOO_MANY_REQUESTS),
    );
    for _ in 0..10 {
        handle.try_call("db").unwrap().finish(Some(&throttled));
    }
    assert_eq!(handle.state("db"), Some(BreakerState::Closed));
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_n_probes_through() {
    let server = Server::new(503);
    *server.latency.lock().unwrap() = Duration::from_millis(100);
    let config = BreakerConfig::standard()
        .policy(FailurePolicy::consecutive(1))
        .open_duration(OpenDuration::growing(
            Duration::from_secs(10),
            2.0,
            Duration::from_secs(300),
        ))
        .half_open(3, 3);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let layer = layer(config).on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let handle = layer.handle();
    let svc = layer.layer(server.clone());
    send(&mut svc.clone(), "a.example").await.unwrap();
    let Some(BreakerState::Open { until }) = handle.state(KEY) else { panic!() };
    clock().sleep_until_wall(until).await;

    // 100 concurrent calls: exactly 3 reach the server, 97 fail fast.
    server.set(200);
    let before = server.count();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let mut svc = svc.clone();
        calls.spawn(async move { send(&mut svc, "a.example").await });
    }
    let mut rejected = 0;
    while let Some(result) = calls.join_next().await {
        if result.unwrap().is_err() {
            rejected += 1;
        }
    }
    assert_eq!((server.count() - before, rejected), (3, 97));
    assert_eq!(handle.state(KEY), Some(BreakerState::Closed), "3 successes close it");

    // Open again; a failed probe reopens for the next (longer) duration.
    server.set(503);
    send(&mut svc.clone(), "a.example").await.unwrap();
    let Some(BreakerState::Open { until }) = handle.state(KEY) else { panic!() };
    clock().sleep_until_wall(until).await;
    send(&mut svc.clone(), "a.example").await.unwrap();
    let Some(BreakerState::Open { until: reopened }) = handle.state(KEY) else { panic!() };
    let open_for = reopened.duration_since(clock().wall());
    assert!(
        open_for >= jiff::SignedDuration::from_millis(9_900),
        "second trip lasts 10–20 s: {open_for}"
    );

    let kinds: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            BreakerEvent::Opened { .. } => "opened",
            BreakerEvent::HalfOpened { .. } => "half-opened",
            BreakerEvent::Closed { .. } => "closed",
            BreakerEvent::Rejected { .. } => "rejected",
            _ => "other",
        })
        .filter(|k| *k != "rejected")
        .collect();
    assert_eq!(kinds, ["opened", "half-opened", "closed", "opened", "half-opened", "opened"]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_its_slot() {
    let server = Server::new(503);
    let config = BreakerConfig::standard()
        .policy(FailurePolicy::consecutive(1))
        .open_duration(OpenDuration::fixed(Duration::from_secs(5)));
    let layer = layer(config);
    let handle = layer.handle();
    let mut svc = layer.layer(server.clone());
    send(&mut svc, "a.example").await.unwrap();
    clock().sleep(Duration::from_secs(5)).await;
    *server.latency.lock().unwrap() = Duration::from_secs(60);
    let mut probe = task::spawn(svc.ready().await.unwrap().call(get("a.example")));
    assert_pending!(probe.poll());
    assert!(send(&mut svc, "a.example").await.is_err(), "the only probe slot is taken");
    drop(probe);
    *server.latency.lock().unwrap() = Duration::ZERO;
    server.set(200);
    assert_eq!(send(&mut svc, "a.example").await.unwrap(), 200);
    assert_eq!(handle.state(KEY), Some(BreakerState::Closed));
}

#[tokio::test(start_paused = true)]
async fn keys_are_isolated_and_clones_share() {
    let server = Server::new(503);
    let svc = layer(BreakerConfig::standard().policy(FailurePolicy::consecutive(1)))
        .layer(server.clone());
    let (mut a, mut b) = (svc.clone(), svc);
    send(&mut a, "a.example").await.unwrap();
    assert!(send(&mut b, "a.example").await.is_err(), "the clone sees the open breaker");
    server.set(200);
    assert_eq!(send(&mut b, "b.example").await.unwrap(), 200, "another host is unaffected");
    assert!(send(&mut a, "a.example").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn fresh_clones_find_the_right_circuit() {
    // A client clones its stack for every call, so most calls come through a clone that has
    // never called anything: it must still reach the circuit of its own request's host.
    let server = Server::new(200);
    let svc = layer(BreakerConfig::standard().policy(FailurePolicy::consecutive(1)))
        .layer(server.clone());
    assert_eq!(send(&mut svc.clone(), "a.example").await.unwrap(), 200);
    server.set(503);
    send(&mut svc.clone(), "b.example").await.unwrap();
    server.set(200);
    assert!(send(&mut svc.clone(), "b.example").await.unwrap_err().is::<BreakerOpen>());
    assert_eq!(send(&mut svc.clone(), "a.example").await.unwrap(), 200, "a's circuit is closed");
    server.set(503);
    send(&mut svc.clone(), "a.example").await.unwrap();
    assert!(send(&mut svc.clone(), "a.example").await.unwrap_err().is::<BreakerOpen>());
    assert_eq!(server.count(), 4, "open circuits sent nothing");
}

#[tokio::test(start_paused = true)]
async fn slow_successes_open_on_the_slow_rate() {
    let server = Server::new(200);
    *server.latency.lock().unwrap() = Duration::from_secs(3);
    let config = BreakerConfig::standard()
        .policy(FailurePolicy::count_window(10, 0.5).min_calls(4).slow_rate(0.5))
        .slow_call(Some(Duration::from_secs(2)));
    let mut svc = layer(config).layer(server.clone());
    for _ in 0..4 {
        assert_eq!(send(&mut svc, "a.example").await.unwrap(), 200);
    }
    assert!(send(&mut svc, "a.example").await.unwrap_err().is::<BreakerOpen>());
}

#[tokio::test(start_paused = true)]
async fn the_handle_forces_resets_and_saves() {
    let server = Server::new(200);
    let layer = layer(BreakerConfig::standard());
    let handle = layer.handle();
    let mut svc = layer.layer(server.clone());
    // A maintenance window announced by the service: open until 11:00.
    let eleven: Timestamp = "2026-11-28T11:00:00Z".parse().unwrap();
    handle.force_open(KEY, eleven);
    assert_eq!(handle.state(KEY), Some(BreakerState::Open { until: eleven }));
    assert!(send(&mut svc, "a.example").await.is_err());
    let saved = handle.snapshot();
    assert_eq!(saved.len(), 1);

    // A restarted process restores it and still fails fast.
    let restarted = self::layer(BreakerConfig::standard());
    assert_eq!(restarted.handle().restore(saved.clone()), 1);
    let mut svc2 = restarted.layer(server.clone());
    assert!(send(&mut svc2, "a.example").await.unwrap_err().is::<BreakerOpen>());
    assert_eq!(server.count(), 0);

    handle.reset(KEY);
    assert_eq!(send(&mut svc, "a.example").await.unwrap(), 200);
    server.set(503);
    handle.force_closed(KEY);
    for _ in 0..20 {
        assert_eq!(send(&mut svc, "a.example").await.unwrap(), 503);
    }
    assert_eq!(handle.state(KEY), Some(BreakerState::ForcedClosed));
    // A snapshot taken after the open time holds nothing.
    clock().sleep_until_wall(eleven).await;
    assert!(restarted.handle().snapshot().is_empty());
    assert_eq!(restarted.handle().restore(saved), 0);
}

/// Around a service that is not HTTP: a database client keyed by name, whose own error type
/// says when it is down.
#[tokio::test(start_paused = true)]
async fn guards_a_service_that_is_not_http() {
    use unattended_core::{Classifier, FailureClass, ServiceKey, TransientCause};

    #[derive(Clone)]
    struct DbOutcomes;
    impl Classifier<Result<u32, &'static str>> for DbOutcomes {
        fn classify_response(
            &self,
            res: &Result<u32, &'static str>,
            _: &Clock,
        ) -> Result<(), FailureClass> {
            match res {
                Err("connection lost") => Err(FailureClass::Transient(TransientCause::Reset)),
                _ => Ok(()),
            }
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let db = tower::service_fn(move |query: &'static str| {
        seen.fetch_add(1, Ordering::SeqCst);
        let answer = if query == "select 1" { Ok(1) } else { Err("connection lost") };
        async move { Ok::<_, BoxError>(answer) }
    });
    let layer =
        CircuitBreakerLayer::new(BreakerConfig::standard().policy(FailurePolicy::consecutive(2)))
            .unwrap()
            .clock(clock())
            .key(|_: &&'static str| Some(ServiceKey::new("orders-db")))
            .classifier(DbOutcomes);
    let handle = layer.handle();
    let mut svc = layer.layer(db);
    assert_eq!(svc.ready().await.unwrap().call("select 1").await.unwrap(), Ok(1));
    for _ in 0..2 {
        assert!(svc.ready().await.unwrap().call("select 2").await.unwrap().is_err());
    }
    let err = svc.ready().await.unwrap().call("select 1").await.unwrap_err();
    assert_eq!(err.downcast_ref::<BreakerOpen>().unwrap().key.as_str(), "orders-db");
    assert!(matches!(handle.state("orders-db"), Some(BreakerState::Open { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
