//! The client, and how it is built.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Parts, PathAndQuery};
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use unattended_breaker::{
    BreakerConfig, BreakerHandle, CircuitBreakerLayer, FailurePolicy, OpenDuration,
};
use unattended_core::{Classifier, Clock, HttpClassifier, Random, ServiceKey};
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_ratelimit::{Pace, PauseRegistry, RateLimitLayer};
use unattended_retry::{BudgetConfig, RetryConfig, RetryLayer};
use unattended_token::{CacheConfig, Placement, StaticToken, TokenCache, TokenLayer, TokenSource};

use crate::config::{AuthSettings, ConfigError, ServiceConfig, Timeouts};
use crate::error::Error;
use crate::stack::{
    AnySource, Body, Layers, RequestBody, SharedCache, SharedTransport, ThreadStacks,
};

/// The transport [`ClientBuilder::build`] uses: hyper-util's pooled client over rustls (system
/// roots), HTTP/1.1 and HTTP/2, plain HTTP allowed.
pub type HttpsTransport = HyperClient<HttpsConnector<HttpConnector>, RequestBody>;

/// Builds the default transport with a connect timeout.
///
/// # Errors
///
/// The system's root certificates could not be loaded.
pub fn https_transport(connect_timeout: Duration) -> Result<HttpsTransport, ConfigError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ConfigError::invalid("tls", format!("no root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new()).build(https))
}

/// A resilient HTTP client for one service.
///
/// Each call passes, outermost first: trace → time-window gate → retry (with a budget and an
/// overall deadline) → the host's rate-limit pause → circuit breaker → token → attempt timeout →
/// redirects, decompression, `User-Agent` → the transport. Clones share breakers, pauses,
/// budget and token cache; two clients built separately keep theirs apart.
///
/// # Example
///
/// ```no_run
/// use unattended_client::{Client, ServiceConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ServiceConfig::from_toml(r#"base_url = "https://api.example.com""#)?;
/// let client = Client::builder(config).build()?;
/// let items: serde_json::Value = client.get_json("/v1/items").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    stacks: Arc<ThreadStacks>,
    base: Option<Uri>,
    clock: Clock,
    max_response_bytes: usize,
    pauses: PauseRegistry,
    breakers: Option<BreakerHandle>,
    token: Option<SharedCache>,
}

impl Client {
    /// A builder from `config`.
    pub fn builder(config: ServiceConfig) -> ClientBuilder {
        ClientBuilder::new(config)
    }

    /// Sends `req` through the stack. Relative URIs (a path) are joined to the base URL.
    ///
    /// Responses are returned whatever their status once the layers are done with them (a
    /// `404` is a response); failures the layers could not get past are an [`Error`].
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub async fn send(
        &self,
        req: Request<impl Into<RequestBody>>,
    ) -> Result<Response<Body>, Error> {
        let (mut parts, body) = req.into_parts();
        parts.uri = self.resolve(parts.uri)?;
        // Kept to name the service in an error; the key string is made only then.
        let uri = parts.uri.clone();
        let req = Request::from_parts(parts, body.into());
        self.stacks
            .call(req)
            .await
            .map_err(|e| Error::from_stack(e, ServiceKey::from_uri(&uri), self.clock.wall()))
    }

