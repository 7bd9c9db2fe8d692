//! Added cost per call of the rate-limit layer on the happy path (no pause), one thread and two.
//!
//! `cargo bench -p unattended-ratelimit`. On one thread requests are built outside the timed
//! loop; on two, inside it for both cases. The inner service answers at once, and futures are
//! polled by hand with a no-op waker.

use std::future::{Ready, ready};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_core::{Clock, ServiceKey};
use unattended_ratelimit::RateLimitLayer;
use unattended_testkit::drive::{call_once, two_threads};

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items").body(Bytes::new()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_path");
    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(request, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let mut limited = RateLimitLayer::new().layer(service_fn(ok));
    group.bench_function("ratelimit, nothing paused", |b| {
        b.iter_batched(request, |req| call_once(&mut limited, req), BatchSize::SmallInput)
    });
    let layer = RateLimitLayer::new();
    let wall = Clock::system().wall();
    let later = unattended_core::clock::add_saturating(wall, Duration::from_secs(3600));
    layer.registry().pause(ServiceKey::new("https://other.example:443"), later, wall);
    let mut other_paused = layer.layer(service_fn(ok));
    group.bench_function("ratelimit, another host paused", |b| {
        b.iter_batched(request, |req| call_once(&mut other_paused, req), BatchSize::SmallInput)
    });

    let bare = service_fn(ok);
    group.bench_function("2 threads: bare service_fn", |b| {
        b.iter_custom(|n| two_threads(&bare, n, request))
    });
    let limited = RateLimitLayer::new().layer(service_fn(ok));
    group.bench_function("2 threads: ratelimit, nothing paused", |b| {
        b.iter_custom(|n| two_threads(&limited, n, request))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
