//! The retry service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;
use unattended_core::{BoxError, Classifier};

use crate::attempt::{Attempt, AttemptMeta, AttemptService};
use crate::policy::{RetryPolicy, Shared};
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
#[derive(Debug)]
pub struct Retry<S, C, P> {
    inner: tower::retry::Retry<RetryPolicy<C, P>, AttemptService<S>>,
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
        let attempts =
            AttemptService { inner, timeout: shared.config.attempt_timeout, clock: shared.clock };
        let policy = RetryPolicy { shared: shared.clone() };
        Self { inner: tower::retry::Retry::new(policy, attempts), shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.get_mut().inner
    }

    /// Consumes the layer, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner.into_inner().inner
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
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let shared = &*self.shared;
        let now = shared.clock.now();
        if let Some(budget) = &shared.budget {
            budget.deposit(now);
        }
        let meta = AttemptMeta {
            started: now,
            attempts: 1,
            previous: shared.config.base_delay,
            idempotent: shared.replay.is_idempotent(&req),
            renewed: false,
            key: None,
        };
        ResponseFuture { inner: self.inner.call(Attempt { req: Some(req), meta }) }
    }
}

pin_project! {
    /// The future of [`Retry`].
    pub struct ResponseFuture<S, C, P, Req>
    where
        S: Service<Req>,
        S::Error: Into<BoxError>,
        C: Classifier<S::Response>,
        P: Replay<Req>,
    {
        #[pin]
        inner: tower::retry::future::ResponseFuture<RetryPolicy<C, P>, AttemptService<S>, Attempt<Req>>,
    }
}

impl<S, C, P, Req> Future for ResponseFuture<S, C, P, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response>,
    P: Replay<Req>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S, C, P, Req> std::fmt::Debug for ResponseFuture<S, C, P, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response>,
    P: Replay<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
