//! The token cache: refresh before expiry, one refresh at a time, the old token while it lasts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use tokio::sync::Notify;
use tokio::time::Instant;
use unattended_core::clock::duration_between;
use unattended_core::{Clock, Random, TokenError};

use crate::token::{AccessToken, FetchError, TokenSource};

/// When to refresh, and how often to try again after a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheConfig {
    max_skew: Duration,
    skew_fraction: f64,
    retry_spacing: Duration,
    seed: Option<u64>,
}

impl CacheConfig {
    /// Refresh `min(5 min, 10% of the token's lifetime)` before expiry (less up to a fifth, at
    /// random, so that many processes do not refresh in step), and after a failed refresh wait
    /// 30 s before the next try (Azure.Core's spacing).
    pub const fn new() -> Self {
        Self {
            max_skew: Duration::from_secs(300),
            skew_fraction: 0.1,
            retry_spacing: Duration::from_secs(30),
            seed: None,
        }
    }

    /// The most a token is refreshed before it expires.
    #[must_use]
    pub const fn max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// The share of a token's lifetime to refresh before its end, if less than the maximum skew
    /// (clamped to 0–0.5).
    #[must_use]
    pub fn skew_fraction(mut self, fraction: f64) -> Self {
        self.skew_fraction = if fraction.is_finite() { fraction.clamp(0.0, 0.5) } else { 0.1 };
        self
    }

    /// How long to wait after a failed refresh before trying again.
    #[must_use]
    pub const fn retry_spacing(mut self, spacing: Duration) -> Self {
        self.retry_spacing = spacing;
        self
    }

    /// Draws the random part of the skew from a generator seeded with `seed`, so a run can be
    /// replayed exactly. Without a seed, it comes from a per-thread generator seeded by the
    /// system.
    #[must_use]
    pub const fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The background refresh task of a [`TokenCache`]; dropping it stops the task.
#[derive(Debug)]
pub struct BackgroundRefresh {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BackgroundRefresh {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A token, when to replace it (in monotonic time), and what the token layer learnt of it.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) token: Arc<AccessToken>,
    /// Numbers the tokens of this cache, so a response can name the one it was sent with.
    generation: u64,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
    /// It was already due when it arrived (kept until one retry spacing later).
    due_on_arrival: bool,
    /// Fetched because the server refused the token before it.
    pub(crate) after_refusal: bool,
    /// A server has accepted it at least once.
    accepted: AtomicBool,
    /// The header values the token layer puts on requests, made once per token.
    pub(crate) bearer: OnceLock<HeaderValue>,
    pub(crate) raw: OnceLock<HeaderValue>,
}

impl Cached {
    fn is_fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    fn is_valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// True if a refusal of this token proves the credentials themselves are refused: it was
    /// fetched because its predecessor was refused, and no server has accepted it since.
    pub(crate) fn refusal_is_final(&self) -> bool {
        self.after_refusal && !self.accepted.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_accepted(&self) {
        // Read first: after the first acceptance this is a shared read, not a write per call.
        if self.after_refusal && !self.accepted.load(Ordering::Relaxed) {
            self.accepted.store(true, Ordering::Relaxed);
        }
    }

    /// What a response needs to know of the token its request carried.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket { generation: self.generation, unproven: self.refusal_is_final() }
    }
}

/// A token from a [`TokenCache`], with the header values made from it (once per token), for
/// requests that do not go through the token layer: put it on a request with
/// [`Placement::header_for`](crate::Placement::header_for) or
/// [`Placement::query_for`](crate::Placement::query_for).
#[derive(Clone, Debug)]
pub struct CachedToken(Arc<Cached>);

impl CachedToken {
    /// The token.
    pub fn token(&self) -> &Arc<AccessToken> {
        &self.0.token
    }

    pub(crate) fn cached(&self) -> &Cached {
        &self.0
    }
}

/// Names the token a request was sent with, without holding it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    generation: u64,
    /// Fetched after a refusal and not accepted yet, when the request was sent.
    unproven: bool,
}

impl Ticket {
    /// True if a refusal of this token proves the credentials themselves are refused.
    pub(crate) fn refusal_is_final(self) -> bool {
        self.unproven
    }
}

