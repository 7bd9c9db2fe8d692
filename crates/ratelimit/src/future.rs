//! The rate-limit layer's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use jiff::Timestamp;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use unattended_core::{BoxError, HostPaused, KeySource};

use crate::pushback::Pushback;
use crate::service::{Admission, Learn, Shared};

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit).
    pub struct ResponseFuture<S, Req, K, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, Held<S, Req, K, P>>,
        key: Option<KeySource>,
        learn: Learn<P>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, H> {
        // The request was sent; the response will be read for pushback.
        Called { #[pin] future: F },
        // The host is paused: wait, check again, ready a clone of the service, send.
        Held { held: Pin<Box<H>> },
        // The pause outlasts what the request may wait.
        Rejected { error: Option<HostPaused> },
    }
}

pin_project! {
    /// A request waiting for its host's pause to end (boxed: only paused requests pay for it).
    struct Held<S, Req, K, P> {
        #[pin]
        sleep: Sleep,
        inner: S,
        req: Option<Req>,
        deadline: Timestamp,
        released: bool,
        shared: Arc<Shared<K, P>>,
    }
}

impl<S, Req, K, P> ResponseFuture<S, Req, K, P>
where
    S: Service<Req>,
{
    pub(crate) fn called(future: S::Future, key: Option<KeySource>, learn: Learn<P>) -> Self {
        Self { state: State::Called { future }, key, learn }
    }

    pub(crate) fn rejected(error: HostPaused, learn: Learn<P>) -> Self {
        Self { state: State::Rejected { error: Some(error) }, key: None, learn }
    }

    pub(crate) fn held(
        inner: S,
        req: Req,
        key: Option<KeySource>,
        (release, deadline): (Timestamp, Timestamp),
        shared: Arc<Shared<K, P>>,
    ) -> Self
    where
        P: Clone,
    {
        let clock = shared.learn.clock;
        let learn = shared.learn.clone();
        let held = Held {
            sleep: clock.sleep_until(clock.instant_at(release)),
            inner,
            req: Some(req),
            deadline,
            released: false,
            shared,
        };
        Self { state: State::Held { held: Box::pin(held) }, key, learn }
    }
}

impl<S, Req, K, P> Future for ResponseFuture<S, Req, K, P>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    P: Pushback<S::Response>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let learn = &*this.learn;
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    if let (Ok(response), Some(key)) = (&result, this.key.as_ref())
                        && let Some(wait) = learn.pushback.pushback(response, &learn.clock)
                    {
                        learn.record(key, wait);
                    }
                    return Poll::Ready(result);
                }
                StateProj::Rejected { error } => {
                    let error = error.take().map_or_else(
                        || BoxError::from("rate-limit future polled after completion"),
                        BoxError::from,
                    );
                    return Poll::Ready(Err(error));
                }
                StateProj::Held { held } => {
                    let mut h = held.as_mut().project();
                    if !*h.released {
                        ready!(h.sleep.as_mut().poll(cx));
                        let Some(key) = this.key.as_ref() else {
                            *h.released = true;
                            continue;
                        };
                        // The pause may have been extended while this request waited.
                        match h.shared.admit(key, Some(*h.deadline)) {
                            Admission::Send => *h.released = true,
                            Admission::Hold { release, .. } => {
                                let at = learn.clock.instant_at(release);
                                h.sleep.as_mut().reset(at);
                                continue;
                            }
                            Admission::Reject(paused) => {
                                this.state.set(State::Rejected { error: Some(paused) });
                                continue;
                            }
                        }
                    }
                    ready!(h.inner.poll_ready(cx)).map_err(Into::into)?;
                    let Some(req) = h.req.take() else {
                        return Poll::Ready(
                            Err("rate-limit future polled after completion".into()),
                        );
                    };
                    let future = h.inner.call(req);
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S, Req, K, P> std::fmt::Debug for ResponseFuture<S, Req, K, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("key", &self.key).finish_non_exhaustive()
    }
}
