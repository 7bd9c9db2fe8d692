//! What the email engine's tests share: a mailbox, Google's token endpoint, a webhook
//! receiver, a store in a temporary folder, and runners built over them.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use unattended_core::{BoxError, Clock};
use unattended_engine_email::Checkpoint;
use unattended_runner::{OnceOutcome, Runner, RunnerConfig, transport};
use unattended_store::{StateStore as _, Store, StoreConfig};
use unattended_testkit::gmail::Gmail;
use unattended_testkit::oauth::GoogleOAuth;

/// The environment variables the tests name as the OAuth client's: cargo sets them for every
/// test binary, and a test cannot set variables itself (that takes `unsafe` code).
pub const CLIENT_ID_ENV: &str = "CARGO_PKG_NAME";
pub const CLIENT_SECRET_ENV: &str = "CARGO_PKG_VERSION";

pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is set by cargo for tests"))
}

/// How the webhook receiver behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookMode {
    /// `200`.
    Up,
    /// `503`.
    Unavailable,
    /// The connection breaks before an answer.
    Refused,
    /// Takes the delivery, then never answers (a crash of the sender right after its POST
    /// arrived looks like this to the sender's next run).
    TakeAndHang,
    /// `404`: the URL is wrong.
    NotFound,
}

#[derive(Debug)]
struct HookState {
    mode: HookMode,
    /// Every POST that arrived: its `Idempotency-Key`, its body, whether it was answered 2xx.
    seen: Vec<(String, Value, bool)>,
}

/// A webhook receiver, in-process or served; clones share it.
#[derive(Clone, Debug)]
pub struct Hooks(Arc<Mutex<HookState>>);

impl Hooks {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(HookState { mode: HookMode::Up, seen: Vec::new() })))
    }

    pub fn set(&self, mode: HookMode) {
        self.0.lock().unwrap().mode = mode;
    }

    /// `(key, message id, accepted)` of every POST that arrived.
    pub fn arrived(&self) -> Vec<(String, String, bool)> {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .seen
            .iter()
            .map(|(k, v, ok)| {
                (k.clone(), v["message"]["id"].as_str().unwrap_or_default().to_owned(), *ok)
            })
            .collect()
    }

    /// The keys of the deliveries answered `2xx`.
    pub fn accepted(&self) -> Vec<String> {
        self.arrived().into_iter().filter(|(_, _, ok)| *ok).map(|(k, _, _)| k).collect()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.0.lock().unwrap().seen.iter().map(|(_, v, _)| v.clone()).collect()
    }
}

impl<B> tower::Service<Request<B>> for Hooks
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let hooks = self.clone();
        Box::pin(async move {
            let key = req
                .headers()
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mode = hooks.0.lock().unwrap().mode;
            let status = match mode {
                HookMode::Up => StatusCode::OK,
                HookMode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                HookMode::NotFound => StatusCode::NOT_FOUND,
                HookMode::Refused => {
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
                }
                HookMode::TakeAndHang => {
                    hooks.0.lock().unwrap().seen.push((key, body, false));
                    return std::future::pending().await;
                }
            };
            hooks.0.lock().unwrap().seen.push((key, body, status.is_success()));
            let mut res = Response::new(Full::new(Bytes::from_static(b"{}")));
            *res.status_mut() = status;
            Ok(res)
        })
    }
}

/// A service that passes requests to `inner`, and after the `nth` answered `method` request
/// whose path starts with `prefix` (counted from 1) never answers: the request took effect,
/// the sender never learns it.
#[derive(Clone)]
pub struct CutAfter<S> {
    inner: S,
    rule: Arc<Mutex<Option<(Method, String, u64)>>>,
}

impl<S> CutAfter<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, rule: Arc::default() }
    }

    pub fn cut(&self, method: Method, prefix: &str, nth: u64) {
        *self.rule.lock().unwrap() = Some((method, prefix.to_owned(), nth));
    }

    pub fn clear(&self) {
        *self.rule.lock().unwrap() = None;
    }
}

impl<S, B> tower::Service<Request<B>> for CutAfter<S>
where
    S: tower::Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cut = {
            let mut rule = self.rule.lock().unwrap();
            match rule.as_mut() {
                Some((m, prefix, n))
                    if m == req.method() && req.uri().path().starts_with(&**prefix) =>
                {
                    *n -= 1;
                    *n == 0
                }
                _ => false,
            }
        };
        Box::pin(async move {
            let res = inner.call(req).await;
            if cut {
                return std::future::pending().await;
            }
            res
        })
    }
}

/// A service answering every request through `inner`, and calling `hook` with the count of
/// requests so far before each (to change the world mid-run).
#[derive(Clone)]
pub struct Tap<S> {
    inner: S,
    count: Arc<Mutex<u64>>,
    hook: Arc<dyn Fn(u64) + Send + Sync>,
}

impl<S> Tap<S> {
    pub fn new(inner: S, hook: impl Fn(u64) + Send + Sync + 'static) -> Self {
        Self { inner, count: Arc::default(), hook: Arc::new(hook) }
    }
}

impl<S: tower::Service<Request<B>> + Clone, B> tower::Service<Request<B>> for Tap<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> S::Future {
        let n = {
            let mut count = self.count.lock().unwrap();
            *count += 1;
            *count
        };
        (self.hook)(n);
        self.inner.call(req)
    }
}

