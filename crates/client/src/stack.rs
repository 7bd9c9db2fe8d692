//! The layers in the design's order, around any transport.

use std::cell::RefCell;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::header::USER_AGENT;
use http::{HeaderValue, Request, Response};
use http_body::Body as HttpBody;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::decompression::DecompressionLayer;
use tower_http::follow_redirect::FollowRedirectLayer;
use tower_http::follow_redirect::policy::{FilterCredentials, Limited, PolicyExt, clone_body_fn};
use tower_http::set_header::SetRequestHeaderLayer;
use tower_http::trace::TraceLayer;
use unattended_breaker::CircuitBreakerLayer;
use unattended_core::{BoxError, Clock, ClockedClassifier};
use unattended_gate::GateLayer;
use unattended_ratelimit::RateLimitLayer;
use unattended_retry::RetryLayer;
use unattended_token::{TokenLayer, TokenSource};

use crate::redact::RequestSpan;

/// The request body the client sends: buffered, so a request can be sent again.
pub type RequestBody = Full<Bytes>;

/// The response body the client gives back.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The assembled stack, its type erased.
pub(crate) type Stack = BoxCloneSyncService<Request<RequestBody>, Response<Body>, BoxError>;

/// Any token source, so that clients of any source have one type.
pub struct AnySource(Box<dyn TokenSource>);

impl AnySource {
    /// Wraps `source`.
    pub fn new(source: impl TokenSource) -> Self {
        Self(Box::new(source))
    }
}

impl TokenSource for AnySource {
    fn fetch(&self) -> unattended_token::FetchFuture<'_> {
        self.0.fetch()
    }
}

impl std::fmt::Debug for AnySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnySource")
    }
}

/// The configured layers, ready to wrap a transport.
#[derive(Clone, Debug)]
pub(crate) struct Layers {
    pub(crate) clock: Clock,
    pub(crate) gate: GateLayer,
    pub(crate) retry: RetryLayer,
    pub(crate) ratelimit: RateLimitLayer,
    pub(crate) breaker: Option<CircuitBreakerLayer>,
    pub(crate) token: Option<TokenLayer<AnySource>>,
    pub(crate) attempt_timeout: Duration,
    pub(crate) user_agent: HeaderValue,
    pub(crate) max_redirects: usize,
    pub(crate) max_response_bytes: usize,
}

impl Layers {
    /// Trace → Gate → Retry → RateLimit → CircuitBreaker → Token → attempt Timeout →
    /// FollowRedirect → Decompression → User-Agent → `transport`.
    pub(crate) fn wrap<T, B>(&self, transport: T) -> Stack
    where
        T: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let redirects = Limited::new(self.max_redirects)
            .and::<_, RequestBody, BoxError>(FilterCredentials::new())
            .and::<_, RequestBody, BoxError>(clone_body_fn(|body: &RequestBody| {
                Some(body.clone())
            }));
        let max_body = self.max_response_bytes;
        let service = ServiceBuilder::new()
            // Every body is bounded after decompression, however it is read (against bombs).
            .map_response(move |res: Response<_>| res.map(|body| box_body(body, max_body)))
            .layer(TraceLayer::new(ClockedClassifier::new(self.clock)).make_span_with(RequestSpan))
            .layer(self.gate.clone())
            .layer(self.retry.clone())
            .layer(self.ratelimit.clone())
            .option_layer(self.breaker.clone())
            .option_layer(self.token.clone())
            .layer(tower::timeout::TimeoutLayer::new(self.attempt_timeout))
            .layer(FollowRedirectLayer::with_policy(redirects))
            .layer(DecompressionLayer::new())
            .layer(SetRequestHeaderLayer::if_not_present(USER_AGENT, self.user_agent.clone()))
            .service(transport);
        BoxCloneSyncService::new(service)
    }
}

fn box_body<B>(body: B, limit: usize) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    http_body_util::Limited::new(body, limit).boxed_unsync()
}

/// The future of one call through the stack.
pub(crate) type StackFuture = <Stack as Service<Request<RequestBody>>>::Future;

/// The client's stack, and one readied clone of it per thread that sends.
///
/// A tower service is called through `&mut self`, so a client shared by many tasks needs a
/// service of its own for each call. Cloning the whole stack per call costs an allocation and
/// a reference count per layer; instead each thread keeps its clone and calls it while no other
/// call on that thread is using it (calls are made synchronously, so that is always, unless a
/// layer calls back into the same client). Every clone shares the layers' state (breakers,
/// pauses, budget, token cache), so which clone serves a call changes nothing but its cost. A
/// clone that is not ready at once is left alone and the call goes through a fresh clone.
pub(crate) struct ThreadStacks {
    stack: Stack,
    local: thread_local::ThreadLocal<RefCell<Stack>>,
}

impl ThreadStacks {
    pub(crate) fn new(stack: Stack) -> Self {
        Self { stack, local: thread_local::ThreadLocal::new() }
    }

    /// Calls a readied stack with `req`.
    pub(crate) fn call(&self, req: Request<RequestBody>) -> StackFuture {
        let cell = self.local.get_or(|| RefCell::new(self.stack.clone()));
        if let Ok(mut stack) = cell.try_borrow_mut() {
            let mut cx = Context::from_waker(Waker::noop());
            match stack.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => return stack.call(req),
                Poll::Ready(Err(error)) => {
                    // A service that failed its readiness may not be used again.
                    *stack = self.stack.clone();
                    return Box::pin(std::future::ready(Err(error)));
                }
                Poll::Pending => {}
            }
        }
        Box::pin(self.stack.clone().oneshot(req))
    }
}

impl std::fmt::Debug for ThreadStacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadStacks").finish_non_exhaustive()
    }
}

/// The default transport behind one `Arc`, so a clone is one reference count.
///
/// hyper-util's client holds several shared parts (pool, connector, TLS settings), and a call
/// clones the stack's services more than once (the retry layer and the redirect layer each keep
/// one for the next request). Its `request` takes `&self`, so nothing is lost by sharing it.
#[derive(Clone, Debug)]
pub(crate) struct SharedTransport(pub(crate) Arc<crate::HttpsTransport>);

impl Service<Request<RequestBody>> for SharedTransport {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // hyper-util's client is always ready: its pool waits inside the response future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        self.0.request(req)
    }
}

/// Shares one token cache between the layer and the client's handle.
pub type SharedCache = Arc<unattended_token::TokenCache<AnySource>>;
