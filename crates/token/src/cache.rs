//! The token cache: refresh before expiry, one refresh at a time, the old token while it lasts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;
use unattended_core::clock::duration_between;
use unattended_core::{Clock, TokenError};

use crate::token::{AccessToken, FetchError, TokenSource};

/// When to refresh, and how often to try again after a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheConfig {
    max_skew: Duration,
    skew_fraction: f64,
    retry_spacing: Duration,
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
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A token and when to replace it, in monotonic time.
#[derive(Debug)]
struct Cached {
    token: Arc<AccessToken>,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl Cached {
    fn is_fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    fn is_valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
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
    refresh: tokio::sync::Mutex<Option<Instant>>,
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
            refresh: tokio::sync::Mutex::new(None),
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
        let now = self.clock.now();
        if !self.revoked.load(Ordering::Acquire)
            && let Some(cached) = &*self.current.load()
            && cached.is_fresh(now)
        {
            return Ok(cached.token.clone());
        }
        self.refresh(now).await
    }

    /// Forgets `used` if it is still the cached token (the server refused it with a 401), so the
    /// next [`get`](Self::get) fetches a new one.
    pub fn invalidate(&self, used: &Arc<AccessToken>) {
        let current = self.current.load_full();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(&c.token, used)) {
            self.current.compare_and_swap(&current, None);
        }
    }

    /// Call after the credentials were replaced (a human re-authorized): the source is asked again.
    pub fn reset_credentials(&self) {
        *self.revoked_reason.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.revoked.store(false, Ordering::Release);
    }

    async fn refresh(&self, now: Instant) -> Result<Arc<AccessToken>, TokenError> {
        let old = self.current.load_full().filter(|c| c.is_valid(now));
        let mut last_failure = match self.refresh.try_lock() {
            Ok(guard) => guard,
            // Someone is refreshing: use the old token while it lasts, else wait for theirs.
            Err(_) => match &old {
                Some(cached) if !self.revoked.load(Ordering::Acquire) => {
                    return Ok(cached.token.clone());
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
            && cached.is_fresh(now)
        {
            return Ok(cached.token.clone()); // refreshed while this caller waited
        }
        let old = self.current.load_full().filter(|c| c.is_valid(now));
        if let Some(next_try) = last_failure.map(|failed| failed + self.config.retry_spacing)
            && now < next_try
        {
            return match old {
                Some(cached) => Ok(cached.token.clone()),
                None => Err(TokenError::RefreshFailed {
                    retry_at: self.clock.wall_at(next_try),
                    source: None,
                }),
            };
        }
        match self.source.fetch().await {
            Ok(token) => {
                *last_failure = None;
                let token = Arc::new(token);
                self.current.store(Some(Arc::new(self.schedule(token.clone()))));
                Ok(token)
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
                    Some(cached) => Ok(cached.token.clone()),
                    None => Err(TokenError::RefreshFailed { retry_at, source: Some(source) }),
                }
            }
        }
    }

    /// When to refresh `token`: its lifetime times the fraction, at most the maximum skew, less up
    /// to a fifth at random.
    fn schedule(&self, token: Arc<AccessToken>) -> Cached {
        let Some(expires) = token.expires_at() else {
            return Cached { token, refresh_at: None, expires_at: None };
        };
        let lifetime = duration_between(self.clock.wall(), expires);
        let skew = lifetime.mul_f64(self.config.skew_fraction).min(self.config.max_skew);
        let skew = skew.mul_f64(1.0 - fastrand::f64() * 0.2);
        let expires_at = self.clock.instant_at(expires);
        let refresh_at = expires_at.checked_sub(skew).unwrap_or(expires_at);
        Cached { token, refresh_at: Some(refresh_at), expires_at: Some(expires_at) }
    }
}
