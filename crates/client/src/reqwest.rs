//! The same policies for `reqwest` users: a `reqwest-middleware` middleware on the same cores.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use unattended_breaker::{BreakerHandle, CircuitBreakerLayer, ServiceBreaker};
use unattended_core::{
    Clock, FailureClass, HttpClassifier, Random, ServiceKey, TokenError, classify_error_chain,
};
use unattended_gate::{ByMethod, Gatekeeper};
use unattended_ratelimit::Limiter;
use unattended_retry::{GaveUp, HttpReplay, RetryBudget, RetryConfig, RetryState};
use unattended_token::{CachedToken, Placement};

use crate::builder::{BuilderParts, ClientBuilder};
use crate::client::Client;
use crate::config::{ConfigError, ServiceConfig};
use crate::layers::{breaker_config, check_timeouts, gate_layer, ratelimit_layer, retry_config};
use crate::stack::SharedCache;

/// A [`reqwest_middleware::Middleware`] applying the client's policies to a `reqwest` codebase:
/// the time-window gate, retries with the same backoff, budget, deadline and `Retry-After`
/// rules, the host's shared pause and learned pace (the rate-limit layer's own rules, through
/// its [`Limiter`]), the circuit breaker, the token (refreshed before expiry, renewed once on a
/// `401`) and the attempt timeout.
///
/// It is built from the same [`ServiceConfig`] as a [`Client`], and can share a client's pause
/// registry, breakers and token cache ([`sharing`](Self::sharing)), so both paths make the same
/// decisions. Put it last in the middleware chain: it sends each attempt through `next`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use unattended_client::{ResilienceMiddleware, ServiceConfig};
///
/// let config = ServiceConfig::from_toml("[retry]\nmax_attempts = 5")?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ResilienceMiddleware::from_config(&config)?)
///     .build();
/// let res = client.get("http://127.0.0.1:8080/items").send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ResilienceMiddleware {
    clock: Clock,
    classifier: HttpClassifier,
    retry: RetryConfig,
    first_delay: Duration,
    budget: Option<Arc<RetryBudget>>,
    random: Random,
    limiter: Limiter,
    breakers: Option<BreakerHandle>,
    /// The first host called: most middlewares serve one host, found then with one load.
    first: OnceLock<Host>,
    /// The other host called last, so a run of calls to one host makes its key and finds its
    /// breaker once.
    last: ArcSwapOption<Host>,
    token: Option<(SharedCache, Placement)>,
    gate: Gatekeeper,
    attempt_timeout: Duration,
}

/// A host as its URLs spell it, with its key and breaker.
#[derive(Debug)]
struct Host {
    /// The URL up to its path: scheme, user information, host and port, as written.
    origin: Box<str>,
    key: ServiceKey,
    breaker: Option<ServiceBreaker>,
}

/// A host found by [`ResilienceMiddleware::host`].
enum HostRef<'a> {
    First(&'a Host),
    Other(Arc<Host>),
}

impl std::ops::Deref for HostRef<'_> {
    type Target = Host;

    fn deref(&self) -> &Host {
        match self {
            Self::First(host) => host,
            Self::Other(host) => host,
        }
    }
}

/// The URL up to its path: one comparison tells whether two URLs have the same key (two
/// spellings of one key compare different, and only cost a lookup).
fn origin(url: &reqwest::Url) -> &str {
    &url[..url::Position::BeforePath]
}

impl ResilienceMiddleware {
    /// The middleware for `config`, on the system clock.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::build_with`].
    pub fn from_config(config: &ServiceConfig) -> Result<Self, ConfigError> {
        ClientBuilder::new(config.clone()).build_middleware()
    }

    /// Uses `client`'s pauses and paces, breakers and token cache, so that the two paths share
    /// what they learn of each host.
    #[must_use]
    pub fn sharing(mut self, client: &Client) -> Self {
        self.limiter = self.limiter.with_registry(client.pauses());
        if let Some(breakers) = client.breakers() {
            self.breakers = Some(breakers.clone());
            self.first = OnceLock::new();
            self.last = ArcSwapOption::empty();
        }
        if let (Some(cache), Some((_, placement))) = (client.token_cache(), self.token.take()) {
            self.token = Some((cache.clone(), placement));
        }
        self
    }

