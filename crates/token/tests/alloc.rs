//! Heap allocations per call with a cached valid token, counted with dhat's testing mode.

use std::future::{Ready, ready};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service, service_fn};
use unattended_core::Clock;
use unattended_testkit::drive::call_once;
use unattended_token::{Placement, StaticToken, TokenCache, TokenLayer};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://a.example/").header("accept", "*/*").body(Bytes::new()).unwrap()
}

fn allocations_per_call<S: Service<Request<Bytes>>>(svc: &mut S) -> f64 {
    const CALLS: u64 = 1000;
    call_once(svc, request()); // the first call makes the header value
    let reqs: Vec<_> = (0..CALLS).map(|_| request()).collect();
    let before = dhat::HeapStats::get().total_blocks;
    for r in reqs {
        call_once(svc, r);
    }
    (dhat::HeapStats::get().total_blocks - before) as f64 / CALLS as f64
}

#[test]
fn a_cached_token_costs_no_allocation() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let cache = Arc::new(TokenCache::new(StaticToken::new("key"), Clock::system()));
    let mut bearer = TokenLayer::new(cache.clone()).replay_refused(false).layer(service_fn(ok));
    assert_eq!(allocations_per_call(&mut bearer), 0.0, "bearer header");
    let api_key = Placement::header("api-key".parse().unwrap());
    let mut header = TokenLayer::new(cache.clone())
        .replay_refused(false)
        .placement(api_key)
        .layer(service_fn(ok));
    assert_eq!(allocations_per_call(&mut header), 0.0, "api-key header");
    // Keeping its own copy for a replay costs the copy (header map tables, shared value buffer)
    // and the box holding it with a clone of the inner service.
    let mut own_copy = TokenLayer::new(cache).layer(service_fn(ok));
    let blocks = allocations_per_call(&mut own_copy);
    assert!(blocks <= 4.0, "own replay copy: {blocks} blocks per call");
}