    /// `GET path`, its `2xx` JSON body read as a `T`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let req = Request::get(path).body(Full::default()).map_err(Error::request)?;
        self.json(req).await
    }

    /// `POST path` with `body` as JSON, the `2xx` JSON answer read as an `R`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn post_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::json(e, None))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(Error::request)?;
        self.json(req).await
    }

    /// Sends `req` and reads its `2xx` JSON answer as a `T`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn json<T: DeserializeOwned>(
        &self,
        req: Request<impl Into<RequestBody>>,
    ) -> Result<T, Error> {
        let uri = req.uri().clone();
        let res = self.send(req).await?;
        let bytes = self.read(res, &uri).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(e, ServiceKey::from_uri(&uri)))
    }

    /// Reads a `2xx` response's body, within the size limit (counted after decompression; the
    /// stack bounds every body).
    async fn read(&self, res: Response<Body>, uri: &Uri) -> Result<Bytes, Error> {
        let key = || ServiceKey::from_uri(uri);
        let status = res.status();
        if !status.is_success() {
            let class = HttpClassifier::new().classify_response(&res, &self.clock).err();
            return Err(Error::from_status(status, class, key(), self.clock.wall()));
        }
        match res.into_body().collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => {
                Err(Error::too_big(self.max_response_bytes, key()))
            }
            Err(e) => Err(Error::body(e, key(), self.clock.wall())),
        }
    }

    fn resolve(&self, uri: Uri) -> Result<Uri, Error> {
        if uri.scheme().is_some() {
            return Ok(uri);
        }
        let Some(base) = &self.base else {
            return Err(Error::request(format!(
                "{uri} has no host and the client has no base URL"
            )));
        };
        let mut parts = Parts::from(base.clone());
        let prefix = base.path().trim_end_matches('/');
        parts.path_and_query = match uri.path_and_query() {
            // A base without a path and an absolute path: the path as it is, not parsed again.
            Some(tail) if prefix.is_empty() && tail.as_str().starts_with('/') => Some(tail.clone()),
            tail => {
                let tail = tail.map_or("/", PathAndQuery::as_str);
                let slash = if tail.starts_with('/') { "" } else { "/" };
                Some(format!("{prefix}{slash}{tail}").parse().map_err(Error::request)?)
            }
        };
        Uri::from_parts(parts).map_err(Error::request)
    }

    /// The base URL relative paths are joined to, if the config gives one.
    pub fn base_url(&self) -> Option<&Uri> {
        self.base.as_ref()
    }

    /// The pauses and paces of this client's hosts (a handle: clones share them).
    pub fn pauses(&self) -> PauseRegistry {
        self.pauses.clone()
    }

    /// The breakers of this client's hosts, if the breaker is on.
    pub fn breakers(&self) -> Option<&BreakerHandle> {
        self.breakers.as_ref()
    }

    /// The token cache, if the client puts a credential on requests.
    pub fn token_cache(&self) -> Option<&Arc<TokenCache<AnySource>>> {
        self.token.as_ref()
    }
}

/// Refuses a zero timeout: it would fail every connection, attempt or call at once.
pub(crate) fn check_timeouts(t: &Timeouts) -> Result<(), ConfigError> {
    for (field, value) in [
        ("timeouts.connect", t.connect),
        ("timeouts.attempt", t.attempt),
        ("timeouts.overall", t.overall),
    ] {
        if value.is_zero() {
            return Err(ConfigError::invalid(field, "must be more than zero"));
        }
    }
    Ok(())
}

/// The retry settings of `c`, as both the client and the reqwest adapter use them.
pub(crate) fn retry_config(
    c: &ServiceConfig,
    seed: Option<u64>,
    choices: &RateLimitChoices,
) -> Result<RetryConfig, ConfigError> {
    // Hosts that throttle are paced (learned or configured): their retries wait for the pace,
    // so they need not draw on the budget.
    let paced = choices.adaptive.unwrap_or(c.ratelimit.adaptive)
        || choices.pace.is_some()
        || c.ratelimit.configured_pace()?.is_some();
    Ok(RetryConfig::standard()
        .max_attempts(c.retry.max_attempts)
        .backoff(c.retry.base_delay, 2.0, c.retry.max_delay)
        .max_server_wait(c.retry.max_server_wait)
        // Callers sent back at the server's instant get the spread held callers get.
        .pushback_spread(c.ratelimit.checked_release_spread()?)
        .deadline(Some(c.timeouts.overall))
        // The attempt timeout sits next to the transport, so waiting out a pause is not
        // counted against it.
        .attempt_timeout(None)
        .budget(c.retry.budget.then(BudgetConfig::new))
        .paced_throttles(paced)
        .seed(seed))
}

/// The gate layer of `c`, as both the client and the reqwest adapter use it.
pub(crate) fn gate_layer(c: &ServiceConfig, clock: Clock) -> Result<GateLayer, ConfigError> {
    let mut gate = GateLayer::new().clock(clock);
    for (class, calendar, when) in calendars(c)? {
        gate = gate.class(&class, calendar, when);
    }
    Ok(gate)
}

