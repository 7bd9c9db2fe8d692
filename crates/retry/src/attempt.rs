//! One attempt: the wrapped service's future, its error boxed, within the per-attempt timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;
use unattended_core::{BoxError, Clock, ServiceKey};

/// Where one request stands in its retries; it lives in the request's future.
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

/// Calls `service` (readied by the caller) with `req`, within `timeout` if there is one.
pub(crate) fn send<S, Req>(
    service: &mut S,
    req: Req,
    timeout: Option<Duration>,
    clock: Clock,
) -> AttemptFuture<S::Future>
where
    S: Service<Req>,
{
    let future = service.call(req);
    let state = match timeout {
        Some(limit) => State::Timed { future: clock.timeout(limit, future) },
        None => State::Plain { future },
    };
    AttemptFuture { state }
}

pin_project! {
    /// The future of one attempt.
    #[derive(Debug)]
    pub(crate) struct AttemptFuture<F> {
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
        }
    }
}
