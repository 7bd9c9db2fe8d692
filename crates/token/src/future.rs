//! The token layer's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;
use unattended_core::BoxError;

use crate::cache::Ticket;
use crate::service::{Shared, Verdict, replay};
use crate::token::TokenSource;

type Boxed<Res> = Pin<Box<dyn Future<Output = Result<Res, BoxError>> + Send>>;

pin_project! {
    /// The future of [`TokenService`](crate::TokenService).
    pub struct ResponseFuture<S, Inner, B>
    where
        Inner: Service<Request<B>>,
    {
        #[pin]
        state: State<S, Inner, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Inner, B>
    where
        Inner: Service<Request<B>>,
    {
        // Sent with a cached token; a refusal may still need the copy and a clone of the service.
        Sent {
            #[pin]
            future: Inner::Future,
            ticket: Ticket,
            shared: Arc<Shared<S>>,
            replay: Option<Box<(Request<B>, Inner)>>,
        },
        // Waiting for a token, or sending again with a new one (boxed: only these pay for it).
        Boxed { future: Boxed<Inner::Response> },
        Failed { error: Option<BoxError> },
    }
}

impl<S, Inner, B> ResponseFuture<S, Inner, B>
where
    Inner: Service<Request<B>>,
{
    pub(crate) fn sent(
        future: Inner::Future,
        ticket: Ticket,
        shared: Arc<Shared<S>>,
        replay: Option<Box<(Request<B>, Inner)>>,
    ) -> Self {
        Self { state: State::Sent { future, ticket, shared, replay } }
    }

    pub(crate) fn boxed(
        future: impl Future<Output = Result<Inner::Response, BoxError>> + Send + 'static,
    ) -> Self {
        Self { state: State::Boxed { future: Box::pin(future) } }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        Self { state: State::Failed { error: Some(error) } }
    }
}

impl<S, Inner, B, ResB> Future for ResponseFuture<S, Inner, B>
where
    S: TokenSource,
    Inner: Service<Request<B>, Response = Response<ResB>> + Send + 'static,
    Inner::Error: Into<BoxError>,
    Inner::Future: Send,
    B: Send + 'static,
    ResB: Send + 'static,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Sent { future, ticket, shared, replay: copy } => {
                    let res = ready!(future.poll(cx)).map_err(Into::into)?;
                    match shared.judge(*ticket, res)? {
                        Verdict::Done(res) => return Poll::Ready(Ok(res)),
                        Verdict::Replay => match copy.take().map(|boxed| *boxed) {
                            Some((copy, inner)) => {
                                let shared = shared.clone();
                                let again = async move { replay(&shared, inner, copy).await };
                                State::Boxed { future: Box::pin(again) }
                            }
                            None => return Poll::Ready(Err(shared.not_replayed())),
                        },
                    }
                }
                StateProj::Boxed { future } => return future.as_mut().poll(cx),
                StateProj::Failed { error } => {
                    let error = error.take().unwrap_or_else(|| "polled after completion".into());
                    return Poll::Ready(Err(error));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}
