//! Heap allocations per call with a cached valid token, counted with dhat's testing mode.

use std::future::{Ready, ready};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_core::Clock;
use unattended_testkit::drive::blocks_per_call;
use unattended_token::{Placement, StaticToken, TokenCache, TokenLayer};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://a.example/").header("accept", "*/*").body(Bytes::new()).unwrap()
}

#[test]
fn a_cached_token_costs_no_allocation() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let cache = Arc::new(TokenCache::new(StaticToken::new("key"), Clock::system()));
    let mut bearer = TokenLayer::new(cache.clone()).replay_refused(false).layer(service_fn(ok));
    assert_eq!(blocks_per_call(&mut bearer, request), 0.0, "bearer header");
    let api_key = Placement::header("api-key".parse().unwrap());
    let mut header = TokenLayer::new(cache.clone())
        .replay_refused(false)
        .placement(api_key)
        .layer(service_fn(ok));
    assert_eq!(blocks_per_call(&mut header, request), 0.0, "api-key header");
    // Keeping its own copy for a replay costs the copy (header map tables, shared value buffer)
    // and the box holding it with a clone of the inner service.
    let mut own_copy = TokenLayer::new(cache).layer(service_fn(ok));
    let blocks = blocks_per_call(&mut own_copy, request);
    assert!(blocks <= 4.0, "own replay copy: {blocks} blocks per call");
}
