//! The token layer's service, and what it does with a refused token.

use std::fmt;
use std::future::poll_fn;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower_service::Service;
use unattended_core::{BoxError, CredentialRenewed, ReplayBody, TokenError, copy_request};

use crate::cache::{Ticket, TokenCache};
use crate::future::ResponseFuture;
use crate::placement::Placement;
use crate::token::TokenSource;

/// What every clone of a [`TokenService`] shares.
pub(crate) struct Shared<S> {
    pub(crate) cache: Arc<TokenCache<S>>,
    pub(crate) placement: Placement,
    pub(crate) replay: bool,
}

/// What to do with a response.
pub(crate) enum Verdict<Res> {
    /// Give it to the caller.
    Done(Res),
    /// The token was refused and dropped: send the copy with a new one.
    Replay,
}

impl<S: TokenSource> Shared<S> {
    /// Reads a response to a request that carried the token of `ticket`.
    pub(crate) fn judge<B>(
        &self,
        ticket: Ticket,
        mut res: Response<B>,
    ) -> Result<Verdict<Response<B>>, BoxError> {
        if res.status() != StatusCode::UNAUTHORIZED {
            self.cache.accepted(ticket);
            return Ok(Verdict::Done(res));
        }
        if ticket.refusal_is_final() {
            return Err(refused_again().into());
        }
        self.cache.refused(ticket);
        if !self.replay {
            res.extensions_mut().insert(CredentialRenewed);
            return Ok(Verdict::Done(res));
        }
        Ok(Verdict::Replay)
    }

    /// The error for a refused request whose body could not be copied.
    pub(crate) fn not_replayed(&self) -> BoxError {
        TokenError::NotReplayed { retry_at: self.cache.clock().wall() }.into()
    }
}

fn refused_again() -> TokenError {
    tracing::error!("a newly fetched token was refused too: the credentials need a human");
    TokenError::Reauthorize { reason: "a newly fetched token was refused too (HTTP 401)".into() }
}

/// Adds a valid token to each request; see [`TokenLayer`](crate::TokenLayer).
pub struct TokenService<S, Inner> {
    inner: Inner,
    shared: Arc<Shared<S>>,
}

impl<S, Inner> TokenService<S, Inner> {
    pub(crate) fn new(inner: Inner, shared: Arc<Shared<S>>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &Inner {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> Inner {
        self.inner
    }
}

impl<S, Inner: Clone> Clone for TokenService<S, Inner> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

impl<S, Inner: fmt::Debug> fmt::Debug for TokenService<S, Inner> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("inner", &self.inner)
            .field("placement", &self.shared.placement)
            .field("replay", &self.shared.replay)
            .finish_non_exhaustive()
    }
}

impl<S, Inner, B, ResB> Service<Request<B>> for TokenService<S, Inner>
where
    S: TokenSource,
    Inner: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    Inner::Error: Into<BoxError>,
    Inner::Future: Send,
    B: ReplayBody + Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ResponseFuture<S, Inner, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let copy = if shared.replay { copy_request(&req) } else { None };
        let placement = &shared.placement;
        let applied = shared.cache.with_fresh(req, |cached, req| {
            placement.apply(cached, req).map(|req| (req, cached.ticket()))
        });
        match applied {
            Ok(Ok((req, ticket))) => {
                let future = self.inner.call(req);
                let replay = copy.map(|copy| Box::new((copy, self.inner.clone())));
                ResponseFuture::sent(future, ticket, self.shared.clone(), replay)
            }
            Ok(Err(error)) => ResponseFuture::failed(error.into()),
            Err(req) => {
                // A token must be fetched first: the readied service goes along with the request.
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(send(self.shared.clone(), inner, req, copy))
            }
        }
    }
}

/// Sends `req` with a valid token through the readied `inner`, and once more with `copy` if the
/// token is refused.
async fn send<S, Inner, B, ResB>(
    shared: Arc<Shared<S>>,
    mut inner: Inner,
    req: Request<B>,
    copy: Option<Request<B>>,
) -> Result<Response<ResB>, BoxError>
where
    S: TokenSource,
    Inner: Service<Request<B>, Response = Response<ResB>>,
    Inner::Error: Into<BoxError>,
{
    let (res, ticket) = send_once(&shared, &mut inner, req).await?;
    match (shared.judge(ticket, res)?, copy) {
        (Verdict::Done(res), _) => Ok(res),
        (Verdict::Replay, Some(copy)) => replay(&shared, inner, copy).await,
        (Verdict::Replay, None) => Err(shared.not_replayed()),
    }
}

/// Sends `req` through the readied `inner` with a valid token; gives the token's ticket back.
async fn send_once<S, Inner, B, ResB>(
    shared: &Shared<S>,
    inner: &mut Inner,
    req: Request<B>,
) -> Result<(Response<ResB>, Ticket), BoxError>
where
    S: TokenSource,
    Inner: Service<Request<B>, Response = Response<ResB>>,
    Inner::Error: Into<BoxError>,
{
    let cached = shared.cache.entry().await?;
    let ticket = cached.ticket();
    let req = shared.placement.apply(&cached, req)?;
    let res = inner.call(req).await.map_err(Into::into)?;
    Ok((res, ticket))
}

/// Sends the copy of a refused request with a new token; a second refusal is final.
pub(crate) async fn replay<S, Inner, B, ResB>(
    shared: &Shared<S>,
    mut inner: Inner,
    copy: Request<B>,
) -> Result<Response<ResB>, BoxError>
where
    S: TokenSource,
    Inner: Service<Request<B>, Response = Response<ResB>>,
    Inner::Error: Into<BoxError>,
{
    poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
    let (res, ticket) = send_once(shared, &mut inner, copy).await?;
    if res.status() == StatusCode::UNAUTHORIZED {
        return Err(refused_again().into());
    }
    shared.cache.accepted(ticket);
    Ok(res)
}
