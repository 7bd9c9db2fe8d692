//! The retry layer's response future: the attempts of one request, and the waits between them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use unattended_core::{BoxError, Classifier};

use crate::attempt::{self, AttemptFuture, AttemptMeta};
use crate::policy::Shared;
use crate::replay::Replay;

pin_project! {
    /// The future of [`Retry`](crate::Retry).
    ///
    /// It holds what the retries of one request need: a copy of the request for the next
    /// attempt, where the request stands (attempts, start, last delay), and a clone of the
    /// wrapped service to send it through.
    pub struct ResponseFuture<S, C, P, Req>
    where
        S: Service<Req>,
    {
        shared: Arc<Shared<C, P>>,
        service: S,
        copy: Option<Req>,
        meta: AttemptMeta,
        #[pin]
        state: State<S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is in flight.
        Sending { #[pin] attempt: AttemptFuture<F> },
        // Waiting out the delay before the next attempt.
        Waiting { #[pin] sleep: Sleep },
        // Readying the service for the next attempt.
        Readying,
    }
}

impl<S, C, P, Req> ResponseFuture<S, C, P, Req>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        first: AttemptFuture<S::Future>,
        shared: Arc<Shared<C, P>>,
        service: S,
        copy: Option<Req>,
        meta: AttemptMeta,
    ) -> Self {
        Self { shared, service, copy, meta, state: State::Sending { attempt: first } }
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
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Sending { attempt } => {
                    let mut result = ready!(attempt.poll(cx));
                    let shared = &**this.shared;
                    match shared.after_attempt(this.meta, this.copy.as_ref(), &mut result) {
                        None => return Poll::Ready(result),
                        Some(delay) if delay.is_zero() => this.state.set(State::Readying),
                        Some(delay) => {
                            this.state.set(State::Waiting { sleep: shared.clock.sleep(delay) });
                        }
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(error.into()));
                    }
                    let shared = &**this.shared;
                    // The rule retries only with a copy at hand; this only guards that.
                    let Some(req) = this.copy.take() else {
                        return Poll::Ready(Err("retry layer: no copy of the request to send \
                                                again"
                            .into()));
                    };
                    *this.copy = shared.keep_copy(&req, &mut this.meta.key);
                    let timeout = shared.config.attempt_timeout;
                    let attempt = attempt::send(this.service, req, timeout, shared.clock);
                    this.state.set(State::Sending { attempt });
                }
            }
        }
    }
}

impl<S, C, P, Req> std::fmt::Debug for ResponseFuture<S, C, P, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.meta.attempts)
            .field("started", &self.meta.started)
            .finish_non_exhaustive()
    }
}
