//! Pacing under a paused clock: learned from throttles, first come first served, following the
//! server's quota fields, forgotten when idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use jiff::Timestamp;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock, ServiceKey};
use unattended_ratelimit::{HostPaused, Pace, PauseRegistry, RateLimitEvent, RateLimitLayer};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

fn get(uri: &str) -> Request<Bytes> {
    Request::get(uri).body(Bytes::new()).unwrap()
}

const A: &str = "https://a.example:443";

type Answer = Box<dyn Fn(usize, &str) -> Response<()> + Send + Sync>;

/// Answers the n-th request with `answer(n, path)` at once, and records when each arrived.
#[derive(Clone)]
struct Server {
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    answer: Arc<Answer>,
    clock: Clock,
    start: Instant,
}

impl Server {
    fn new(
        clock: Clock,
        answer: impl Fn(usize, &str) -> Response<()> + Send + Sync + 'static,
    ) -> Self {
        let start = clock.now();
        Self { log: Arc::default(), answer: Arc::new(Box::new(answer)), clock, start }
    }

    /// When each request arrived, from the server's start, and its path.
    fn arrivals(&self) -> Vec<(Duration, String)> {
        self.log.lock().unwrap().iter().map(|(t, p)| (*t - self.start, p.clone())).collect()
    }
}

impl tower::Service<Request<Bytes>> for Server {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push((self.clock.now(), path.clone()));
            log.len() - 1
        };
        let res = (self.answer)(n, &path);
        Box::pin(async move { Ok(res) })
    }
}

fn status(code: u16) -> Response<()> {
    Response::builder().status(code).body(()).unwrap()
}

fn with(code: u16, name: &str, value: &str) -> Response<()> {
    Response::builder().status(code).header(name, value).body(()).unwrap()
}