    pub(crate) fn build(parts: BuilderParts) -> Result<Self, ConfigError> {
        let BuilderParts { config, clock, seeds, token, ratelimit } = parts;
        let config = &config;
        check_timeouts(&config.timeouts)?;
        // The client's rate-limit stream: the adapter releases callers as the layer would.
        let limiter = ratelimit_layer(config, clock, seeds.ratelimit, &ratelimit)?.limiter();
        let retry = retry_config(config, seeds.retry, &ratelimit)?;
        let schedule =
            retry.backoff_schedule().map_err(|e| ConfigError::invalid("retry", e.to_string()))?;
        let first_delay = schedule.base();
        let breakers = match breaker_config(config, seeds.breaker) {
            Some(b) => Some(
                CircuitBreakerLayer::new(b)
                    .map_err(|e| ConfigError::invalid("breaker", e.to_string()))?
                    .clock(clock)
                    .handle(),
            ),
            None => None,
        };
        let budget = config
            .retry
            .budget
            .then(|| Arc::new(RetryBudget::new(unattended_retry::BudgetConfig::new())));
        Ok(Self {
            clock,
            classifier: HttpClassifier::new(),
            retry,
            first_delay,
            budget,
            // The retry layer's stream: the adapter draws the jitter the layer would.
            random: Random::from_seed(seeds.retry),
            limiter,
            breakers,
            first: OnceLock::new(),
            last: ArcSwapOption::empty(),
            token,
            gate: gate_layer(config, clock)?.gatekeeper(),
            attempt_timeout: config.timeouts.attempt,
        })
    }

    /// The host of `url`, with its key and breaker: the first or the last one called, or made
    /// now.
    fn host(&self, url: &reqwest::Url) -> Option<HostRef<'_>> {
        let spelled = origin(url);
        if let Some(first) = self.first.get()
            && *first.origin == *spelled
        {
            return Some(HostRef::First(first));
        }
        if let Some(last) = &*self.last.load()
            && *last.origin == *spelled
        {
            return Some(HostRef::Other(last.clone()));
        }
        let key = ServiceKey::from_origin(url.scheme(), url.host_str()?, url.port());
        let breaker = self.breakers.as_ref().map(|breakers| breakers.breaker(key.clone()));
        let host = Host { origin: spelled.into(), key, breaker };
        let host = match self.first.set(host) {
            Ok(()) => return self.first.get().map(HostRef::First),
            Err(host) => Arc::new(host),
        };
        self.last.store(Some(host.clone()));
        Some(HostRef::Other(host))
    }

    async fn credential(&self) -> Result<Option<CachedToken>, TokenError> {
        match &self.token {
            Some((cache, _)) => cache.current().await.map(Some),
            None => Ok(None),
        }
    }
}

/// Puts `token` on `req` where `placement` says, by the token layer's rules.
fn put_token(
    req: &mut reqwest::Request,
    token: &CachedToken,
    placement: &Placement,
) -> Result<(), TokenError> {
    if let Some((name, value)) = placement.header_for(token)? {
        req.headers_mut().insert(name, value);
    } else if let Some(query) = placement.query_for(token, req.url().query()) {
        req.url_mut().set_query(Some(&query));
    } else {
        return Err(TokenError::Unusable { what: "a placement this adapter does not know" });
    }
    Ok(())
}

fn middleware_error(
    error: impl std::error::Error + Send + Sync + 'static,
) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
}

/// The future of one call through the middleware.
type CallFuture<'f> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'f>>;

// Written out rather than with `#[async_trait]`, whose future would hold the request twice (as
// the argument it captures, and as the copy kept for the next attempt): every call boxes its
// future, and a smaller one is cheaper to make.
impl Middleware for ResilienceMiddleware {
    fn handle<'a, 'b, 'c, 'f>(
        &'a self,
        req: reqwest::Request,
        extensions: &'b mut Extensions,
        next: Next<'c>,
    ) -> CallFuture<'f>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(self.run(Some(req), extensions, next))
    }
}

