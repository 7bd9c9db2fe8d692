//! The client's default settings against hosts that fail in the common ways, in-process under a
//! paused clock: a host that dies after a long healthy history, a flaky host, a dead host.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use unattended_client::{Client, ServiceConfig};
use unattended_core::Clock;

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

/// Which requests fail, by their number at the host (from 1).
type Rule = Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// A host answering `200 {}` or `503`, as its rule says; counts requests.
#[derive(Clone)]
struct Host {
    requests: Arc<AtomicU64>,
    fails: Arc<Mutex<Rule>>,
}

impl Host {
    fn healthy() -> Self {
        Self { requests: Arc::default(), fails: Arc::new(Mutex::new(Arc::new(|_| false))) }
    }
    fn failing(rule: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
        let host = Self::healthy();
        host.set(rule);
        host
    }
    fn set(&self, rule: impl Fn(u64) -> bool + Send + Sync + 'static) {
        *self.fails.lock().unwrap() = Arc::new(rule);
    }
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

type Fut = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl tower::Service<Request<Full<Bytes>>> for Host {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Fut {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let fails = self.fails.lock().unwrap().clone();
        let res = if fails(n) {
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        } else {
            Response::new(Full::new(Bytes::from_static(b"{}")))
        };
        // A few milliseconds of latency, so concurrent calls overlap.
        let sleep = clock().sleep(Duration::from_millis(5));
        Box::pin(async move {
            sleep.await;
            Ok(res)
        })
    }
}

fn client(extra: &str, host: &Host) -> Client {
    let config =
        ServiceConfig::from_toml(&format!("base_url = \"https://api.example.com\"\n{extra}"))
            .unwrap();
    Client::builder(config).clock(clock()).seed(7).build_with(host.clone()).unwrap()
}

/// What `calls` calls did, `workers` at a time, each worker pausing `gap` between its calls.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    succeeded: u64,
    /// Failed without a request reaching the host (an open breaker).
    failed_fast: u64,
    requests: u64,
}

impl Tally {
    fn success_rate(&self) -> f64 {
        self.succeeded as f64 / self.calls as f64
    }
    fn requests_per_call(&self) -> f64 {
        self.requests as f64 / self.calls as f64
    }
}

async fn run(client: &Client, host: &Host, workers: u64, calls: u64, gap: Duration) -> Tally {
    let before = host.requests();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let client = client.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..calls / workers {
                match client.get_json::<serde_json::Value>("/v1/items").await {
                    Ok(_) => tally.succeeded += 1,
                    Err(err) if err.is_unavailable() && err.attempts().is_none_or(|a| a <= 1) => {
                        tally.failed_fast += 1;
                    }
                    Err(_) => {}
                }
                tally.calls += 1;
                clock().sleep(gap).await;
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        let tally = tally.unwrap();
        total.calls += tally.calls;
        total.succeeded += tally.succeeded;
        total.failed_fast += tally.failed_fast;
    }
    total.requests = host.requests() - before;
    total
}

/// A host that answered 2,000 calls well and then fails every one: the rate over the last minute
/// is far below 50%, but ten failures in a row open the breaker, and the calls after it fail
/// fast instead of reaching the host.
#[tokio::test(start_paused = true)]
async fn the_default_breaker_opens_within_ten_failures_whatever_the_history() {
    let host = Host::healthy();
    let client = client("", &host);
    let healthy = run(&client, &host, 1, 2_000, Duration::from_millis(10)).await;
    assert_eq!((healthy.succeeded, healthy.requests), (2_000, 2_000));
    host.set(|_| true);
    // 1,000 failing calls within 10 s: inside the window, before any probe.
    let dead = run(&client, &host, 1, 1_000, Duration::from_millis(10)).await;
    assert!(dead.requests <= 10, "{dead:?}: the breaker opened after {} failures", dead.requests);
    assert!(dead.failed_fast >= 990, "{dead:?}");
    // The rate alone waits for the history to leave the window, and the host takes the load.
    let host = Host::healthy();
    let rate_only = self::client("[breaker]\nconsecutive_failures = 0", &host);
    run(&rate_only, &host, 1, 2_000, Duration::from_millis(10)).await;
    host.set(|_| true);
    let dead = run(&rate_only, &host, 1, 1_000, Duration::from_millis(10)).await;
    assert!(dead.requests >= 100, "{dead:?}");
}

/// A well-mixed draw in `[0, 1)` for request `n` (splitmix64), so a "random" host is the same
/// on every run.
fn draw(n: u64) -> f64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// A host failing 20% of its requests: every fifth (as a load balancer in front of one bad
/// backend out of five does), or at random. The default budget (successes pay for retries) never
/// refuses a retry, the breaker stays closed, and at least 99.9% of the calls succeed, one
/// caller or ten at a time. (With ten callers, a retry lands on a failing turn one time in five:
/// four attempts would cap the calls at 1 − 0.2⁴ = 99.84%; the default is five.)
#[tokio::test(start_paused = true)]
async fn a_flaky_host_costs_almost_no_calls() {
    let every_fifth = |n: u64| n.is_multiple_of(5);
    let random = |n: u64| draw(n) < 0.2;
    let hosts: [(&str, &dyn Fn() -> Host, u64); 4] = [
        ("every fifth request, 1 caller", &|| Host::failing(every_fifth), 1),
        ("every fifth request, 10 callers", &|| Host::failing(every_fifth), 10),
        ("20% at random, 1 caller", &|| Host::failing(random), 1),
        ("20% at random, 10 callers", &|| Host::failing(random), 10),
    ];
    for (name, host, workers) in hosts {
        let host = host();
        let client = client("", &host);
        let flaky = run(&client, &host, workers, 10_000, Duration::from_millis(10)).await;
        println!(
            "{name}: {:.2}% of {} calls succeeded, {:.3} requests per call",
            flaky.success_rate() * 100.0,
            flaky.calls,
            flaky.requests_per_call()
        );
        assert!(flaky.success_rate() >= 0.999, "{name}: {flaky:?}");
        assert_eq!(flaky.failed_fast, 0, "{name}: {flaky:?}");
        assert!(flaky.requests_per_call() >= 1.2, "{name}: the failures were retried: {flaky:?}");
    }
}

/// A dead host: without the breaker, the budget holds the load to at most 1.2 requests per
/// call (the calls, and the ten retries saved up); with it, the calls fail fast and only the
/// first failures and the probes reach the host.
#[tokio::test(start_paused = true)]
async fn a_dead_host_costs_little_with_or_without_the_breaker() {
    let host = Host::failing(|_| true);
    let client = client("[breaker]\nenabled = false", &host);
    let unguarded = run(&client, &host, 10, 1_000, Duration::from_secs(1)).await;
    let host = Host::failing(|_| true);
    let client = self::client("", &host);
    let guarded = run(&client, &host, 10, 1_000, Duration::from_secs(1)).await;
    println!(
        "dead host: {:.3} requests per call without the breaker, {:.3} with it ({} calls each)",
        unguarded.requests_per_call(),
        guarded.requests_per_call(),
        guarded.calls
    );
    assert_eq!(unguarded.succeeded + guarded.succeeded, 0);
    assert!(unguarded.requests_per_call() <= 1.2, "{unguarded:?}");
    assert!(guarded.requests_per_call() <= 0.05, "{guarded:?}");
}