/// The test world: a mailbox, a token endpoint, a webhook receiver, a state folder.
pub struct World {
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub gmail: Gmail,
    pub oauth: GoogleOAuth,
    pub hooks: Hooks,
    /// Wraps the Gmail mock's transport, to cut answers short.
    pub gmail_cut: CutAfter<Gmail>,
    pub hooks_cut: CutAfter<Hooks>,
}

pub const START: &str = "2026-12-01T09:00:00Z";

impl World {
    pub fn new(seed: u64) -> Self {
        Self::with_clock(Clock::starting_at(START.parse().unwrap()), seed)
    }

    pub fn with_clock(clock: Clock, seed: u64) -> Self {
        let oauth = GoogleOAuth::new(clock);
        oauth.accept_client(&env(CLIENT_ID_ENV), &env(CLIENT_SECRET_ENV));
        let gmail = Gmail::new(clock, seed).with_auth(oauth.clone());
        let hooks = Hooks::new();
        Self {
            clock,
            dir: tempfile::tempdir().unwrap(),
            gmail_cut: CutAfter::new(gmail.clone()),
            hooks_cut: CutAfter::new(hooks.clone()),
            gmail,
            oauth,
            hooks,
        }
    }

    /// The config: services laid over the engine's defaults, one task `mail` with `task`'s
    /// extra keys and `rules` (TOML of `[[tasks.mail.rules]]` tables).
    pub fn config_text(task: &str, rules: &str) -> String {
        format!(
            r#"
[services.gmail.oauth]
client_id_env = "{CLIENT_ID_ENV}"
client_secret_env = "{CLIENT_SECRET_ENV}"

[tasks.mail]
engine = "email"
every = "5m"
tz = "UTC"
{task}

{rules}
"#
        )
    }

    pub fn config(&self, text: &str) -> RunnerConfig {
        RunnerConfig::parse(
            text,
            self.dir.path().join("unattended.toml"),
            &unattended_engine_email::kinds(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn store(&self) -> Store {
        let path = self.dir.path().join("state.db");
        let store = Store::open(path, StoreConfig::new().inline(true), self.clock).await.unwrap();
        if store.blocking(|db| db.credential("google")).unwrap().is_none() {
            let refresh = secrecy::SecretString::from(self.oauth.grant());
            let now = self.clock.wall();
            store.blocking(|db| db.save_credential("google", &refresh, now)).unwrap();
        }
        store
    }

    /// A runner on the world's store (a new one is a restarted process).
    pub async fn runner(&self, text: &str) -> Runner {
        Runner::builder(self.config(text))
            .clock(self.clock)
            .seed(5)
            .store(self.store().await)
            .transport("gmail", transport(self.gmail_cut.clone()))
            .transport("webhook", transport(self.hooks_cut.clone()))
            .transport("oauth:google", transport(self.oauth.token_endpoint()))
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    /// A runner whose Gmail is `gmail` (the mock wrapped by the test), webhooks reaching the
    /// receiver uncut.
    pub async fn runner_over(&self, text: &str, gmail: unattended_runner::Transport) -> Runner {
        Runner::builder(self.config(text))
            .clock(self.clock)
            .seed(5)
            .store(self.store().await)
            .transport("gmail", gmail)
            .transport("webhook", transport(self.hooks.clone()))
            .transport("oauth:google", transport(self.oauth.token_endpoint()))
            .build()
            .await
            .unwrap()
    }

    pub async fn once(runner: &mut Runner) -> OnceOutcome {
        runner.once("mail").await.unwrap()
    }

    /// Runs `runner` on its schedule for `d` of the clock.
    pub async fn run_for(&self, runner: &mut Runner, d: Duration) {
        let stop = tokio_util::sync::CancellationToken::new();
        let stopper = stop.clone();
        let clock = self.clock;
        let timer = tokio::spawn(async move {
            clock.sleep(d).await;
            stopper.cancel();
        });
        runner.run(stop).await.unwrap();
        timer.await.unwrap();
    }

    pub async fn checkpoint(runner: &Runner) -> Checkpoint {
        runner.store().load::<Checkpoint>("mail").await.unwrap().unwrap().value
    }

    /// `messages.modify` requests Gmail answered `200`, per message id.
    pub fn modified(&self, id: &str) -> usize {
        let path = format!("/gmail/v1/users/me/messages/{id}/modify");
        self.gmail
            .log()
            .to(&Method::POST, &path)
            .iter()
            .filter(|r| r.status == Some(StatusCode::OK))
            .count()
    }

    /// `messages.get` requests for `id`.
    pub fn fetched(&self, id: &str) -> usize {
        let path = format!("/gmail/v1/users/me/messages/{id}");
        self.gmail.log().to(&Method::GET, &path).iter().filter(|r| r.path == path).count()
    }

    pub fn count(&self, method: &Method, path: &str) -> usize {
        self.gmail.log().count(method, path)
    }

    pub fn jsonl_lines(&self, name: &str) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.path().join(name)) {
            Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The message ids in order of `(key, id, accepted)` deliveries.
pub fn ids(arrived: &[(String, String, bool)]) -> Vec<String> {
    arrived.iter().map(|(_, id, _)| id.clone()).collect()
}
