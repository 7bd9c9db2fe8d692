//! The cost of getting a cached, valid token: a clock read, an atomic load, a reference count.
//!
//! `cargo bench -p unattended-token`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use unattended_core::Clock;
use unattended_token::{StaticToken, TokenCache};

fn bench(c: &mut Criterion) {
    let cache = TokenCache::new(StaticToken::new("api-key"), Clock::system());
    let mut cx = Context::from_waker(Waker::noop());
    let get = |cx: &mut Context<'_>| match pin!(cache.get()).poll(cx) {
        Poll::Ready(Ok(token)) => token,
        _ => panic!("a cached token is ready at once"),
    };
    get(&mut cx); // fill the cache
    c.bench_function("TokenCache::get, cached valid token", |b| b.iter(|| get(&mut cx)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