/// The gate calendars of `c`, by action class.
fn calendars(c: &ServiceConfig) -> Result<Vec<(String, WindowCalendar, WhenClosed)>, ConfigError> {
    let mut out = Vec::new();
    for (class, settings) in &c.gate {
        let open: Vec<&str> = settings.open.iter().map(String::as_str).collect();
        let closed: Vec<&str> = settings.closed.iter().map(String::as_str).collect();
        let calendar = WindowCalendar::new(&settings.tz, &open, &closed)
            .map_err(|e| ConfigError::invalid(format!("gate.{class}"), e.to_string()))?;
        let when = match settings.wait {
            Some(max) => WhenClosed::Wait { max },
            None => WhenClosed::Reject,
        };
        out.push((class.clone(), calendar, when));
    }
    Ok(out)
}

/// What the builder may set over the config's `[ratelimit]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateLimitChoices {
    pub(crate) pace: Option<Pace>,
    pub(crate) adaptive: Option<bool>,
    pub(crate) registry: Option<PauseRegistry>,
}

/// The rate-limit layer for `c`, as both the client and the reqwest adapter use it.
pub(crate) fn ratelimit_layer(
    c: &ServiceConfig,
    clock: Clock,
    seed: Option<u64>,
    choices: &RateLimitChoices,
) -> Result<RateLimitLayer, ConfigError> {
    let r = &c.ratelimit;
    let mut layer = RateLimitLayer::new()
        .max_wait(r.max_wait)
        .release_spread(r.checked_release_spread()?)
        .adaptive(choices.adaptive.unwrap_or(r.adaptive))
        .clock(clock);
    if let Some(pace) = choices.pace.or(r.configured_pace()?) {
        layer = layer.pace(pace);
    }
    if let Some(seed) = seed {
        layer = layer.seed(seed);
    }
    if let Some(registry) = &choices.registry {
        layer = layer.with_registry(registry.clone());
    }
    Ok(layer)
}

/// The breaker settings of `c`, if the breaker is on.
pub(crate) fn breaker_config(c: &ServiceConfig, seed: Option<u64>) -> Option<BreakerConfig> {
    let b = &c.breaker;
    b.enabled.then(|| {
        let rate = FailurePolicy::time_window(b.window, b.failure_rate).min_calls(b.min_calls);
        let policy = match b.consecutive_failures {
            0 => rate,
            n => rate.or_consecutive(n),
        };
        BreakerConfig::standard()
            .policy(policy)
            .open_duration(OpenDuration::growing(b.open_for, 2.0, b.max_open_for))
            .seed(seed)
    })
}

/// One seed for the whole stack: a stream of its own for each place that draws, forked from the
/// builder's source always in this order, so that the client and the reqwest adapter built from
/// one builder draw alike, and one layer drawing more does not shift another's draws.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seeds {
    /// Retry jitter.
    pub(crate) retry: Option<u64>,
    /// Breaker open-time jitter.
    pub(crate) breaker: Option<u64>,
    /// The release spread of paused callers.
    pub(crate) ratelimit: Option<u64>,
    /// Token refresh skew.
    pub(crate) token: Option<u64>,
}

impl Seeds {
    pub(crate) fn new(source: &Random) -> Self {
        Self {
            retry: source.fork_seed(),
            breaker: source.fork_seed(),
            ratelimit: source.fork_seed(),
            token: source.fork_seed(),
        }
    }
}

/// The credential given to a builder.
enum Credential {
    /// A source; its cache is made at build, with the builder's clock and seed.
    Source(Arc<dyn TokenSource>, Placement),
    /// A cache made elsewhere, to share it or to run its background refresher.
    Cache(SharedCache, Placement),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(_, placement) => f.debug_tuple("Source").field(placement).finish(),
            Self::Cache(cache, placement) => {
                f.debug_tuple("Cache").field(cache).field(placement).finish()
            }
        }
    }
}

/// What a builder holds, for the reqwest adapter.
#[cfg(feature = "reqwest")]
pub(crate) struct BuilderParts {
    pub(crate) config: ServiceConfig,
    pub(crate) clock: Clock,
    pub(crate) seeds: Seeds,
    pub(crate) token: Option<(SharedCache, Placement)>,
    pub(crate) ratelimit: RateLimitChoices,
}

/// Builds a [`Client`] from a [`ServiceConfig`], a clock, a token source and a transport.
#[derive(Debug)]
pub struct ClientBuilder {
    config: ServiceConfig,
    clock: Clock,
    token: Option<Credential>,
    seed: Option<u64>,
    ratelimit: RateLimitChoices,
    env: Option<Environment>,
}