/// Sends one request per entry of `sends` (milliseconds from now, path), and waits for all.
async fn send_at<S>(
    clock: Clock,
    svc: &S,
    sends: &[(u64, String)],
) -> Vec<Result<StatusCode, BoxError>>
where
    S: tower::Service<Request<Bytes>, Response = Response<()>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let start = clock.now();
    let mut tasks = Vec::new();
    for (at_ms, path) in sends {
        let (svc, uri) = (svc.clone(), format!("https://a.example{path}"));
        let at = start + Duration::from_millis(*at_ms);
        tasks.push(tokio::spawn(async move {
            clock.sleep_until(at).await;
            svc.oneshot(get(&uri)).await.map(|r| r.status())
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// After a host's first throttle (`429 Retry-After: 1`), the requests the pause held go one at
/// a time once it ends, in the order they arrived, instead of all at once.
#[tokio::test(start_paused = true)]
async fn the_first_throttle_paces_the_host_first_come_first_served() {
    let clock = clock();
    let server =
        Server::new(clock, |n, _| if n == 0 { with(429, "retry-after", "1") } else { status(200) });
    let layer = RateLimitLayer::new().clock(clock).seed(1);
    let registry = layer.registry();
    let svc = layer.layer(server.clone());
    let sends: Vec<_> = (0..16).map(|i| (i * 5, format!("/{i}"))).collect();
    let statuses = send_at(clock, &svc, &sends).await;
    assert_eq!(statuses.iter().filter(|s| matches!(s, Ok(StatusCode::OK))).count(), 15);
    assert!(registry.pace_of(A).is_some(), "paced");

    let arrivals = server.arrivals();
    assert_eq!(arrivals[0], (Duration::ZERO, "/0".to_owned()), "the refused one");
    let released = &arrivals[1..];
    // In the order they came, all after the pause, never two at once.
    let order: Vec<_> = released.iter().map(|(_, p)| p.clone()).collect();
    let expected: Vec<_> = (1..16).map(|i| format!("/{i}")).collect();
    assert_eq!(order, expected);
    assert!(released[0].0 >= Duration::from_secs(1), "{released:?}");
    for pair in released.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= Duration::from_millis(10), "{released:?}");
    }
}

/// A `429` without `Retry-After` paces the host at once, without pausing it.
#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_paces_without_a_pause() {
    let clock = clock();
    let server = Server::new(clock, |n, _| if n == 0 { status(429) } else { status(200) });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let layer =
        RateLimitLayer::new().clock(clock).on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let registry = layer.registry();
    let svc = layer.layer(server.clone());
    svc.clone().oneshot(get("https://a.example/first")).await.unwrap();
    assert_eq!(registry.paused_until(A, clock.wall()), None);
    assert_eq!(registry.pace_of(A), Some(10.0));
    let sends: Vec<_> = (0..3).map(|i| (0, format!("/{i}"))).collect();
    send_at(clock, &svc, &sends).await;
    let gaps: Vec<_> = server.arrivals().windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert_eq!(gaps, [Duration::from_millis(100); 3], "one every 100 ms from the refusal");
    let paced = events.lock().unwrap().iter().any(|e| matches!(e, RateLimitEvent::Paced { key, rate, .. } if key.as_str() == A && *rate == 10.0));
    assert!(paced, "a Paced event");
}

/// On a paced host a short `Retry-After` cuts the pace and pauses nobody; a long one pauses it.
#[tokio::test(start_paused = true)]
async fn short_waits_cut_the_pace_and_long_ones_pause() {
    let clock = clock();
    let answers = Arc::new(Mutex::new(vec![
        status(429),
        with(429, "retry-after", "1"),
        with(429, "retry-after", "30"),
    ]));
    let server = Server::new(clock, move |_, _| {
        let mut answers = answers.lock().unwrap();
        if answers.is_empty() { status(200) } else { answers.remove(0) }
    });
    let layer = RateLimitLayer::new().clock(clock).max_wait(Duration::from_secs(60));
    let registry = layer.registry();
    let svc = layer.layer(server);
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    let paced = registry.pace_of(A).unwrap();
    let res = svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(registry.paused_until(A, clock.wall()), None, "1 s is short: no pause");
    let cut = registry.pace_of(A).unwrap();
    assert!((cut - paced * 0.7).abs() < 1e-9, "{paced} → {cut}");
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    let until = registry.paused_until(A, clock.wall()).expect("30 s pauses the host");
    assert_eq!(until, add_saturating(clock.wall(), Duration::from_secs(30)));
}

/// Without a pace, a request that arrives just after a pause ended (a retry that waited for the
/// server's time) gets the same random spread as the requests the pause held.
#[tokio::test(start_paused = true)]
async fn late_arrivals_get_the_release_spread() {
    let clock = clock();
    let server = Server::new(clock, |_, _| status(200));
    let layer = RateLimitLayer::new()
        .clock(clock)
        .seed(5)
        .adaptive(false)
        .release_spread(Duration::from_secs(1));
    layer.registry().pause(ServiceKey::new(A), add_saturating(t0(), Duration::from_secs(1)), t0());
    let svc = layer.layer(server.clone());
    // Twenty "retries" come back exactly when the pause ends.
    let sends: Vec<_> = (0..20).map(|i| (1000, format!("/{i}"))).collect();
    send_at(clock, &svc, &sends).await;
    let times: Vec<_> = server.arrivals().iter().map(|(t, _)| *t).collect();
    assert!(times.iter().all(|t| *t >= Duration::from_secs(1) && *t < Duration::from_secs(2)));
    let distinct: std::collections::BTreeSet<_> = times.iter().collect();
    assert!(distinct.len() >= 18, "{times:?}");
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(span >= Duration::from_millis(500), "{times:?}");
    // Once the spread is over, the pause is gone and requests go at once.
    clock.sleep(Duration::from_secs(2)).await;
    let before = clock.now();
    svc.oneshot(get("https://a.example/after")).await.unwrap();
    assert_eq!(clock.now(), before);
}

/// `Pace::per_second(n)` is one request every `1/n` s, with a burst only when asked for.
#[tokio::test(start_paused = true)]
async fn per_second_is_evenly_spaced() {
    let clock = clock();
    for (pace, expected) in [
        (Pace::per_second(50).unwrap(), [0u32, 20, 40, 60, 80]),
        (Pace::per_second(50).unwrap().with_burst(3).unwrap(), [0, 0, 0, 20, 40]),
    ] {
        let server = Server::new(clock, |_, _| status(200));
        let svc = RateLimitLayer::new().clock(clock).pace(pace).layer(server.clone());
        let sends: Vec<_> = (0..5).map(|i| (0, format!("/{i}"))).collect();
        send_at(clock, &svc, &sends).await;
        let times: Vec<_> = server.arrivals().iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, expected.map(u128::from), "{pace:?}");
    }
}

/// A server that states its policy (`RateLimit-Policy`) is paced at it from its first throttle:
/// nothing to learn.
#[tokio::test(start_paused = true)]
async fn the_policy_fields_set_the_pace() {
    let clock = clock();
    let server = Server::new(clock, |n, _| {
        let res = Response::builder()
            .status(if n == 0 { 429 } else { 200 })
            .header("ratelimit-policy", "\"default\";q=5;w=1")
            .header("ratelimit", "\"default\";r=4;t=1");
        res.body(()).unwrap()
    });
    let layer = RateLimitLayer::new().clock(clock);
    let registry = layer.registry();
    let svc = layer.layer(server.clone());
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(registry.pace_of(A), Some(5.0));
    let sends: Vec<_> = (0..3).map(|i| (0, format!("/{i}"))).collect();
    send_at(clock, &svc, &sends).await;
    let gaps: Vec<_> = server.arrivals().windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert_eq!(gaps[1..], [Duration::from_millis(200); 2]);
    assert_eq!(registry.pace_of(A), Some(5.0), "never above the server's rate");
}

