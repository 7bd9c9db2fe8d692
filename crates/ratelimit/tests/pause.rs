//! The rate-limit layer under a paused clock: one pause per host, shared by every caller.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use jiff::Timestamp;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock, Disposition, HasDisposition, WaitSource};
use unattended_ratelimit::{HostPaused, RateLimitEvent, RateLimitLayer};

const T0: &str = "2026-11-28T10:00:00Z";

fn t0() -> Timestamp {
    T0.parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

fn get(uri: &str) -> Request<Bytes> {
    Request::get(uri).body(Bytes::new()).unwrap()
}

type Answer = Box<dyn Fn(&str, usize) -> Response<()> + Send + Sync>;

/// A server that takes `latency` to answer, and answers the n-th request to a host with
/// `answer(host, n)`. It records when each request arrived.
#[derive(Clone)]
struct Server {
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    answer: Arc<Answer>,
    latency: Duration,
    clock: Clock,
}

impl Server {
    fn new(
        latency: Duration,
        answer: impl Fn(&str, usize) -> Response<()> + Send + Sync + 'static,
    ) -> Self {
        Self { log: Arc::default(), answer: Arc::new(Box::new(answer)), latency, clock: clock() }
    }

    fn arrivals(&self, host: &str) -> Vec<Instant> {
        self.log.lock().unwrap().iter().filter(|(_, h)| h == host).map(|(t, _)| *t).collect()
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
        let host = req.uri().host().unwrap().to_owned();
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push((self.clock.now(), host.clone()));
            log.iter().filter(|(_, h)| *h == host).count() - 1
        };
        let res = (self.answer)(&host, n);
        let sleep = self.clock.sleep(self.latency);
        Box::pin(async move {
            sleep.await;
            Ok(res)
        })
    }
}

fn status(code: u16) -> Response<()> {
    Response::builder().status(code).body(()).unwrap()
}

fn with(code: u16, name: &str, value: &str) -> Response<()> {
    Response::builder().status(code).header(name, value).body(()).unwrap()
}