/// Keeps a valid token from a [`TokenSource`], shared by every caller.
///
/// - **Before expiry**: a token is replaced `min(max skew, fraction of its lifetime)` before it
///   expires, so a short-lived token does not cause a refresh storm and a request never carries a
///   token about to die.
/// - **Single-flight**: however many callers need a new token at once, one fetch runs; the
///   others wait for it, or keep using the old token while it is still valid.
/// - **Failures**: if a refresh fails while the old token is valid, the old one is served and the
///   next refresh waits the retry spacing; once it has expired, callers get
///   [`TokenError::RefreshFailed`] with the time of the next try.
/// - **A token already due when it arrives** (`expires_in: 0`, a negative `expires_in`, an
///   expiry at or before now): the callers waiting for that fetch get it, and so does every
///   caller until the next refresh, which comes one retry spacing later (as after a failed
///   refresh) and is single-flight like any other; the server judges the token. A source that
///   only gives such tokens is asked once per retry spacing, never once per call.
/// - **Revocation**: [`FetchError::Revoked`] (OAuth2 `invalid_grant`) makes every call fail with
///   [`TokenError::Reauthorize`] without calling the source again, until
///   [`reset_credentials`](Self::reset_credentials).
///
/// A valid cached token costs a clock read, an atomic load and a reference count.
#[derive(Debug)]
pub struct TokenCache<S> {
    source: S,
    clock: Clock,
    config: CacheConfig,
    current: ArcSwapOption<Cached>,
    revoked: AtomicBool,
    revoked_reason: Mutex<Option<String>>,
    /// The cached token was dropped because a server refused it.
    refused: AtomicBool,
    generation: AtomicU64,
    /// Where the skew's random part comes from.
    random: Random,
    /// Held by the one caller fetching; holds the time of the last failed fetch.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Wakes the background refresher when the token is dropped or the credentials replaced.
    changed: Notify,
}

impl<S: TokenSource> TokenCache<S> {
    /// A cache over `source`, reading time from `clock`.
    pub fn new(source: S, clock: Clock) -> Self {
        Self::with_config(source, clock, CacheConfig::new())
    }

    /// A cache with the given refresh settings.
    pub fn with_config(source: S, clock: Clock, config: CacheConfig) -> Self {
        Self {
            source,
            clock,
            config,
            current: ArcSwapOption::empty(),
            revoked: AtomicBool::new(false),
            revoked_reason: Mutex::new(None),
            refused: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            random: Random::from_seed(config.seed),
            refresh: tokio::sync::Mutex::new(None),
            changed: Notify::new(),
        }
    }

    /// A valid token, refreshed first if it is about to expire.
    ///
    /// # Errors
    ///
    /// [`TokenError::Reauthorize`] once the credentials were revoked;
    /// [`TokenError::RefreshFailed`] when the token has expired and the source cannot give a new
    /// one now.
    pub async fn get(&self) -> Result<Arc<AccessToken>, TokenError> {
        Ok(self.entry().await?.token.clone())
    }

