//! The retry service.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;
use unattended_core::{BoxError, Classifier};

use crate::attempt::{self, AttemptMeta};
use crate::future::ResponseFuture;
use crate::policy::Shared;
use crate::replay::Replay;

/// Retries failed requests with jittered exponential backoff, within a shared budget, an
/// overall deadline and the server's own `Retry-After`.
///
/// Made by [`RetryLayer`](crate::RetryLayer); see the crate docs for the rules it follows.
/// Its error type is [`BoxError`]: the wrapped service's errors pass through unchanged, plus
/// [`GaveUp`](crate::GaveUp) when the layer stops retrying a failure that might pass, and
/// `tower::timeout::error::Elapsed` when an attempt times out.
///
/// # Clone
///
/// Clones share the layer's budget, jitter source and event hook.
///
/// # Readiness
///
/// `poll_ready` is the wrapped service's. Like tower's own `Retry`, the response future keeps
/// a clone of the wrapped service (made after the first attempt is sent) and readies it again
/// before each retry.
#[derive(Debug)]
pub struct Retry<S, C, P> {
    inner: S,
    shared: Arc<Shared<C, P>>,
}

impl<S: Clone, C, P> Clone for Retry<S, C, P> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

// ===== impl Retry =====

impl<S, C, P> Retry<S, C, P> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C, P>>) -> Self {
        Self { inner, shared }
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

impl<S, C, P, Req> Service<Req> for Retry<S, C, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response>,
    P: Replay<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, C, P, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let shared = &*self.shared;
        let now = shared.clock.now();
        let mut key = None;
        let copy = shared.keep_copy(&req, &mut key);
        let meta = AttemptMeta {
            started: now,
            attempts: 1,
            previous: shared.config.base_delay,
            idempotent: shared.replay.is_idempotent(&req),
            renewed: false,
            key,
        };
        let first =
            attempt::send(&mut self.inner, req, shared.config.attempt_timeout, shared.clock);
        ResponseFuture::new(first, self.shared.clone(), self.inner.clone(), copy, meta)
    }
}
