//! The default client against nginx's `limit_req` (the testkit's leaky bucket), in-process under
//! a paused clock: full speed without `429`s, with or without `Retry-After`, fairly shared, and
//! following the limit when it changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use unattended_client::{Client, ServiceConfig};
use unattended_core::Clock;
use unattended_testkit::leaky::{LeakyBucket, LimitReq};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

/// What a run of `callers` × `calls` GETs measured.
#[derive(Debug)]
struct Run {
    /// From the first call to the last answer.
    took: Duration,
    /// Calls made, and calls that failed.
    calls: usize,
    failed: usize,
    /// Requests the bucket refused.
    refused: u64,
    /// Each caller's time to make all its calls.
    per_caller: Vec<Duration>,
    /// Each call's time, retries and waits included.
    latencies: Vec<Duration>,
}

impl Run {
    fn goodput(&self, rate: f64) -> f64 {
        let ideal = self.calls as f64 / rate;
        ideal / self.took.as_secs_f64()
    }

    fn refused_per_call(&self) -> f64 {
        self.refused as f64 / self.calls as f64
    }

    fn p99(&self) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
    }
}

fn client(text: &str, api: &LeakyBucket) -> Client {
    let config =
        ServiceConfig::from_toml(&format!("base_url = \"https://api.example.com\"\n{text}"))
            .unwrap();
    Client::builder(config).clock(clock()).seed(7).build_with(api.clone()).unwrap()
}

async fn run(client: &Client, callers: usize, calls: usize) -> Run {
    let clock = clock();
    let start = clock.now();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (client, latencies) = (client.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut failed = 0;
            for _ in 0..calls {
                let began = clock.now();
                if client.get_json::<serde_json::Value>("/v1/items").await.is_err() {
                    failed += 1;
                }
                latencies.lock().unwrap().push(clock.now() - began);
            }
            (failed, clock.now() - start)
        });
    }
    let (mut failed, mut per_caller) = (0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (f, took) = done.unwrap();
        failed += f;
        per_caller.push(took);
    }
    let latencies = latencies.lock().unwrap().clone();
    Run {
        took: clock.now() - start,
        calls: callers * calls,
        failed,
        refused: 0,
        per_caller,
        latencies,
    }
}

/// nginx's `rate=50r/s burst=10 nodelay`, 2 ms to answer.
fn nginx(limit: LimitReq) -> LeakyBucket {
    LeakyBucket::new(clock(), limit).latency(Duration::from_millis(2))
}

const CALLERS: usize = 32;
const CALLS: usize = 40;

/// The figures every variant of the server must give the default client: at least 0.9 of the
/// ideal speed, at most 0.05 refusals per call, every call through, and no caller kept waiting
/// for more than twice its fair share of the limit.
async fn assert_full_speed(limit: LimitReq) -> Run {
    let api = nginx(limit);
    let client = client("", &api);
    let mut run = run(&client, CALLERS, CALLS).await;
    run.refused = api.counts().1;
    let goodput = run.goodput(limit.rate);
    eprintln!(
        "{limit:?}: goodput {goodput:.3}, {:.4} refusals per call, p99 {:?}, took {:?}",
        run.refused_per_call(),
        run.p99(),
        run.took
    );
    assert_eq!(run.failed, 0, "{} of {} calls failed", run.failed, run.calls);
    assert!(goodput >= 0.9, "goodput {goodput:.3}");
    assert!(run.refused_per_call() <= 0.05, "{} refused in {} calls", run.refused, run.calls);
    // A caller's fair share: its calls at its part of the rate.
    let fair = Duration::from_secs_f64(CALLS as f64 * CALLERS as f64 / limit.rate);
    let slowest = run.per_caller.iter().max().unwrap();
    assert!(*slowest <= fair * 2, "a caller took {slowest:?}, fair share {fair:?}");
    // And no single call waited more than twice its turn in line, plus what the server asked.
    let turn = Duration::from_secs_f64(CALLERS as f64 / limit.rate);
    // The server asks for a second with `Retry-After`, or with `RateLimit: ...;r=0;t=1`.
    let asked = match (limit.retry_after, limit.ratelimit_fields) {
        (Some(seconds), _) => Duration::from_secs(seconds),
        (None, true) => Duration::from_secs(1),
        (None, false) => Duration::ZERO,
    };
    let longest = run.latencies.iter().max().unwrap();
    assert!(*longest <= turn * 2 + asked + Duration::from_millis(300), "a call took {longest:?}");
    run
}

#[tokio::test(start_paused = true)]
async fn full_speed_behind_limit_req_without_retry_after() {
    assert_full_speed(LimitReq::new(50.0, 10)).await;
}

#[tokio::test(start_paused = true)]
async fn full_speed_behind_limit_req_with_retry_after() {
    assert_full_speed(LimitReq::new(50.0, 10).retry_after(1)).await;
}

