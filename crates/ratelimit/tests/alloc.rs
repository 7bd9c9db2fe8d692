//! Heap allocations per call on the happy path, counted with dhat's testing mode.

use std::future::{Ready, ready};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_ratelimit::RateLimitLayer;
use unattended_testkit::drive::call_once;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::builder().header("content-type", "application/json").body(()).unwrap()))
}

#[test]
fn the_happy_path_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    const CALLS: u64 = 1000;
    let measure = |svc: &mut dyn FnMut(Request<Bytes>)| {
        let reqs: Vec<_> = (0..CALLS)
            .map(|_| {
                Request::get("https://api.example.com/v1")
                    .header("accept", "*/*")
                    .body(Bytes::new())
                    .unwrap()
            })
            .collect();
        let before = dhat::HeapStats::get().total_blocks;
        reqs.into_iter().for_each(svc);
        (dhat::HeapStats::get().total_blocks - before) / CALLS
    };
    let mut bare = service_fn(ok);
    let bare = measure(&mut |req| drop(call_once(&mut bare, req)));
    let mut limited = RateLimitLayer::new().layer(service_fn(ok));
    let limited = measure(&mut |req| drop(call_once(&mut limited, req)));
    assert_eq!(limited, bare, "the layer allocates per call");
}
