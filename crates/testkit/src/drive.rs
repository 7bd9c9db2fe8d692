//! Driving a service by hand.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower_service::Service;
use unattended_core::Clock;

/// Readies `svc`, calls it with `req` and polls the response once, with a no-op waker.
///
/// # Panics
///
/// If the service is not ready at once, or the response is not ready at the first poll: this
/// drives happy paths only.
pub fn call_once<S: Service<R>, R>(svc: &mut S, req: R) -> S::Response {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))), "the service is not ready");
    let mut fut = pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => panic!("the happy path must complete at the first poll"),
    }
}

/// Runs `iters` calls on each of two threads at once, each thread with its own clone of `svc`
/// and building its requests with `request` as it goes; returns the elapsed time.
pub fn two_threads<S, R>(svc: &S, iters: u64, request: fn() -> R) -> Duration
where
    S: Service<R> + Clone + Send,
{
    let clock = Clock::system();
    let start = clock.now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let mut svc = svc.clone();
            scope.spawn(move || {
                for _ in 0..iters {
                    std::hint::black_box(call_once(&mut svc, request()));
                }
            });
        }
    });
    clock.now() - start
}

/// Heap blocks allocated per call on the happy path: one warm-up call, then 1,000 calls with
/// requests built beforehand (so only the service's allocations count).
///
/// # Panics
///
/// Unless the test binary's global allocator is `dhat::Alloc` and a dhat profiler is running
/// (`dhat::Profiler::builder().testing().build()`); and as [`call_once`].
pub fn blocks_per_call<S: Service<R>, R>(svc: &mut S, mut request: impl FnMut() -> R) -> f64 {
    const CALLS: u64 = 1000;
    call_once(svc, request());
    let requests: Vec<R> = (0..CALLS).map(|_| request()).collect();
    let before = dhat::HeapStats::get().total_blocks;
    for req in requests {
        call_once(svc, req);
    }
    (dhat::HeapStats::get().total_blocks - before) as f64 / CALLS as f64
}