    /// A valid token with the header values made from it, refreshed first if it is about to
    /// expire: what the token layer puts on each request.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn current(&self) -> Result<CachedToken, TokenError> {
        self.entry().await.map(CachedToken)
    }

    /// The cached entry if it needs no refresh.
    fn fresh_entry(&self) -> Option<Arc<Cached>> {
        self.with_fresh((), |cached, ()| cached.clone()).ok()
    }

    /// Runs `f` with the cached entry and `input` if the entry needs no refresh, without touching
    /// its reference count; gives `input` back otherwise.
    pub(crate) fn with_fresh<T, R>(
        &self,
        input: T,
        f: impl FnOnce(&Arc<Cached>, T) -> R,
    ) -> Result<R, T> {
        if self.revoked.load(Ordering::Acquire) {
            return Err(input);
        }
        let now = self.clock.now();
        match &*self.current.load() {
            Some(cached) if cached.is_fresh(now) => Ok(f(cached, input)),
            _ => Err(input),
        }
    }

    /// The server accepted the token of `ticket`: a later refusal of it is no longer final.
    pub(crate) fn accepted(&self, ticket: Ticket) {
        if ticket.unproven
            && let Some(cached) = &*self.current.load()
            && cached.generation == ticket.generation
        {
            cached.mark_accepted();
        }
    }

    /// The server refused the token of `ticket`: drop it if it is still the cached one.
    pub(crate) fn refused(&self, ticket: Ticket) {
        let current = self.current.load_full();
        if let Some(cached) = &current
            && cached.generation == ticket.generation
        {
            self.drop_refused(&current);
        }
    }

    /// A valid entry, refreshed first if needed.
    pub(crate) async fn entry(&self) -> Result<Arc<Cached>, TokenError> {
        match self.fresh_entry() {
            Some(cached) => Ok(cached),
            // Boxed: the refresh is rare, and a caller's future should not carry its size on
            // every call that finds the token fresh.
            None => Box::pin(self.refresh(self.clock.now())).await,
        }
    }

    /// Forgets `used` if it is still the cached token (the server refused it with a 401), so the
    /// next [`get`](Self::get) fetches a new one.
    pub fn invalidate(&self, used: &Arc<AccessToken>) {
        let current = self.current.load_full();
        if current.as_ref().is_some_and(|cached| Arc::ptr_eq(&cached.token, used)) {
            self.drop_refused(&current);
        }
    }

    fn drop_refused(&self, current: &Option<Arc<Cached>>) {
        self.refused.store(true, Ordering::Release);
        let previous = self.current.compare_and_swap(current, None);
        let swapped = match (&*previous, current) {
            (Some(previous), Some(current)) => Arc::ptr_eq(previous, current),
            _ => false,
        };
        if swapped {
            tracing::info!("the server refused the access token; fetching a new one");
            self.changed.notify_one();
        }
    }

    /// Call after the credentials were replaced (a human re-authorized): the source is asked again.
    pub fn reset_credentials(&self) {
        *self.revoked_reason.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.revoked.store(false, Ordering::Release);
        self.changed.notify_one();
    }

    /// True once the credentials were refused for good, until
    /// [`reset_credentials`](Self::reset_credentials).
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    /// The clock this cache reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Starts a task that refreshes the token when it is due (and fetches the first one at once),
    /// so that callers never wait for a fetch. After a failure it tries again every retry
    /// spacing; once the credentials are revoked it waits for
    /// [`reset_credentials`](Self::reset_credentials). The task stops when the returned handle is
    /// dropped.
    ///
    /// Callers still refresh by themselves if the task falls behind (a suspended machine), so the
    /// task is an optimisation, never a dependency.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use = "the refresher stops when its handle is dropped"]
    pub fn spawn_refresher(self: &Arc<Self>) -> BackgroundRefresh {
        let cache = self.clone();
        BackgroundRefresh { task: tokio::spawn(async move { cache.refresh_in_background().await }) }
    }

    async fn refresh_in_background(&self) {
        loop {
            match self.refresh_due() {
                Some(due) => tokio::select! {
                    () = self.clock.sleep_until(due) => {}
                    () = self.changed.notified() => continue,
                },
                None => {
                    self.changed.notified().await;
                    continue;
                }
            }
            let refreshed = self.refresh(self.clock.now()).await.is_ok();
            if !refreshed || self.fresh_entry().is_none() {
                tokio::select! {
                    () = self.clock.sleep(self.config.retry_spacing) => {}
                    () = self.changed.notified() => {}
                }
            }
        }
    }

    /// When the background task should fetch next: `None` for never (until woken).
    fn refresh_due(&self) -> Option<Instant> {
        if self.revoked.load(Ordering::Acquire) {
            return None;
        }
        match &*self.current.load() {
            Some(cached) => cached.refresh_at,
            None => Some(self.clock.now()),
        }
    }

    async fn refresh(&self, now: Instant) -> Result<Arc<Cached>, TokenError> {
        let old = self.current.load_full().filter(|c| c.is_valid(now));
        // Tokens fetched from here on are numbered from this: a caller that waited for someone
        // else's fetch takes its token, whatever its expiry.
        let waited_for = self.generation.load(Ordering::Acquire);
        let mut last_failure = match self.refresh.try_lock() {
            Ok(guard) => guard,
            // Someone is refreshing: use the old token while it lasts, else wait for theirs.
            Err(_) => match &old {
                Some(cached) if !self.revoked.load(Ordering::Acquire) => {
                    return Ok(cached.clone());
                }
                _ => self.refresh.lock().await,
            },
        };
        if self.revoked.load(Ordering::Acquire) {
            let reason = self.revoked_reason.lock().unwrap_or_else(PoisonError::into_inner).clone();
            return Err(TokenError::Reauthorize { reason: reason.unwrap_or_default() });
        }
        let now = self.clock.now();
        if let Some(cached) = &*self.current.load()
            && (cached.is_fresh(now) || cached.generation >= waited_for)
        {
            return Ok(cached.clone()); // refreshed while this caller waited
        }
        let old = self.current.load_full().filter(|c| c.is_valid(now));
        if let Some(next_try) = last_failure.map(|failed| failed + self.config.retry_spacing)
            && now < next_try
        {
            return match old {
                Some(cached) => Ok(cached),
                None => Err(TokenError::RefreshFailed {
                    retry_at: self.clock.wall_at(next_try),
                    source: None,
                }),
            };
        }
        match self.source.fetch().await {
            Ok(token) => {
                let after_refusal = self.refused.swap(false, Ordering::AcqRel);
                let cached = self.schedule(Arc::new(token), after_refusal);
                // A token due on arrival is used (the server judges it), and the next fetch is
                // spaced like one after a failure: a source that only gives such tokens must not
                // be asked on every call.
                *last_failure = cached.due_on_arrival.then(|| self.clock.now());
                let cached = Arc::new(cached);
                self.current.store(Some(cached.clone()));
                Ok(cached)
            }
            Err(FetchError::Revoked { reason }) => {
                tracing::error!(%reason, "credentials refused: a human must re-authorize");
                *self.revoked_reason.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(reason.clone());
                self.revoked.store(true, Ordering::Release);
                self.current.store(None);
                Err(TokenError::Reauthorize { reason })
            }
            Err(FetchError::Unavailable(source)) => {
                let now = self.clock.now();
                *last_failure = Some(now);
                let retry_at = self.clock.wall_at(now + self.config.retry_spacing);
                tracing::warn!(error = %source, %retry_at, still_valid = old.is_some(), "token refresh failed");
                match old {
                    Some(cached) => Ok(cached),
                    None => Err(TokenError::RefreshFailed { retry_at, source: Some(source) }),
                }
            }
        }
    }

    /// When to refresh `token`: its lifetime times the fraction, at most the maximum skew, less up
    /// to a fifth at random. A token already due (it expires now or earlier) is kept until one
    /// retry spacing from now.
    fn schedule(&self, token: Arc<AccessToken>, after_refusal: bool) -> Cached {
        let expires = token.expires_at();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel);
        let cached = |refresh_at, expires_at, due_on_arrival| Cached {
            token,
            generation,
            refresh_at,
            expires_at,
            due_on_arrival,
            after_refusal,
            accepted: AtomicBool::new(false),
            bearer: OnceLock::new(),
            raw: OnceLock::new(),
        };
        let Some(expires) = expires else {
            return cached(None, None, false);
        };
        let (now, wall) = (self.clock.now(), self.clock.wall());
        if expires <= wall {
            let next_try = now + self.config.retry_spacing;
            tracing::warn!(
                %expires,
                next_try = %self.clock.wall_at(next_try),
                "the token source gave a token that is already due; using it, and asking for \
                 another after the retry spacing"
            );
            return cached(Some(next_try), Some(now), true);
        }
        let lifetime = duration_between(wall, expires);
        let skew = lifetime.mul_f64(self.config.skew_fraction).min(self.config.max_skew);
        let skew = skew.mul_f64(1.0 - self.random.unit() * 0.2);
        let expires_at = self.clock.instant_at(expires);
        let refresh_at = expires_at.checked_sub(skew).unwrap_or(expires_at);
        cached(Some(refresh_at), Some(expires_at), false)
    }
}
