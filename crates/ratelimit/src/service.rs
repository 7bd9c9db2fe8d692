//! The rate-limit service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;
use unattended_core::{BoxError, KeyOf};

use crate::future::ResponseFuture;
use crate::policy::{Admission, Policy};
use crate::pushback::Pushback;
use crate::registry::PauseRegistry;

/// What every service made by one layer shares: the rules and how requests are keyed.
pub(crate) struct Shared<K, P> {
    pub(crate) policy: Policy<P>,
    pub(crate) key: K,
}

impl<K: Clone, P: Clone> Clone for Shared<K, P> {
    fn clone(&self) -> Self {
        Self { policy: self.policy.clone(), key: self.key.clone() }
    }
}

impl<K: fmt::Debug, P: fmt::Debug> fmt::Debug for Shared<K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("policy", &self.policy).field("key", &self.key).finish()
    }
}

/// Holds every request to a host while the server has asked its callers to wait, paces the
/// hosts that throttled, and learns both from the responses.
///
/// Made by [`RateLimitLayer`](crate::RateLimitLayer). Its error type is [`BoxError`]: the inner
/// service's errors pass through, plus [`HostPaused`](crate::HostPaused) for a request that may
/// not wait as long as the pause lasts (or as its slot in a paced line is away).
///
/// # Readiness
///
/// The key is in the request, so readiness cannot depend on it: `poll_ready` is the inner
/// service's. A request that must wait takes the readied inner service into its future (a clone
/// stays behind for the next call), waits there, polls it ready again and sends. Whatever the
/// readiness reserved (a concurrency permit, say) is held during the wait: put concurrency
/// limits outside this layer if waiting requests must not occupy them. Dropping the future
/// releases it, and gives its place in a paced line back.
///
/// # Clone
///
/// Clones share the registry of pauses and paces.
pub struct RateLimit<S, K, P> {
    inner: S,
    shared: Arc<Shared<K, P>>,
}

// ===== impl RateLimit =====

impl<S, K, P> RateLimit<S, K, P> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K, P>>) -> Self {
        Self { inner, shared }
    }

    /// The registry of pauses and paces.
    pub fn registry(&self) -> &PauseRegistry {
        &self.shared.policy.registry
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
        let policy = &self.shared.policy;
        let admission = match &key {
            // The happy path: no host paused or paced, nothing configured, one atomic load.
            Some(_) if policy.pace.is_none() && policy.registry.is_quiet() => Admission::Send(None),
            Some(key) => policy.admit(key),
            None => Admission::Send(None),
        };
        match admission {
            Admission::Send(paced) => {
                ResponseFuture::called(self.inner.call(req), key, paced, self.shared.clone())
            }
            Admission::Reject(paused) => ResponseFuture::rejected(paused, self.shared.clone()),
            Admission::Hold(waiting) => {
                // The readied service goes with the request (tower-service's advice), a fresh
                // clone stays for the next call.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::held(inner, req, key, waiting, self.shared.clone())
            }
        }
    }
}