/// 32 callers of one host; its first answer is `429 Retry-After: 1`. Until the pause ends the
/// server gets no request for that host but those already in flight; then (without adaptive
/// pacing) the held requests arrive spread over the release window; another host is never held.
#[tokio::test(start_paused = true)]
async fn one_429_pauses_the_host_for_all_32_callers() {
    let latency = Duration::from_millis(20);
    let server = Server::new(latency, |host, n| match (host, n) {
        ("a.example", 0) => with(429, "retry-after", "1"),
        _ => status(200),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let layer = RateLimitLayer::new()
        .clock(clock())
        .seed(3)
        .adaptive(false)
        .release_spread(Duration::from_millis(500))
        .on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let svc = layer.layer(server.clone());
    let start = clock().now();

    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..33u64 {
        let svc = svc.clone();
        let clock = clock();
        callers.spawn(async move {
            // Callers start 5 ms apart and send a request every 100 ms for 2 s.
            clock.sleep(Duration::from_millis(5 * caller)).await;
            let host = if caller == 32 { "b.example" } else { "a.example" };
            let mut statuses = Vec::new();
            while clock.now() - start < Duration::from_secs(2) {
                let res = svc.clone().oneshot(get(&format!("https://{host}/x"))).await.unwrap();
                statuses.push(res.status().as_u16());
                clock.sleep(Duration::from_millis(100)).await;
            }
            statuses
        });
    }
    let mut limited = 0;
    while let Some(statuses) = callers.join_next().await {
        limited += statuses.unwrap().iter().filter(|s| **s == 429).count();
    }
    assert_eq!(limited, 1, "only the first request saw a 429");

    // The 429 left the server at t = 20 ms: pause until t = 1.02 s.
    let pause_set = start + latency;
    let pause_end = pause_set + Duration::from_secs(1);
    let a = server.arrivals("a.example");
    // In flight before the pause: the first four callers (t = 0, 5, 10, 15 ms).
    let during: Vec<_> = a.iter().filter(|t| **t > pause_set && **t < pause_end).collect();
    assert!(during.is_empty(), "requests reached a paused host: {during:?}");
    assert_eq!(a.iter().filter(|t| **t < pause_set).count(), 4);
    // The held requests (every caller's, one each) go out over the 500 ms spread after the end.
    let released: Vec<_> = a
        .iter()
        .filter(|t| **t >= pause_end && **t < pause_end + Duration::from_millis(500))
        .collect();
    assert!(released.len() >= 32, "{} released", released.len());
    let distinct: BTreeSet<_> = released.iter().map(|t| **t - pause_end).collect();
    assert!(distinct.len() > 16, "released in {} distinct instants", distinct.len());
    // The other host was never held: a request every 120 ms (100 ms apart, 20 ms to answer).
    let b = server.arrivals("b.example");
    assert!(b.windows(2).all(|w| w[1] - w[0] == Duration::from_millis(120)), "{b:?}");
    assert!(b.iter().filter(|t| **t > pause_set && **t < pause_end).count() >= 8, "{b:?}");

    let events = events.lock().unwrap();
    let set: Vec<_> =
        events.iter().filter(|e| matches!(e, RateLimitEvent::PauseSet { .. })).collect();
    assert_eq!(set.len(), 1);
    match set[0] {
        RateLimitEvent::PauseSet { key, until, source, .. } => {
            assert_eq!(key.as_str(), "https://a.example:443");
            assert_eq!(*until, add_saturating(t0(), Duration::from_millis(1020)));
            assert_eq!(*source, WaitSource::RetryAfter);
        }
        _ => unreachable!(),
    }
    assert!(events.iter().any(|e| matches!(e, RateLimitEvent::PauseEnded { .. })));
    assert!(events.iter().filter(|e| matches!(e, RateLimitEvent::Held { .. })).count() >= 32);
}

async fn paused_until_after(answer: Response<()>) -> Option<Timestamp> {
    let layer = RateLimitLayer::new().clock(clock());
    let registry = layer.registry();
    let answer = Arc::new(Mutex::new(Some(answer)));
    let server = Server::new(Duration::ZERO, move |_, _| {
        answer.lock().unwrap().take().unwrap_or_else(|| status(200))
    });
    layer.layer(server).oneshot(get("https://a.example/")).await.unwrap();
    registry.paused_until("https://a.example:443", clock().wall())
}

fn at(secs: u64) -> Option<Timestamp> {
    Some(add_saturating(t0(), Duration::from_secs(secs)))
}

#[tokio::test(start_paused = true)]
async fn what_pauses_a_host() {
    assert_eq!(
        paused_until_after(with(429, "retry-after", "Sat, 28 Nov 2026 10:00:42 GMT")).await,
        at(42)
    );
    assert_eq!(paused_until_after(with(503, "retry-after", "7")).await, at(7));
    // Proactive: quota exhausted on a success, before any 429.
    assert_eq!(paused_until_after(with(200, "ratelimit", "\"default\";r=0;t=30")).await, at(30));
    let res = Response::builder()
        .status(200)
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", t0().as_second().saturating_add(90).to_string())
        .body(())
        .unwrap();
    assert_eq!(paused_until_after(res).await, at(90));
    // Retry-After wins over RateLimit on a 429.
    let both = Response::builder()
        .status(429)
        .header("retry-after", "5")
        .header("ratelimit", "\"default\";r=0;t=600")
        .body(())
        .unwrap();
    assert_eq!(paused_until_after(both).await, at(5));
    // Quota left, no pushback, Retry-After on a success, garbage: no pause.
    assert_eq!(paused_until_after(with(200, "ratelimit", "\"default\";r=9;t=30")).await, None);
    assert_eq!(paused_until_after(status(429)).await, None);
    assert_eq!(paused_until_after(with(200, "retry-after", "30")).await, None);
    assert_eq!(paused_until_after(with(429, "retry-after", "soon")).await, None);
    assert_eq!(paused_until_after(with(429, "retry-after", "-3")).await, None);
    // Ten years is capped to 25 hours.
    assert_eq!(paused_until_after(with(429, "retry-after", "315360000")).await, at(25 * 3600));
}

#[tokio::test(start_paused = true)]
async fn a_pause_longer_than_the_caller_may_wait_fails_at_once() {
    let server = Server::new(Duration::ZERO, |_, n| {
        if n == 0 { with(429, "retry-after", "120") } else { status(200) }
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let svc = RateLimitLayer::new()
        .clock(clock())
        .max_wait(Duration::from_secs(60))
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .layer(server.clone());
    svc.clone().oneshot(get("https://a.example/")).await.unwrap();
    let before = clock().now();
    let err = svc.clone().oneshot(get("https://a.example/other")).await.unwrap_err();
    assert_eq!(clock().now(), before, "failed without waiting");
    let paused = err.downcast_ref::<HostPaused>().unwrap();
    assert_eq!(paused.key.as_str(), "https://a.example:443");
    let rejected = events.lock().unwrap().iter().any(|e| {
        matches!(e, RateLimitEvent::Rejected { key, until, .. } if key.as_str() == "https://a.example:443" && Some(*until) == at(120))
    });
    assert!(rejected, "a Rejected event fired");
    assert_eq!(Some(paused.until), at(120));
    assert_eq!(paused.disposition(), Disposition::RetryAt(at(120).unwrap()));
    assert_eq!(server.arrivals("a.example").len(), 1);
    // Another host is not affected.
    svc.oneshot(get("https://b.example/")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_held_request_is_rejected_if_the_pause_grows_past_its_limit() {
    let layer = RateLimitLayer::new()
        .clock(clock())
        .max_wait(Duration::from_secs(10))
        .release_spread(Duration::ZERO);
    let registry = layer.registry();
    let key = unattended_core::ServiceKey::new("https://a.example:443");
    registry.pause(key.clone(), at(5).unwrap(), t0());
    let svc = layer.layer(Server::new(Duration::ZERO, |_, _| status(200)));
    let held = tokio::spawn(svc.oneshot(get("https://a.example/")));
    // While it waits, the server extends the pause to 30 s: past the request's 10 s limit.
    clock().sleep(Duration::from_secs(1)).await;
    registry.pause(key, at(30).unwrap(), clock().wall());
    let err = held.await.unwrap().unwrap_err();
    assert_eq!(err.downcast_ref::<HostPaused>().map(|p| p.until), at(30));
}

#[tokio::test(start_paused = true)]
async fn a_pause_set_by_hand_holds_requests() {
    let layer = RateLimitLayer::new().clock(clock()).release_spread(Duration::ZERO);
    layer.registry().pause("https://a.example:443", at(3).unwrap(), t0());
    let server = Server::new(Duration::ZERO, |_, _| status(200));
    let start = clock().now();
    layer.layer(server.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(server.arrivals("a.example"), [start + Duration::from_secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn a_custom_pushback_maps_other_answers() {
    // An API that says "quota exceeded" with a 403 and a header of its own.
    let pushback = |res: &Response<()>, clock: &Clock| {
        (res.status() == 403 && res.headers().contains_key("x-quota-exceeded")).then(|| {
            unattended_core::ServerWait {
                until: add_saturating(clock.wall(), Duration::from_secs(3600)),
                source: WaitSource::RetryAfter,
                capped: false,
            }
        })
    };
    let layer = RateLimitLayer::new().clock(clock()).pushback(pushback);
    let registry = layer.registry();
    let server = Server::new(Duration::ZERO, |_, _| with(403, "x-quota-exceeded", "1"));
    layer.layer(server).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(registry.paused_until("https://a.example:443", t0()), at(3600));
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_key_are_never_held() {
    let layer = RateLimitLayer::new().clock(clock()).key(|_: &Request<Bytes>| None);
    let registry = layer.registry();
    registry.pause("https://a.example:443", at(60).unwrap(), t0());
    let server = Server::new(Duration::ZERO, |_, _| with(429, "retry-after", "9"));
    let start = clock().now();
    layer.layer(server).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(clock().now(), start);
}

#[tokio::test(start_paused = true)]
async fn pacing_spaces_requests_per_host() {
    let pace = unattended_ratelimit::Pace::every(Duration::from_secs(1)).unwrap();
    let server = Server::new(Duration::ZERO, |_, _| status(200));
    let svc = RateLimitLayer::new()
        .clock(clock())
        .pace(pace)
        .max_wait(Duration::from_secs(3))
        .layer(server.clone());
    let start = clock().now();
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..5 {
        let svc = svc.clone();
        calls.spawn(async move {
            svc.oneshot(get(&format!("https://{}.example/", if n == 4 { "b" } else { "a" }))).await
        });
    }
    let mut rejected = Vec::new();
    while let Some(result) = calls.join_next().await {
        if let Err(err) = result.unwrap() {
            rejected.push(err.downcast::<HostPaused>().unwrap());
        }
    }
    let gaps: Vec<_> = server.arrivals("a.example").iter().map(|t| *t - start).collect();
    assert_eq!(
        gaps,
        [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3)]
    );
    assert_eq!(server.arrivals("b.example"), [start], "another host has its own pace");
    assert!(rejected.is_empty());

    // A slot further away than the caller may wait: refused at once, with the slot's time.
    let svc = RateLimitLayer::new()
        .clock(clock())
        .pace(pace)
        .max_wait(Duration::ZERO)
        .layer(server.clone());
    svc.clone().oneshot(get("https://c.example/")).await.unwrap();
    let err = svc.oneshot(get("https://c.example/")).await.unwrap_err();
    let paused = err.downcast_ref::<HostPaused>().unwrap();
    assert_eq!(paused.until, add_saturating(clock().wall(), Duration::from_secs(1)));
}
