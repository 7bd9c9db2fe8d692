//! Behind nginx's `limit_req` (`rate=50r/s burst=10 nodelay`, `limit_req_status 429`): 32
//! callers × 40 GETs, with `Retry-After: 1` on the refusals and without, for four clients at
//! once, each on its own limited location. Prints the goodput (the ideal 25.6 s over the time
//! taken), the 429s per call (from nginx's log), the 99th percentile of a call's time and the
//! calls that failed.
//!
//! ```text
//! cargo run --release --example limit_req
//! ```
//!
//! Needs nginx (`apt-get install nginx`, or `NGINX=/path/to/nginx`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use unattended_client::{Client, ResilienceMiddleware, ServiceConfig};
use unattended_core::Clock;
use unattended_testkit::nginx::{self, Limited, Nginx};

const CALLERS: usize = 32;
const CALLS: usize = 40;
const RATE: u32 = 50;
const BURST: u32 = 10;

type Call = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

struct Row {
    client: &'static str,
    retry_after: bool,
    goodput: f64,
    refused_per_call: f64,
    p99: Duration,
    failed: usize,
}

async fn measure(call: Call) -> (Duration, Vec<Duration>, usize) {
    let call = std::sync::Arc::new(call);
    let clock = Clock::system();
    let start = clock.now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let call = call.clone();
        tasks.spawn(async move {
            let (mut latencies, mut failed) = (Vec::new(), 0);
            for _ in 0..CALLS {
                let began = clock.now();
                if !call().await {
                    failed += 1;
                }
                latencies.push(clock.now() - began);
            }
            (latencies, failed)
        });
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, f) = done.expect("a caller panicked");
        latencies.extend(l);
        failed += f;
    }
    (clock.now() - start, latencies, failed)
}

fn client(url: &str, extra: &str) -> Client {
    let text = format!("base_url = \"{url}\"\n{extra}");
    Client::builder(ServiceConfig::from_toml(&text).expect("config")).build().expect("client")
}

fn ours(client: Client, path: String) -> Call {
    Box::new(move || {
        let (client, path) = (client.clone(), path.clone());
        Box::pin(async move { client.get_json::<serde_json::Value>(&path).await.is_ok() })
    })
}

fn reqwest(client: reqwest_middleware::ClientWithMiddleware, url: String) -> Call {
    Box::new(move || {
        let request = client.get(&url);
        Box::pin(async move {
            match request.send().await {
                Ok(res) if res.status().is_success() => res.bytes().await.is_ok(),
                _ => false,
            }
        })
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let Some(binary) = nginx::binary() else {
        eprintln!("nginx is not installed: `apt-get install nginx`, or set NGINX");
        return std::process::ExitCode::from(2);
    };
    let names = [
        "Client, defaults",
        "Client + pace 50/s, burst 10",
        "reqwest + reqwest-retry",
        "reqwest + ResilienceMiddleware",
    ];
    let mut locations = Vec::new();
    for i in 0..names.len() {
        locations.push(Limited::new(&format!("/{i}/with-retry-after"), RATE, BURST).retry_after(1));
        locations.push(Limited::new(&format!("/{i}/without"), RATE, BURST));
    }
    let server = Nginx::start(&binary, &locations).await.expect("nginx starts");
    let url = server.url();
    let mut runs: Vec<(&'static str, bool, String, Call)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for retry_after in [true, false] {
            let path = format!("/{i}/{}", if retry_after { "with-retry-after" } else { "without" });
            let call = match i {
                0 => ours(client(&url, ""), path.clone()),
                1 => ours(client(&url, "[ratelimit]\npace = \"50/s\"\nburst = 10"), path.clone()),
                2 => {
                    let policy = reqwest_retry::policies::ExponentialBackoff::builder()
                        .build_with_max_retries(3);
                    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(policy))
                        .build();
                    reqwest(client, format!("{url}{path}"))
                }
                _ => {
                    let middleware = ResilienceMiddleware::from_config(&ServiceConfig::default())
                        .expect("config");
                    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                        .with(middleware)
                        .build();
                    reqwest(client, format!("{url}{path}"))
                }
            };
            runs.push((name, retry_after, path, call));
        }
    }
    // All at once: every client sees the same machine, on a location of its own.
    let mut measured = tokio::task::JoinSet::new();
    for (name, retry_after, path, call) in runs {
        measured.spawn(async move { (name, retry_after, path, measure(call).await) });
    }
    let mut rows = Vec::new();
    while let Some(done) = measured.join_next().await {
        let (client, retry_after, path, (took, mut latencies, failed)) = done.expect("a run");
        latencies.sort();
        let calls = CALLERS * CALLS;
        let (_, refused) = server.statuses(&path).expect("nginx's log");
        rows.push(Row {
            client,
            retry_after,
            goodput: (calls as f64 / f64::from(RATE)) / took.as_secs_f64(),
            refused_per_call: refused as f64 / calls as f64,
            p99: latencies[calls * 99 / 100],
            failed,
        });
    }
    rows.sort_by_key(|r| (names.iter().position(|n| *n == r.client), !r.retry_after));
    println!(
        "nginx limit_req rate={RATE}r/s burst={BURST} nodelay, 429; {CALLERS} callers x {CALLS} GETs (ideal {:.1} s)",
        (CALLERS * CALLS) as f64 / f64::from(RATE)
    );
    println!("| client | Retry-After | goodput | 429s per call | p99 | failed calls |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.2} s | {} |",
            r.client,
            if r.retry_after { "1" } else { "none" },
            r.goodput,
            r.refused_per_call,
            r.p99.as_secs_f64(),
            r.failed
        );
    }
    std::process::ExitCode::SUCCESS
}
