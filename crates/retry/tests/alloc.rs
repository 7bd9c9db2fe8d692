//! Heap allocations per call on the happy path, counted with dhat's testing mode.

#[path = "support/happy.rs"]
mod happy;

use bytes::Bytes;
use http::Request;
use tower::{Layer, service_fn};
use unattended_retry::{CloneReplay, RetryConfig, RetryLayer};

use happy::{AlwaysOk, echo, ok_response};
use unattended_testkit::drive::blocks_per_call;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn the_happy_path_allocates_nothing_but_the_request_copy() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();

    let layer =
        |config| RetryLayer::new(config).unwrap().classifier(AlwaysOk).replay(CloneReplay::new());
    let mut svc = layer(RetryConfig::standard()).layer(service_fn(echo));
    assert_eq!(blocks_per_call(&mut svc, || 7u64), 0.0, "standard preset");
    let mut svc = layer(RetryConfig::standard().attempt_timeout(None)).layer(service_fn(echo));
    assert_eq!(blocks_per_call(&mut svc, || 7u64), 0.0, "no attempt timeout");

    // An HTTP request is copied before it is sent, so that it can be sent again. Copying its
    // header map costs the map's index and entry tables and a shared buffer for a header value
    // built from a `&str`: three blocks here. A request without headers costs none.
    let bare = blocks_per_call(&mut service_fn(ok_response), || {
        Request::get("https://a.example/").header("accept", "*/*").body(Bytes::new()).unwrap()
    });
    let mut svc = RetryLayer::standard().layer(service_fn(ok_response));
    let with_retry = blocks_per_call(&mut svc, || {
        Request::get("https://a.example/").header("accept", "*/*").body(Bytes::new()).unwrap()
    });
    assert!(with_retry - bare <= 3.0, "http: {bare} without the layer, {with_retry} with it");
    let mut svc = RetryLayer::standard().layer(service_fn(ok_response));
    let headerless = blocks_per_call(&mut svc, || {
        Request::get("https://a.example/").body(Bytes::new()).unwrap()
    });
    assert_eq!(headerless, 0.0, "http without headers");
}