#[tokio::test(start_paused = true)]
async fn full_speed_behind_limit_req_sending_the_ratelimit_fields() {
    let run = assert_full_speed(LimitReq::new(50.0, 10).ratelimit_fields()).await;
    // The policy names the rate: nothing to probe for, so only the first burst is refused.
    assert!(run.refused <= CALLERS as u64, "{} refused", run.refused);
}

#[tokio::test(start_paused = true)]
async fn a_configured_pace_is_never_refused() {
    let api = nginx(LimitReq::new(50.0, 10).retry_after(1));
    let client = client("[ratelimit]\npace = \"50/s\"\nburst = 10", &api);
    let run = run(&client, CALLERS, CALLS).await;
    assert_eq!((run.failed, api.counts().1), (0, 0));
    assert!(run.goodput(50.0) >= 0.97, "{}", run.goodput(50.0));
}

/// The server's limit drops from 50 to 20 per second at 20 s and comes back at 60 s: the
/// client's rate follows it down, without a storm of refusals, and back up.
#[tokio::test(start_paused = true)]
async fn the_rate_follows_the_limit_down_and_back_up() {
    let api = nginx(LimitReq::new(50.0, 10));
    let client = client("", &api);
    let clock = clock();
    let start = clock.now();
    let operator = {
        let api = api.clone();
        tokio::spawn(async move {
            clock.sleep_until(start + Duration::from_secs(20)).await;
            api.set_rate(20.0);
            clock.sleep_until(start + Duration::from_secs(60)).await;
            api.set_rate(50.0);
        })
    };
    // Enough calls for 110 s or so.
    let run = run(&client, CALLERS, 110).await;
    operator.await.unwrap();
    assert_eq!(run.failed, 0);
    let log = api.log().all();
    let rate_in = |from: u64, to: u64| {
        let (from, to) = (start + Duration::from_secs(from), start + Duration::from_secs(to));
        let taken = log
            .iter()
            .filter(|r| r.at >= from && r.at < to && r.status == Some(http::StatusCode::OK))
            .count();
        let refused = log
            .iter()
            .filter(|r| r.at >= from && r.at < to && r.status != Some(http::StatusCode::OK))
            .count();
        (taken as f64 / (to - from).as_secs_f64(), refused)
    };
    let (before, _) = rate_in(5, 20);
    let (lowered, refused_low) = rate_in(25, 60);
    let (raised, _) = rate_in(80, 100);
    eprintln!("rates: {before:.1} → {lowered:.1} ({refused_low} refused) → {raised:.1}");
    assert!(before >= 45.0, "{before}");
    assert!((16.0..=20.5).contains(&lowered), "{lowered}");
    assert!(refused_low <= 35, "{refused_low} refused at the lower limit");
    assert!(raised >= 40.0, "recovered to {raised}");
}

/// 32 callers are refused at once with `429 Retry-After: 1` (all in flight when the first answer
/// comes): their retries wait for the server's instant, then take their places in the host's
/// paced line (or, not paced, go at random over the release spread) instead of arriving in the
/// same millisecond (the seed's thundering herd).
#[tokio::test(start_paused = true)]
async fn retries_after_a_retry_after_are_spread() {
    // Not paced, the 32 retries draw on the retry budget, which holds 10: off here, since only
    // their timing is in question.
    for text in ["", "[ratelimit]\nadaptive = false\n[retry]\nbudget = false"] {
        let herd = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let api = {
            let herd = herd.clone();
            let clock = clock();
            tower::service_fn(move |_req: http::Request<http_body_util::Full<bytes::Bytes>>| {
                let mut seen = herd.lock().unwrap();
                seen.push(clock.now());
                let refuse = seen.len() <= CALLERS;
                drop(seen);
                let res = http::Response::builder()
                    .status(if refuse { 429 } else { 200 })
                    .header("retry-after", "1")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                    .unwrap();
                // 5 ms to answer: all 32 are sent before the first refusal is back.
                let sleep = clock.sleep(Duration::from_millis(5));
                async move {
                    sleep.await;
                    Ok::<_, std::convert::Infallible>(res)
                }
            })
        };
        let config =
            ServiceConfig::from_toml(&format!("base_url = \"https://api.example.com\"\n{text}"))
                .unwrap();
        let client = Client::builder(config).clock(clock()).seed(3).build_with(api).unwrap();
        let start = clock().now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..CALLERS {
            let client = client.clone();
            calls.spawn(async move { client.get_json::<serde_json::Value>("/x").await });
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap().unwrap();
        }
        let herd = herd.lock().unwrap();
        let retries: Vec<_> = herd[CALLERS..].iter().map(|t| *t - start).collect();
        assert_eq!(retries.len(), CALLERS, "{text}: one retry each");
        assert!(retries.iter().all(|t| *t >= Duration::from_secs(1)), "{text}: {retries:?}");
        let span = *retries.iter().max().unwrap() - *retries.iter().min().unwrap();
        let distinct: std::collections::BTreeSet<_> = retries.iter().collect();
        assert!(span >= Duration::from_millis(300), "{text}: within {span:?}");
        assert!(distinct.len() > CALLERS / 2, "{text}: {} distinct instants", distinct.len());
    }
}
