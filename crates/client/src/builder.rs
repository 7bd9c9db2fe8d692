//! How a client is built: its config, clock, seed, credential and transport.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use unattended_breaker::CircuitBreakerLayer;
use unattended_core::{Clock, Random};
use unattended_ratelimit::{Pace, PauseRegistry};
use unattended_retry::RetryLayer;
use unattended_token::{CacheConfig, Placement, StaticToken, TokenCache, TokenLayer, TokenSource};

use crate::client::{Client, Shared};
use crate::config::{AuthSettings, ConfigError, ServiceConfig};
use crate::layers::{
    RateLimitChoices, breaker_config, check_timeouts, gate_layer, ratelimit_layer, retry_config,
};
use crate::stack::{AnySource, Layers, RequestBody, SharedCache, SharedTransport, ThreadStacks};
use crate::transport::https_transport;

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
        Ok(Client::new(Shared {
            stacks: ThreadStacks::new(layers.wrap(transport)),
            base,
            clock: self.clock,
            max_response_bytes: self.config.limits.max_response_bytes,
            pauses: layers.ratelimit.registry(),
            breakers: layers.breaker.as_ref().map(CircuitBreakerLayer::handle),
            token,
        }))
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
