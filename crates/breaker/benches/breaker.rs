//! Added cost per call of the breaker in the closed state, one thread and two.
//!
//! `cargo bench -p unattended-breaker`. On one thread requests are built outside the timed loop;
//! on two, inside it for every case. The inner service answers at once, and futures are polled
//! by hand with a no-op waker.

use std::future::{Ready, ready};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_breaker::{BreakerConfig, CircuitBreakerLayer, FailurePolicy};
use unattended_testkit::drive::{call_once, two_threads};

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items").body(Bytes::new()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed");
    let consecutive = || {
        CircuitBreakerLayer::new(BreakerConfig::standard().policy(FailurePolicy::consecutive(5)))
            .unwrap()
    };
    let count = || {
        CircuitBreakerLayer::new(
            BreakerConfig::standard().policy(FailurePolicy::count_window(100, 0.5)),
        )
        .unwrap()
    };

    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(request, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let mut svc = consecutive().layer(service_fn(ok));
    group.bench_function("breaker, consecutive failures", |b| {
        b.iter_batched(request, |req| call_once(&mut svc, req), BatchSize::SmallInput)
    });
    let mut svc = count().layer(service_fn(ok));
    group.bench_function("breaker, count window (100)", |b| {
        b.iter_batched(request, |req| call_once(&mut svc, req), BatchSize::SmallInput)
    });
    let mut svc = CircuitBreakerLayer::standard().layer(service_fn(ok));
    group.bench_function("breaker, standard (time window 60 s)", |b| {
        b.iter_batched(request, |req| call_once(&mut svc, req), BatchSize::SmallInput)
    });

    let bare = service_fn(ok);
    group.bench_function("2 threads: bare service_fn", |b| {
        b.iter_custom(|n| two_threads(&bare, n, request))
    });
    let svc = consecutive().layer(service_fn(ok));
    group.bench_function("2 threads: breaker, consecutive failures", |b| {
        b.iter_custom(|n| two_threads(&svc, n, request))
    });
    let svc = count().layer(service_fn(ok));
    group.bench_function("2 threads: breaker, count window (100)", |b| {
        b.iter_custom(|n| two_threads(&svc, n, request))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
