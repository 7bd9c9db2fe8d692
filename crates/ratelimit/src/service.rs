//! The rate-limit service.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use jiff::Timestamp;
use tower_service::Service;
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock, HostPaused, KeyOf, KeySource, ServerWait, ServiceKey};

use crate::event::{EventHook, RateLimitEvent};
use crate::future::ResponseFuture;
use crate::pacing::Pacer;
use crate::pushback::Pushback;
use crate::registry::{PauseRegistry, PauseState};

/// What a response future needs to learn from its response. Cheap to copy: no shared reference
/// count is touched per request unless an event hook is set.
pub(crate) struct Learn<P> {
    pub(crate) pushback: P,
    pub(crate) clock: Clock,
    pub(crate) registry: PauseRegistry,
    pub(crate) hook: Option<EventHook>,
}

impl<P: Clone> Clone for Learn<P> {
    fn clone(&self) -> Self {
        Self {
            pushback: self.pushback.clone(),
            clock: self.clock,
            registry: self.registry,
            hook: self.hook.clone(),
        }
    }
}

impl<P> Learn<P> {
    pub(crate) fn emit(&self, event: &RateLimitEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }

    /// Records a server's request to slow down.
    pub(crate) fn record(&self, key: &KeySource, wait: ServerWait) {
        let now = self.clock.wall();
        let key = key.to_key();
        if self.registry.pause(key.clone(), wait.until, now) {
            tracing::warn!(
                key = key.as_str(),
                until = %wait.until,
                source = %wait.source,
                capped = wait.capped,
                "server pushed back; pausing every request to this host"
            );
            self.emit(&RateLimitEvent::PauseSet {
                key,
                until: wait.until,
                source: wait.source,
                at: now,
            });
        }
    }
}

/// What every service made by one layer shares.
pub(crate) struct Shared<K, P> {
    pub(crate) learn: Learn<P>,
    pub(crate) key: K,
    pub(crate) max_wait: Duration,
    pub(crate) release_spread: Duration,
    pub(crate) rng: Option<Arc<Mutex<fastrand::Rng>>>,
    pub(crate) pacer: Option<Arc<Pacer>>,
}

impl<K: Clone, P: Clone> Clone for Shared<K, P> {
    fn clone(&self) -> Self {
        Self {
            learn: self.learn.clone(),
            key: self.key.clone(),
            max_wait: self.max_wait,
            release_spread: self.release_spread,
            rng: self.rng.clone(),
            pacer: self.pacer.clone(),
        }
    }
}

impl<K: fmt::Debug, P: fmt::Debug> fmt::Debug for Shared<K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("registry", &self.learn.registry)
            .field("clock", &self.learn.clock)
            .field("key", &self.key)
            .field("pushback", &self.learn.pushback)
            .field("max_wait", &self.max_wait)
            .field("release_spread", &self.release_spread)
            .field("hook", &self.learn.hook.as_ref().map(|_| "Fn(&RateLimitEvent)"))
            .finish_non_exhaustive()
    }
}

/// What to do with a request, decided in `call`.
pub(crate) enum Admission {
    /// Send it now.
    Send,
    /// Wait until `release` (the pause's end plus a share of the spread), then check again.
    Hold { release: Timestamp, deadline: Timestamp },
    /// Fail at once.
    Reject(HostPaused),
}