impl ResilienceMiddleware {
    /// One call: its attempts, each through `next`. `original` is the request, kept (or copied)
    /// for another attempt while it can be.
    async fn run(
        &self,
        mut original: Option<reqwest::Request>,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let Some(req) = original.as_ref() else {
            return Err(middleware_error(TokenError::NotReplayed { retry_at: self.clock.wall() }));
        };
        let class = ByMethod::class_of_parts(req.method(), extensions);
        self.gate.pass(class).await.map_err(middleware_error)?;
        let host = self.host(req.url());
        let key = host.as_ref().map(|host| &host.key);
        let started = self.clock.now();
        let idempotent = HttpReplay::is_idempotent_parts(req.method(), req.headers(), extensions);
        let (mut attempts, mut previous, mut renewed) = (0u32, self.first_delay, false);
        loop {
            attempts += 1;
            // The host's pause and pace, by the rate-limit layer's rules.
            let slot = match key {
                Some(key) => Some(self.limiter.acquire(key).await.map_err(middleware_error)?),
                None => None,
            };
            let permit = match host.as_ref().and_then(|host| host.breaker.as_ref()) {
                Some(breaker) => Some(breaker.try_call().map_err(middleware_error)?),
                None => None,
            };
            let token = self.credential().await.map_err(middleware_error)?;
            // Send a copy while the original can be copied (kept in place for another attempt);
            // otherwise the original itself, and that is the last attempt.
            let copy = original.as_ref().and_then(reqwest::Request::try_clone);
            let Some(mut attempt) = copy.or_else(|| original.take()) else {
                return Err(middleware_error(TokenError::NotReplayed {
                    retry_at: self.clock.wall(),
                }));
            };
            if let (Some(token), Some((_, placement))) = (&token, &self.token) {
                put_token(&mut attempt, token, placement).map_err(middleware_error)?;
            }
            // Timed from here, as in the client's stack: a hold for the host's pause or a token
            // refresh before the send is not the attempt's time.
            let result = match self
                .clock
                .timeout(self.attempt_timeout, next.clone().run(attempt, extensions))
                .await
            {
                Ok(result) => result,
                Err(elapsed) => Err(middleware_error(elapsed)),
            };
            let class = match &result {
                Ok(res) => self
                    .classifier
                    .classify_parts(res.status(), res.headers(), res.extensions(), &self.clock)
                    .err(),
                Err(reqwest_middleware::Error::Reqwest(e)) => Some(classify_error_chain(e)),
                Err(reqwest_middleware::Error::Middleware(e)) => {
                    Some(classify_error_chain(e.as_ref()))
                }
            };
            if let Some(permit) = permit {
                permit.finish(class.as_ref());
            }
            if let (Ok(res), Some(slot)) = (&result, slot) {
                self.limiter.record(slot, res.status(), res.headers());
            }
            let Some(class) = class else {
                // Successes pay for retries, as in the retry layer.
                if let Some(budget) = &self.budget {
                    budget.record_success();
                }
                return result;
            };
            if class == FailureClass::AuthExpired
                && let Some(token) = &token
                && let Some((cache, _)) = &self.token
                && !renewed
                && original.is_some()
            {
                // The token layer's rule: drop the refused token, send once more at once.
                cache.invalidate(token.token());
                renewed = true;
                continue;
            }
            if !class.is_retryable() {
                return result;
            }
            // The retry layer's own decision, on the same config and budget.
            let state = RetryState {
                attempts,
                previous,
                started,
                idempotent,
                replayable: original.is_some(),
            };
            let budget = self.budget.as_deref();
            let delay = match self.retry.decide(&state, &class, budget, &self.clock, &self.random) {
                Ok(delay) => delay,
                Err((reason, retry_at)) => {
                    let gave_up = GaveUp::new(attempts, reason, class, retry_at, key.cloned());
                    tracing::info!(key = key.map(ServiceKey::as_str), attempts, %reason, last = %class, %retry_at, "gave up retrying");
                    return Err(middleware_error(gave_up));
                }
            };
            tracing::warn!(key = key.map(ServiceKey::as_str), attempt = attempts, ?delay, reason = %class, "retrying after a failed attempt");
            // Boxed: a retry is rare, and the future of every call would carry the wait inline.
            Box::pin(self.clock.sleep(delay)).await;
            previous = delay;
        }
    }
}

impl ClientBuilder {
    /// Builds a [`ResilienceMiddleware`] with this builder's config, clock, seed and token.
    ///
    /// # Errors
    ///
    /// As [`build_with`](Self::build_with).
    pub fn build_middleware(self) -> Result<ResilienceMiddleware, ConfigError> {
        ResilienceMiddleware::build(self.into_parts()?)
    }
}
