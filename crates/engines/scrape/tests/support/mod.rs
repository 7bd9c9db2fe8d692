//! A world for scrape tests: sites behind one in-process transport, a store in a tempdir, the
//! whole runner under a paused clock.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio_util::sync::CancellationToken;
use unattended_core::{BoxError, Clock};
use unattended_engine_scrape::Change;
use unattended_runner::{OnceOutcome, Runner, RunnerConfig, transport};
use unattended_store::{Store, StoreConfig};
use unattended_testkit::website::{Robots, Web, Website};

pub const AGENT: &str = "pricewatch/1.0 (+https://example.com/bot; ops@example.com)";

pub fn start() -> Clock {
    Clock::starting_at("2026-12-01T10:00:00Z".parse().unwrap())
}

/// A product page; every call differs outside its fields (a page's clutter moves).
pub fn item(price: &str) -> String {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "<html><body><h1>Kettle</h1><span class=\"price\">{price}</span>\
         <p>Served {n}</p></body></html>"
    )
}

/// What a webhook receiver got: (idempotency key, change).
#[derive(Clone, Default)]
pub struct Hook {
    pub got: Arc<Mutex<Vec<(String, Change)>>>,
    pub down: Arc<Mutex<bool>>,
}

impl Hook {
    pub fn service(
        self,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = BoxError,
        Future = impl Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        let hook = self;
        tower::service_fn(move |req: Request<Full<Bytes>>| {
            let hook = hook.clone();
            async move {
                let status = if *hook.down.lock().unwrap() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    assert_eq!(req.method(), Method::POST);
                    let key = req.headers()["idempotency-key"].to_str().unwrap().to_owned();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let change: Change = serde_json::from_slice(&body).unwrap();
                    hook.got.lock().unwrap().push((key, change));
                    StatusCode::OK
                };
                let mut res = Response::new(Full::default());
                *res.status_mut() = status;
                Ok::<_, BoxError>(res)
            }
        })
    }

    pub fn keys(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().map(|(k, _)| k.clone()).collect()
    }
}

pub struct World {
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub a: Website,
    pub b: Website,
    pub hook: Hook,
}

impl World {
    pub fn new(robots_a: Robots, robots_b: Robots) -> Self {
        let clock = start();
        Self {
            clock,
            dir: tempfile::tempdir().unwrap(),
            a: Website::at("https://a.example", clock, robots_a, 1),
            b: Website::at("https://b.example", clock, robots_b, 2),
            hook: Hook::default(),
        }
    }

    pub fn web(&self) -> Web {
        Web::new([self.a.clone(), self.b.clone()])
    }

    pub fn jsonl(&self) -> PathBuf {
        self.dir.path().join("changes.jsonl")
    }

    /// The changes in the JSON Lines file.
    pub fn lines(&self) -> Vec<Change> {
        let text = std::fs::read_to_string(self.jsonl()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub async fn store(&self) -> Store {
        let config = StoreConfig::new().inline(true);
        Store::open(self.dir.path().join("state.db"), config, self.clock).await.unwrap()
    }

    /// The changes kept in the store.
    pub async fn stored(&self) -> Vec<Change> {
        let store = self.store().await;
        store
            .entries::<Change>("watch", "change", None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.value)
            .collect()
    }

    /// The task `watch` with `pages` and `extra` lines of its table.
    pub fn config(&self, pages: &[String], extra: &str) -> String {
        let pages: Vec<String> = pages.iter().map(|p| format!("{p:?}")).collect();
        format!(
            "[tasks.watch]\nengine = \"scrape\"\nevery = \"1h\"\ntz = \"UTC\"\n\
             user_agent = {AGENT:?}\npages = [{}]\n{extra}\n\
             [tasks.watch.fields]\nprice = \".price\"\ntitle = \"h1\"\n\
             [tasks.watch.report]\njsonl = \"changes.jsonl\"\nstore = true\n",
            pages.join(", ")
        )
    }

    pub async fn runner(&self, text: &str) -> Runner {
        let kinds = unattended_engine_scrape::kinds();
        let config = RunnerConfig::parse(text, self.dir.path().join("unattended.toml"), &kinds)
            .unwrap_or_else(|e| panic!("{e}"));
        Runner::builder(config)
            .clock(self.clock)
            .seed(5)
            .store(self.store().await)
            .fallback_transport(transport(self.web()))
            .transport("webhook", transport(self.hook.clone().service()))
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    pub async fn once(&self, text: &str) -> OnceOutcome {
        self.runner(text).await.once("watch").await.unwrap()
    }

    /// Runs a runner for `d` of simulated time, then shuts it down.
    pub async fn run_for(&self, runner: &mut Runner, d: Duration) {
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let clock = self.clock;
        let timer = tokio::spawn(async move {
            clock.sleep(d).await;
            stopper.cancel();
        });
        runner.run(stop).await.unwrap();
        timer.await.unwrap();
    }
}

/// GETs of `path` a site received.
pub fn gets(site: &Website, path: &str) -> usize {
    site.log().to(&Method::GET, path).into_iter().filter(|r| r.path == path).count()
}