impl<K, P> Shared<K, P> {
    /// Decides about a request for `key`. `deadline` is the latest the request may be released:
    /// fixed when it first arrives, so re-checks after a wait cannot extend it.
    pub(crate) fn admit(&self, key: &KeySource, deadline: Option<Timestamp>) -> Admission {
        let Learn { clock, registry, .. } = &self.learn;
        let now = clock.wall();
        let deadline = deadline.unwrap_or_else(|| add_saturating(now, self.max_wait));
        match key.with_str(|k| registry.lookup(k, now)) {
            PauseState::Paused(until) => {
                let release = add_saturating(until, self.release_spread.mul_f64(self.unit()));
                return self.wait_until(key.to_key(), until, release, deadline, now);
            }
            PauseState::Over => {
                if key.with_str(|k| registry.end_if_over(k, now)) {
                    let key = key.to_key();
                    tracing::info!(key = key.as_str(), "pause over");
                    self.learn.emit(&RateLimitEvent::PauseEnded { key, at: now });
                }
            }
            PauseState::Clear => {}
        }
        let Some(pacer) = &self.pacer else {
            return Admission::Send;
        };
        let key = key.to_key();
        match pacer.check(&key) {
            Ok(()) => Admission::Send,
            Err(wait) => {
                let until = add_saturating(now, wait);
                self.wait_until(key, until, until, deadline, now)
            }
        }
    }

    /// Holds a request until `release`, or rejects it if `until` is past its deadline.
    fn wait_until(
        &self,
        key: ServiceKey,
        until: Timestamp,
        release: Timestamp,
        deadline: Timestamp,
        now: Timestamp,
    ) -> Admission {
        if until > deadline {
            tracing::info!(key = key.as_str(), %until, "host paused for longer than this request may wait");
            self.learn.emit(&RateLimitEvent::Rejected { key: key.clone(), until, at: now });
            return Admission::Reject(HostPaused::new(key, until));
        }
        tracing::debug!(key = key.as_str(), %until, "holding a request until the pause ends");
        self.learn.emit(&RateLimitEvent::Held { key, until, at: now });
        Admission::Hold { release, deadline }
    }

    fn unit(&self) -> f64 {
        match &self.rng {
            Some(rng) => rng.lock().unwrap_or_else(PoisonError::into_inner).f64(),
            None => fastrand::f64(),
        }
    }
}

/// Holds every request to a host while the server has asked its callers to wait, and learns such
/// requests from the responses.
///
/// Made by [`RateLimitLayer`](crate::RateLimitLayer). Its error type is [`BoxError`]: the inner
/// service's errors pass through, plus [`HostPaused`] for a request that may not wait as long as
/// the pause lasts.
///
/// # Readiness
///
/// The key is in the request, so readiness cannot depend on it: `poll_ready` is the inner
/// service's. A request for a paused host takes the readied inner service into its future (a
/// clone stays behind for the next call), waits there, polls it ready again and sends. Whatever
/// the readiness reserved (a concurrency permit, say) is held during the wait: put concurrency
/// limits outside this layer if held requests must not occupy them. Dropping the future
/// releases it.
///
/// # Clone
///
/// Clones share the pause registry.
pub struct RateLimit<S, K, P> {
    inner: S,
    shared: Arc<Shared<K, P>>,
}

// ===== impl RateLimit =====

impl<S, K, P> RateLimit<S, K, P> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K, P>>) -> Self {
        Self { inner, shared }
    }

    /// The registry of pauses.
    pub fn registry(&self) -> PauseRegistry {
        self.shared.learn.registry
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the layer, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, P> Clone for RateLimit<S, K, P> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, P: fmt::Debug> fmt::Debug for RateLimit<S, K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S, K, P, Req> Service<Req> for RateLimit<S, K, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: KeyOf<Req>,
    P: Pushback<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, K, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = self.shared.key.key_of(&req);
        let admission = match &key {
            // The happy path: nothing is paused anywhere, one atomic load.
            Some(_) if self.shared.pacer.is_none() && self.shared.learn.registry.is_quiet() => {
                Admission::Send
            }
            Some(key) => self.shared.admit(key, None),
            None => Admission::Send,
        };
        match admission {
            Admission::Send => {
                ResponseFuture::called(self.inner.call(req), key, self.shared.learn.clone())
            }
            Admission::Reject(paused) => {
                ResponseFuture::rejected(paused, self.shared.learn.clone())
            }
            Admission::Hold { release, deadline } => {
                // The readied service goes with the request (tower-service's advice), a fresh
                // clone stays for the next call.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::held(inner, req, key, (release, deadline), self.shared.clone())
            }
        }
    }
}
