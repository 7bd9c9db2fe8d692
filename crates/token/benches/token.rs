//! Added cost per call of the token layer with a cached, valid token, one thread and two; and
//! of a bare `TokenCache::get`.
//!
//! `cargo bench -p unattended-token`. Requests are built outside the timed loop on one thread,
//! inside it on two (for both cases). Futures are polled by hand with a no-op waker.

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_core::Clock;
use unattended_testkit::drive::{call_once, two_threads};
use unattended_token::{StaticToken, TokenCache, TokenLayer};

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn request() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items")
        .header("accept", "application/json")
        .body(Bytes::new())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let cache = Arc::new(TokenCache::new(StaticToken::new("api-key"), Clock::system()));
    let mut cx = Context::from_waker(Waker::noop());
    let get = |cx: &mut Context<'_>| match pin!(cache.get()).poll(cx) {
        Poll::Ready(Ok(token)) => token,
        _ => panic!("a cached token is ready at once"),
    };
    get(&mut cx); // fill the cache
    c.bench_function("TokenCache::get, cached valid token", |b| b.iter(|| get(&mut cx)));

    let mut group = c.benchmark_group("happy_path");
    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(request, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let mut in_stack = TokenLayer::new(cache.clone()).replay_refused(false).layer(service_fn(ok));
    group.bench_function("token layer, replays left to retry", |b| {
        b.iter_batched(request, |req| call_once(&mut in_stack, req), BatchSize::SmallInput)
    });
    let mut alone = TokenLayer::new(cache.clone()).layer(service_fn(ok));
    group.bench_function("token layer, own replay copy", |b| {
        b.iter_batched(request, |req| call_once(&mut alone, req), BatchSize::SmallInput)
    });

    let bare = service_fn(ok);
    group.bench_function("2 threads: bare service_fn", |b| {
        b.iter_custom(|n| two_threads(&bare, n, request))
    });
    let in_stack = TokenLayer::new(cache).replay_refused(false).layer(service_fn(ok));
    group.bench_function("2 threads: token layer, replays left to retry", |b| {
        b.iter_custom(|n| two_threads(&in_stack, n, request))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
