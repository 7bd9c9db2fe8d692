//! The plumbing between this layer and tower's `Retry`: a request wrapper that carries the
//! per-request retry state, and an inner service that unwraps it and times each attempt.
//!
//! You meet these types only in the names of the layer's service and future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;
use unattended_core::{BoxError, Clock, ServiceKey};

/// A request on its way through the retry layer, with the state of its retries.
///
/// The state rides with the request because tower's `Retry` keeps one policy per service, not
/// per request: whatever changes between attempts must travel with the request copy.
#[derive(Debug)]
pub struct Attempt<Req> {
    /// The request to send; `None` when it could not be copied for a retry.
    pub(crate) req: Option<Req>,
    pub(crate) meta: AttemptMeta,
}

#[derive(Clone, Debug)]
pub(crate) struct AttemptMeta {
    /// When the first attempt started.
    pub(crate) started: Instant,
    /// Attempts made so far, counting the one in flight.
    pub(crate) attempts: u32,
    /// The delay before the last retry (the base delay before the first).
    pub(crate) previous: Duration,
    pub(crate) idempotent: bool,
    /// Set once the request was sent again after the token layer renewed its credential.
    pub(crate) renewed: bool,
    /// Set when the request could not be kept, so errors can still name the service.
    pub(crate) key: Option<ServiceKey>,
}

/// The service tower's `Retry` drives: it unwraps an [`Attempt`], calls the wrapped service,
/// converts its error to [`BoxError`] and applies the per-attempt timeout.
#[derive(Clone, Debug)]
pub struct AttemptService<S> {
    pub(crate) inner: S,
    pub(crate) timeout: Option<Duration>,
    pub(crate) clock: Clock,
}

impl<S, Req> Service<Attempt<Req>> for AttemptService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AttemptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, attempt: Attempt<Req>) -> Self::Future {
        let Some(req) = attempt.req else {
            return AttemptFuture { state: State::Spent };
        };
        let future = self.inner.call(req);
        let state = match self.timeout {
            Some(limit) => State::Timed { future: self.clock.timeout(limit, future) },
            None => State::Plain { future },
        };
        AttemptFuture { state }
    }
}

pin_project! {
    /// The future of one attempt.
    #[derive(Debug)]
    pub struct AttemptFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        // No time limit.
        Plain { #[pin] future: F },
        // With the per-attempt time limit.
        Timed { #[pin] future: tokio::time::Timeout<F> },
        // The policy never sends a request it could not copy; this state only guards that.
        Spent,
    }
}

impl<F, T, E> Future for AttemptFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Plain { future } => future.poll(cx).map_err(Into::into),
            StateProj::Timed { future } => match ready!(future.poll(cx)) {
                Ok(result) => Poll::Ready(result.map_err(Into::into)),
                Err(_) => Poll::Ready(Err(tower::timeout::error::Elapsed::new().into())),
            },
            StateProj::Spent => Poll::Ready(Err("retry layer: a request that could not be \
                                                    copied was sent again"
                .into())),
        }
    }
}
