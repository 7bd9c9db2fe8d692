//! The default client against a real nginx `limit_req` over loopback, in real time:
//! `rate=50r/s burst=10 nodelay`, `limit_req_status 429`, 32 callers × 40 GETs, one location
//! sending `Retry-After: 1` and one sending none, both at once (about 27 s).
//!
//! `bash .ci/run` installs nginx from the distribution's packages when it is missing and can be
//! installed, and then sets `UNATTENDED_REQUIRE_NGINX=1`, so that the test fails instead of
//! skipping. Without nginx (and without that variable) the test skips, and says so on stderr past
//! the test harness's capture, so the skip shows in every run's output.

use std::io::Write;
use std::time::Duration;

use unattended_client::{Client, ServiceConfig};
use unattended_core::Clock;
use unattended_testkit::nginx::{self, Limited, Nginx};

const CALLERS: usize = 32;
const CALLS: usize = 40;
const RATE: u32 = 50;

struct Figures {
    goodput: f64,
    refused_per_call: f64,
    p99: Duration,
    failed: usize,
}

/// Runs the scenario against `path` of `server`; the refusals are counted in nginx's log.
async fn scenario(server: &Nginx, path: &'static str) -> Figures {
    let config = ServiceConfig::from_toml(&format!("base_url = \"{}\"", server.url())).unwrap();
    let client = Client::builder(config).build().unwrap();
    let clock = Clock::system();
    let start = clock.now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let client = client.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            for _ in 0..CALLS {
                let began = clock.now();
                if client.get_json::<serde_json::Value>(path).await.is_err() {
                    failed += 1;
                }
                latencies.push(clock.now() - began);
            }
            (latencies, failed)
        });
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, f) = done.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let took = clock.now() - start;
    latencies.sort();
    let calls = CALLERS * CALLS;
    let (_, refused) = server.statuses(path).unwrap();
    Figures {
        goodput: (calls as f64 / f64::from(RATE)) / took.as_secs_f64(),
        refused_per_call: refused as f64 / calls as f64,
        p99: latencies[calls * 99 / 100],
        failed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_client_behind_nginx_limit_req() {
    let Some(binary) = nginx::binary() else {
        assert!(
            std::env::var_os("UNATTENDED_REQUIRE_NGINX").is_none(),
            "nginx is required here but not installed"
        );
        // Past the harness's capture: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED the_default_client_behind_nginx_limit_req: nginx is not installed \
             (`apt-get install nginx`, or `bash .ci/run` as root, installs it; $NGINX names \
             another binary) !!!\n"
        );
        return;
    };
    let server = Nginx::start(
        &binary,
        &[
            Limited::new("/with-retry-after", RATE, 10).retry_after(1),
            Limited::new("/without", RATE, 10),
        ],
    )
    .await
    .unwrap();
    let (with, without) =
        tokio::join!(scenario(&server, "/with-retry-after"), scenario(&server, "/without"),);
    for (name, f) in [("with Retry-After", &with), ("without Retry-After", &without)] {
        eprintln!(
            "nginx limit_req {name}: goodput {:.3} of ideal, {:.4} 429s per call, p99 {:?}, {} failed",
            f.goodput, f.refused_per_call, f.p99, f.failed
        );
        assert_eq!(f.failed, 0, "{name}: every call succeeds");
        assert!(f.refused_per_call <= 0.05, "{name}: {:.4} 429s per call", f.refused_per_call);
        // Loose: nginx's clock is real, and a loaded machine may be slow to send.
        assert!(f.goodput >= 0.75, "{name}: goodput {:.3}", f.goodput);
    }
}
