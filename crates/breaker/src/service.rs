//! The circuit-breaker service.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tower_service::Service;
use unattended_core::{BoxError, BreakerOpen, Classifier, KeyOf, KeySource};

use crate::circuit::{Admit, Circuit, Permit};
use crate::event::BreakerEvent;
use crate::future::{ResponseFuture, Tracker};
use crate::registry::Registry;

/// What every service made by one layer shares.
pub(crate) struct Shared<K, C> {
    pub(crate) registry: Arc<Registry>,
    pub(crate) key: K,
    pub(crate) classifier: C,
    /// The circuit of the first service the layer's services called. A fresh clone (a client
    /// clones its stack for each call) has no last key of its own; most layers talk to one
    /// service, and this spares them the keyed lookup. Circuits are never replaced in the
    /// registry, so the pinned one stays the live one.
    pub(crate) first: OnceLock<(KeySource, Arc<Circuit>)>,
}

impl<K, C> Shared<K, C> {
    pub(crate) fn new(registry: Arc<Registry>, key: K, classifier: C) -> Self {
        Self { registry, key, classifier, first: OnceLock::new() }
    }
}

/// Fails calls fast while their service is failing, per service key, and lets a few probes
/// test it before closing again.
///
/// Made by [`CircuitBreakerLayer`](crate::CircuitBreakerLayer). Its error type is
/// [`BoxError`]: the inner service's errors pass through, plus [`BreakerOpen`] for a call that
/// was not sent.
///
/// # Readiness
///
/// The key is in the request, so `poll_ready` is the inner service's, and the decision is taken
/// in `call`: an open breaker answers at once with an error, without calling the inner service.
///
/// # Clone
///
/// Clones share the breakers. Each clone remembers the last service it called, and the layer
/// the first one any of its services called, so a client that talks to one host skips the
/// lookup even through fresh clones.
pub struct CircuitBreaker<S, K, C> {
    inner: S,
    shared: Arc<Shared<K, C>>,
    last: Option<(KeySource, Arc<Circuit>)>,
}

// ===== impl CircuitBreaker =====

impl<S, K, C> CircuitBreaker<S, K, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K, C>>) -> Self {
        Self { inner, shared, last: None }
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

impl<S: Clone, K, C> Clone for CircuitBreaker<S, K, C> {
    fn clone(&self) -> Self {
        // The last key is not copied: a clone that calls finds it again through the layer's
        // pinned circuit, and the clones a retry or redirect layer keeps in reserve mostly never
        // call at all.
        Self { inner: self.inner.clone(), shared: self.shared.clone(), last: None }
    }
}

impl<S: fmt::Debug, K, C> fmt::Debug for CircuitBreaker<S, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, K, C, Req> Service<Req> for CircuitBreaker<S, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: KeyOf<Req>,
    C: Classifier<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let shared = &*self.shared;
        let circuit = match &self.last {
            Some((last, circuit)) if shared.key.is_key(&req, last) => circuit.clone(),
            _ => match shared.first.get() {
                Some((first, circuit)) if shared.key.is_key(&req, first) => {
                    self.last = Some((first.clone(), circuit.clone()));
                    circuit.clone()
                }
                _ => {
                    let Some(key) = shared.key.key_of(&req) else {
                        return ResponseFuture::called(self.inner.call(req), None);
                    };
                    let circuit = shared.registry.circuit(&key);
                    let _ = shared.first.set((key.clone(), circuit.clone()));
                    self.last = Some((key, circuit.clone()));
                    circuit
                }
            },
        };
        match admit(&circuit) {
            Ok((permit, started)) => {
                let tracker =
                    Tracker::new(circuit, permit, started, self.shared.classifier.clone());
                ResponseFuture::called(self.inner.call(req), Some(tracker))
            }
            Err(open) => ResponseFuture::rejected(open),
        }
    }
}

/// Asks `circuit` whether a call may go through now: its permit and start time, or the error of
/// an open breaker (announced and logged).
pub(crate) fn admit(
    circuit: &Arc<Circuit>,
) -> Result<(Permit, Option<tokio::time::Instant>), BreakerOpen> {
    let settings = &*circuit.settings;
    let closed = circuit.is_closed();
    let now = (!closed || settings.config.slow_call.is_some()).then(|| settings.clock.now());
    let admit = match now {
        Some(now) if !closed => {
            let (admit, transition) = circuit.admit(now, &settings.config);
            if let Some(transition) = transition {
                settings.announce(circuit, transition);
            }
            admit
        }
        // The common case: closed, no clock read, no lock.
        _ => Admit::Allowed(Permit::Call),
    };
    match admit {
        Admit::Allowed(permit) => Ok((permit, settings.config.slow_call.and(now))),
        Admit::Rejected(until) => {
            let retry_at = settings.clock.wall_at(until);
            let key = circuit.key.clone();
            tracing::debug!(key = key.as_str(), %retry_at, "circuit open: failing fast");
            settings.emit(&BreakerEvent::Rejected {
                key: key.clone(),
                retry_at,
                at: settings.clock.wall(),
            });
            Err(BreakerOpen::new(key, retry_at))
        }
    }
}
