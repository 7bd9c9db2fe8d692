//! The gate's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use unattended_core::BoxError;

use crate::error::OutsideWindow;

pin_project! {
    /// The future of [`Gate`](crate::Gate).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, Held<S, Req>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, H> {
        Called { #[pin] future: F },
        // Waiting for the window to open (boxed: only held requests pay for it).
        Held { held: Pin<Box<H>> },
        Rejected { error: Option<OutsideWindow> },
    }
}

pin_project! {
    struct Held<S, Req> {
        #[pin]
        sleep: Sleep,
        inner: S,
        req: Option<Req>,
        opened: bool,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn called(future: S::Future) -> Self {
        Self { state: State::Called { future } }
    }

    pub(crate) fn rejected(error: OutsideWindow) -> Self {
        Self { state: State::Rejected { error: Some(error) } }
    }

    pub(crate) fn held(inner: S, req: Req, sleep: Sleep) -> Self {
        let held = Held { sleep, inner, req: Some(req), opened: false };
        Self { state: State::Held { held: Box::pin(held) } }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Rejected { error } => {
                    return Poll::Ready(Err(error.take().map_or_else(
                        || BoxError::from("gate future polled after completion"),
                        BoxError::from,
                    )));
                }
                StateProj::Held { held } => {
                    let h = held.as_mut().project();
                    if !*h.opened {
                        ready!(h.sleep.poll(cx));
                        *h.opened = true;
                    }
                    ready!(h.inner.poll_ready(cx)).map_err(Into::into)?;
                    let Some(req) = h.req.take() else {
                        return Poll::Ready(Err("gate future polled after completion".into()));
                    };
                    let future = h.inner.call(req);
                    this.state.set(State::Called { future });
                }
            }
        }
    }
}

impl<S: Service<Req>, Req> std::fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
