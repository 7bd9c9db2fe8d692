//! Heap allocations per call in the closed state, counted with dhat's testing mode.

use std::future::{Ready, ready};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_breaker::CircuitBreakerLayer;
use unattended_testkit::drive::call_once;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

#[test]
fn the_closed_path_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    const CALLS: u64 = 1000;
    let requests = || -> Vec<_> {
        (0..CALLS)
            .map(|_| Request::get("https://api.example.com/v1").body(Bytes::new()).unwrap())
            .collect()
    };
    let mut svc = CircuitBreakerLayer::standard().layer(service_fn(ok));
    call_once(&mut svc, requests().pop().unwrap()); // the first call makes the service's breaker
    let reqs = requests();
    let before = dhat::HeapStats::get().total_blocks;
    for req in reqs {
        call_once(&mut svc, req);
    }
    assert_eq!(dhat::HeapStats::get().total_blocks - before, 0);
}
