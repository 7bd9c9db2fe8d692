//! The rate-limit layer's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use unattended_core::{BoxError, HostPaused, KeySource};

use crate::policy::{Admission, Paced, Place, Waiting};
use crate::pushback::Pushback;
use crate::service::Shared;

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit).
    pub struct ResponseFuture<S, Req, K, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, Held<S, Req>>,
        key: Option<KeySource>,
        // Set when the pace let the request through: its answer is reported to the pace.
        paced: Option<Paced>,
        shared: Arc<Shared<K, P>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, H> {
        // The request was sent; the response will be read for pushback.
        Called { #[pin] future: F },
        // The host is paused or paced: wait, check again, ready a clone of the service, send.
        Held { held: Pin<Box<H>> },
        // The pause (or the slot) is further away than the request may wait.
        Rejected { error: Option<HostPaused> },
    }
}

pin_project! {
    /// A request waiting for its host (boxed: only waiting requests pay for it).
    struct Held<S, Req> {
        #[pin]
        sleep: Sleep,
        inner: S,
        req: Option<Req>,
        // `None` once released.
        place: Option<Place>,
    }
}

impl<S, Req, K, P> ResponseFuture<S, Req, K, P>
where
    S: Service<Req>,
{
    pub(crate) fn called(
        future: S::Future,
        key: Option<KeySource>,
        paced: Option<Paced>,
        shared: Arc<Shared<K, P>>,
    ) -> Self {
        Self { state: State::Called { future }, key, paced, shared }
    }

    pub(crate) fn rejected(error: HostPaused, shared: Arc<Shared<K, P>>) -> Self {
        Self { state: State::Rejected { error: Some(error) }, key: None, paced: None, shared }
    }

    pub(crate) fn held(
        inner: S,
        req: Req,
        key: Option<KeySource>,
        waiting: Waiting,
        shared: Arc<Shared<K, P>>,
    ) -> Self {
        let clock = shared.policy.clock;
        let held = Held {
            sleep: clock.sleep_until(waiting.release),
            inner,
            req: Some(req),
            place: Some(waiting.place),
        };
        Self { state: State::Held { held: Box::pin(held) }, key, paced: None, shared }
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
        let policy = &this.shared.policy;
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    if let (Ok(response), Some(key)) = (&result, this.key.as_ref()) {
                        let clock = &policy.clock;
                        let feedback = policy.pushback.feedback(response, clock);
                        let quota = || policy.pushback.quota_rate(response, clock);
                        policy.learn(key, this.paced.as_ref(), feedback, &quota);
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
                    if let Some(place) = h.place.take() {
                        if h.sleep.as_mut().poll(cx).is_pending() {
                            *h.place = Some(place);
                            return Poll::Pending;
                        }
                        let Some(key) = this.key.as_ref() else {
                            continue;
                        };
                        // The pause may have grown, or the rate changed, while it waited.
                        match policy.readmit(key, place) {
                            Admission::Send(paced) => *this.paced = paced,
                            Admission::Hold(waiting) => {
                                h.sleep.as_mut().reset(waiting.release);
                                *h.place = Some(waiting.place);
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
