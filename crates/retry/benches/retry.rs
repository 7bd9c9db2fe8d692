//! Added cost per call of the retry layer on the happy path.
//!
//! `cargo bench -p unattended-retry`. Each case calls a service whose future is ready at once,
//! polled by hand with a no-op waker inside a tokio runtime (for the timer the attempt timeout
//! needs), so the figures are the layer's own overhead.

#[path = "../tests/support/happy.rs"]
mod happy;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::{Layer, service_fn};
use unattended_retry::{CloneReplay, RetryConfig, RetryLayer};

use happy::{AlwaysOk, echo, ok_response};
use unattended_testkit::drive::call_once;

fn http_request() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items?page=2")
        .header("accept", "application/json")
        .header("user-agent", "unattended/0.1")
        .body(Bytes::from_static(b""))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("happy_path");

    // The floor under any layer that reads the time once per call.
    let clock = unattended_core::Clock::system();
    group.bench_function("clock.now()", |b| b.iter(|| black_box(clock.now())));

    let mut bare = service_fn(echo);
    group.bench_function("bare service_fn", |b| b.iter(|| call_once(&mut bare, black_box(7))));

    let generic = |config: RetryConfig| {
        RetryLayer::new(config).unwrap().classifier(AlwaysOk).replay(CloneReplay::new())
    };
    let mut no_timeout =
        generic(RetryConfig::standard().attempt_timeout(None)).layer(service_fn(echo));
    group.bench_function("retry, budget, no attempt timeout", |b| {
        b.iter(|| call_once(&mut no_timeout, black_box(7)))
    });
    let mut standard = generic(RetryConfig::standard()).layer(service_fn(echo));
    group.bench_function("retry, standard preset (budget + attempt timeout)", |b| {
        b.iter(|| call_once(&mut standard, black_box(7)))
    });

    let mut bare_http = service_fn(ok_response);
    group.bench_function("http: bare service_fn", |b| {
        b.iter(|| call_once(&mut bare_http, http_request()))
    });
    let mut http = RetryLayer::new(RetryConfig::standard().attempt_timeout(None))
        .unwrap()
        .layer(service_fn(ok_response));
    group.bench_function("http: retry, budget, no attempt timeout", |b| {
        b.iter(|| call_once(&mut http, http_request()))
    });
    let mut http_standard = RetryLayer::standard().layer(service_fn(ok_response));
    group.bench_function("http: retry, standard preset", |b| {
        b.iter(|| call_once(&mut http_standard, http_request()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
