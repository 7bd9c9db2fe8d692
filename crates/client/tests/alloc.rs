//! Heap allocations per call of the five layers around a no-op transport, counted with dhat.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, service_fn};
use unattended_breaker::CircuitBreakerLayer;
use unattended_core::Clock;
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_ratelimit::RateLimitLayer;
use unattended_retry::{RetryConfig, RetryLayer};
use unattended_testkit::drive::blocks_per_call;
use unattended_token::{StaticToken, TokenCache, TokenLayer};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn ok(_: Request<Full<Bytes>>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1")
        .header("accept", "*/*")
        .body(Full::default())
        .unwrap()
}

#[test]
fn the_five_layers_allocate_only_the_retry_copy() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();
    let clock = Clock::system();
    let mut retry_only = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard().attempt_timeout(None)).unwrap())
        .service(service_fn(ok));
    let copy = blocks_per_call(&mut retry_only, request);
    let cache = Arc::new(TokenCache::new(StaticToken::new("token"), clock));
    let mut five = ServiceBuilder::new()
        .layer(GateLayer::new().class("write", WindowCalendar::always(), WhenClosed::Reject))
        .layer(RetryLayer::new(RetryConfig::standard().attempt_timeout(None)).unwrap())
        .layer(RateLimitLayer::new())
        .layer(CircuitBreakerLayer::standard())
        .layer(TokenLayer::new(cache).replay_refused(false))
        .service(service_fn(ok));
    let all = blocks_per_call(&mut five, request);
    assert!(all <= copy, "five layers: {all} blocks per call; the retry copy alone: {copy}");
}