/// Where `auth.token_env` is looked up, when not in the process environment.
#[derive(Clone)]
struct Environment(Arc<dyn Fn(&str) -> Option<String> + Send + Sync>);

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment")
    }
}

impl ClientBuilder {
    /// A builder from `config`, reading time from the system clock.
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            config,
            clock: Clock::system(),
            token: None,
            seed: None,
            ratelimit: RateLimitChoices::default(),
            env: None,
        }
    }

    /// Reads the variable `auth.token_env` names through `env` instead of the process
    /// environment (a test, a simulation, or a program holding its secrets elsewhere).
    #[must_use]
    pub fn environment(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Some(Environment(Arc::new(env)));
        self
    }

    /// Spaces the calls to each host at `pace` from the first one (over the config's
    /// `ratelimit.pace` and `burst`).
    #[must_use]
    pub fn pace(mut self, pace: Pace) -> Self {
        self.ratelimit.pace = Some(pace);
        self
    }

    /// Learns the rate of each host that throttles, or not (over the config's
    /// `ratelimit.adaptive`).
    #[must_use]
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.ratelimit.adaptive = Some(adaptive);
        self
    }

    /// Keeps pauses and paces in `registry`, to share them with other clients (each client has
    /// its own otherwise).
    #[must_use]
    pub fn pause_registry(mut self, registry: PauseRegistry) -> Self {
        self.ratelimit.registry = Some(registry);
        self
    }

    /// Reads time (and sleeps) through `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Puts tokens from `source` on each request, where `placement` says (overrides the
    /// config's `auth`). The token cache is made at [`build`](Self::build), with the builder's
    /// clock and seed.
    #[must_use]
    pub fn token_source(mut self, source: impl TokenSource, placement: Placement) -> Self {
        self.token = Some(Credential::Source(Arc::new(source), placement));
        self
    }

    /// Puts tokens from an existing cache on each request (to share it, or to start its
    /// background refresher). The cache keeps its own settings, its seed among them.
    #[must_use]
    pub fn token_cache(mut self, cache: SharedCache, placement: Placement) -> Self {
        self.token = Some(Credential::Cache(cache, placement));
        self
    }

    /// Seeds every random choice of the stack, for reproducible runs: the retry jitter, the
    /// breaker's open-time jitter, the release of paused callers and the token refresh skew (of
    /// a source given with [`token_source`](Self::token_source) or named in the config), in the
    /// client and in the reqwest adapter alike. Each draws from a stream of its own, forked from
    /// one generator seeded with `seed`; so under a paused clock the same seed makes the same
    /// requests at the same instants, run after run.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The streams of the builder's seed.
    fn seeds(&self) -> Seeds {
        Seeds::new(&Random::from_seed(self.seed))
    }

    /// The credential given to the builder, else the one the config names.
    fn credential(&self, seeds: &Seeds) -> Result<Option<(SharedCache, Placement)>, ConfigError> {
        let config = CacheConfig::new().seed(seeds.token);
        match &self.token {
            Some(Credential::Cache(cache, placement)) => {
                Ok(Some((cache.clone(), placement.clone())))
            }
            Some(Credential::Source(source, placement)) => {
                let source = AnySource::new(source.clone());
                let cache = TokenCache::with_config(source, self.clock, config);
                Ok(Some((Arc::new(cache), placement.clone())))
            }
            None => token_from_config(&self.config, self.clock, self.env.as_ref(), config),
        }
    }

    /// The config, clock, seeds and credential, for other faces of the same settings.
    #[cfg(feature = "reqwest")]
    pub(crate) fn into_parts(self) -> Result<BuilderParts, ConfigError> {
        let seeds = self.seeds();
        let token = self.credential(&seeds)?;
        Ok(BuilderParts {
            config: self.config,
            clock: self.clock,
            seeds,
            token,
            ratelimit: self.ratelimit,
        })
    }

    /// Builds the client on the default HTTPS transport.
    ///
    /// # Errors
    ///
    /// The config is inconsistent, a credential's environment variable is missing, or the
    /// system has no root certificates.
    pub fn build(self) -> Result<Client, ConfigError> {
        let transport = https_transport(self.config.timeouts.connect)?;
        self.build_with(SharedTransport(Arc::new(transport)))
    }

    /// Builds the client on `transport`: any HTTP service, such as an in-process fake.
    ///
    /// # Errors
    ///
    /// The config is inconsistent, or a credential's environment variable is missing.
    pub fn build_with<T, B>(self, transport: T) -> Result<Client, ConfigError>
    where
        T: tower::Service<Request<RequestBody>, Response = Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        T::Error: Into<unattended_core::BoxError>,
        T::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<unattended_core::BoxError> + Send,
    {
        let (layers, token) = self.layers()?;
        let base = match &self.config.base_url {
            Some(url) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| ConfigError::invalid("base_url", format!("{url:?}: {e}")))?;
                if uri.scheme().is_none() || uri.host().is_none() {
                    return Err(ConfigError::invalid("base_url", "needs a scheme and a host"));
                }
                Some(uri)
            }
            None => None,
        };
        Ok(Client {
            stacks: Arc::new(ThreadStacks::new(layers.wrap(transport))),
            base,
            clock: self.clock,
            max_response_bytes: self.config.limits.max_response_bytes,
            pauses: layers.ratelimit.registry(),
            breakers: layers.breaker.as_ref().map(CircuitBreakerLayer::handle),
            token,
        })
    }

    fn layers(&self) -> Result<(Layers, Option<SharedCache>), ConfigError> {
        let c = &self.config;
        let clock = self.clock;
        check_timeouts(&c.timeouts)?;
        let seeds = self.seeds();
        let retry = retry_config(c, seeds.retry, &self.ratelimit)?;
        let retry = RetryLayer::new(retry)
            .map_err(|e| ConfigError::invalid("retry", e.to_string()))?
            .clock(clock);
        let ratelimit = ratelimit_layer(c, clock, seeds.ratelimit, &self.ratelimit)?;
        let breaker = match breaker_config(c, seeds.breaker) {
            Some(config) => Some(
                CircuitBreakerLayer::new(config)
                    .map_err(|e| ConfigError::invalid("breaker", e.to_string()))?
                    .clock(clock),
            ),
            None => None,
        };
        let gate = gate_layer(c, clock)?;
        let token = self.credential(&seeds)?;
        let (token_layer, cache) = match token {
            Some((cache, placement)) => {
                // The retry layer outside replays refused requests with its own copy.
                let layer =
                    TokenLayer::new(cache.clone()).placement(placement).replay_refused(false);
                (Some(layer), Some(cache))
            }
            None => (None, None),
        };
        let agent = c
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("unattended/", env!("CARGO_PKG_VERSION")).to_owned());
        let user_agent = HeaderValue::try_from(agent)
            .map_err(|_| ConfigError::invalid("user_agent", "is not a valid header value"))?;
        let layers = Layers {
            clock,
            gate,
            retry,
            ratelimit,
            breaker,
            token: token_layer,
            attempt_timeout: c.timeouts.attempt,
            user_agent,
            max_redirects: c.limits.max_redirects,
            max_response_bytes: c.limits.max_response_bytes,
        };
        Ok((layers, cache))
    }
}

/// The credential the config names, read from the environment.
fn token_from_config(
    c: &ServiceConfig,
    clock: Clock,
    lookup: Option<&Environment>,
    config: CacheConfig,
) -> Result<Option<(SharedCache, Placement)>, ConfigError> {
    let (env, placement) = match &c.auth {
        AuthSettings::None => return Ok(None),
        AuthSettings::Bearer { token_env } => (token_env, Placement::Bearer),
        AuthSettings::Header { name, token_env } => {
            let name = name
                .parse()
                .map_err(|_| ConfigError::invalid("auth.name", "is not a header name"))?;
            (token_env, Placement::header(name))
        }
        AuthSettings::Query { name, token_env } => (token_env, Placement::query(name.clone())),
    };
    let secret = match lookup {
        Some(lookup) => (lookup.0)(env),
        None => std::env::var(env).ok(),
    };
    let secret = secret.ok_or_else(|| ConfigError::MissingSecret(env.clone()))?;
    let source = AnySource::new(StaticToken::new(secret));
    Ok(Some((Arc::new(TokenCache::with_config(source, clock, config)), placement)))
}
