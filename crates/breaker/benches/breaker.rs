//! Added cost per call of the breaker in the closed state, one thread and two.
//!
//! `cargo bench -p unattended-breaker`. On one thread requests are built outside the timed loop;
//! on two, inside it for every case. The inner service answers at once, and futures are polled
//! by hand with a no-op waker.

use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, Service, service_fn};
use unattended_breaker::{BreakerConfig, CircuitBreakerLayer, FailurePolicy};
use unattended_core::Clock;

fn call_once<S: Service<R>, R>(svc: &mut S, req: R) -> S::Response {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))), "not ready");
    let mut fut = pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => panic!("the happy path must complete at once"),
    }
}

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items").body(Bytes::new()).unwrap()
}

fn two_threads<S>(svc: &S, iters: u64) -> Duration
where
    S: Service<Request<Bytes>> + Clone + Send,
{
    let clock = Clock::system();
    let start = clock.now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let mut svc = svc.clone();
            scope.spawn(move || {
                for _ in 0..iters {
                    black_box(call_once(&mut svc, request()));
                }
            });
        }
    });
    clock.now() - start
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
    group
        .bench_function("2 threads: bare service_fn", |b| b.iter_custom(|n| two_threads(&bare, n)));
    let svc = consecutive().layer(service_fn(ok));
    group.bench_function("2 threads: breaker, consecutive failures", |b| {
        b.iter_custom(|n| two_threads(&svc, n))
    });
    let svc = count().layer(service_fn(ok));
    group.bench_function("2 threads: breaker, count window (100)", |b| {
        b.iter_custom(|n| two_threads(&svc, n))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
