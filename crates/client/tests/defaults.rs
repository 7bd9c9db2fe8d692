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