/// Each layer owns its registry: another client's pauses and paces do not touch it, unless the
/// two were given the same one.
#[tokio::test(start_paused = true)]
async fn registries_are_apart_unless_shared() {
    let clock = clock();
    let refuse = || Server::new(clock, |_, _| with(429, "retry-after", "30"));
    let (one, two) = (RateLimitLayer::new().clock(clock), RateLimitLayer::new().clock(clock));
    one.layer(refuse()).oneshot(get("https://a.example/")).await.unwrap();
    assert!(one.registry().paused_until(A, clock.wall()).is_some());
    assert!(two.registry().is_quiet(), "untouched, and on its fast path");
    assert!(two.registry().pace_of(A).is_none());

    let shared = PauseRegistry::new();
    let three = RateLimitLayer::new().clock(clock).with_registry(shared.clone());
    let four = RateLimitLayer::new().clock(clock).with_registry(shared.clone());
    three.layer(refuse()).oneshot(get("https://a.example/")).await.unwrap();
    let err = four.max_wait(Duration::ZERO).layer(refuse()).oneshot(get("https://a.example/"));
    let err = err.await.unwrap_err();
    assert!(err.downcast_ref::<HostPaused>().is_some(), "{err}");
}

/// A learned pace nobody has needed for ten minutes is forgotten: the host is back on the happy
/// path (and the next throttle learns again).
#[tokio::test(start_paused = true)]
async fn an_idle_pace_is_forgotten() {
    let clock = clock();
    let server = Server::new(clock, |n, _| if n == 0 { status(429) } else { status(200) });
    let layer = RateLimitLayer::new().clock(clock);
    let registry = layer.registry();
    let svc = layer.layer(server);
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    assert!(!registry.is_quiet());
    clock.sleep(Duration::from_secs(9 * 60)).await;
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    assert!(registry.pace_of(A).is_some(), "still needed after nine minutes");
    clock.sleep(Duration::from_secs(61)).await;
    svc.oneshot(get("https://a.example/")).await.unwrap();
    assert!(registry.is_quiet(), "forgotten");
}

/// A waiting request that is dropped gives its place back: the next request takes its slot.
#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_gives_its_slot_back() {
    let clock = clock();
    let server = Server::new(clock, |_, _| status(200));
    let svc = RateLimitLayer::new()
        .clock(clock)
        .pace(Pace::every(Duration::from_secs(1)).unwrap())
        .layer(server.clone());
    svc.clone().oneshot(get("https://a.example/first")).await.unwrap();
    let mut waiting = tokio_test::task::spawn(svc.clone().oneshot(get("https://a.example/gone")));
    tokio_test::assert_pending!(waiting.poll());
    drop(waiting);
    let start = clock.now();
    svc.oneshot(get("https://a.example/next")).await.unwrap();
    assert_eq!(clock.now() - start, Duration::from_secs(1), "the slot at 1 s, not 2 s");
}

/// `Limiter` makes the same decisions for a hand-written loop, on the same registry.
#[tokio::test(start_paused = true)]
async fn the_limiter_applies_the_same_rules() {
    let clock = clock();
    let layer = RateLimitLayer::new().clock(clock);
    let limiter = layer.limiter();
    let key = ServiceKey::new(A);
    let permit = limiter.acquire(&key).await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "5".parse().unwrap());
    limiter.record(permit, StatusCode::TOO_MANY_REQUESTS, &headers);
    assert!(layer.registry().paused_until(A, clock.wall()).is_some(), "same registry");
    let start = clock.now();
    let permit = limiter.acquire(&key).await.unwrap();
    assert!(clock.now() - start >= Duration::from_secs(5), "waited out the pause");
    limiter.record(permit, StatusCode::OK, &HeaderMap::new());
    let impatient = RateLimitLayer::new()
        .clock(clock)
        .max_wait(Duration::ZERO)
        .with_registry(layer.registry())
        .limiter();
    layer.registry().pause(
        key.clone(),
        add_saturating(clock.wall(), Duration::from_secs(9)),
        clock.wall(),
    );
    assert!(impatient.acquire(&key).await.is_err());
}
