//! Retry outside RateLimit, as in the assembled client: they agree on what a pause means.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use jiff::Timestamp;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use unattended::retry::GiveUpReason;
use unattended::{
    BoxError, Clock, Disposition, GaveUp, HasDisposition, RateLimitLayer, RetryConfig, RetryLayer,
    TokenCache, TokenLayer,
};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn get() -> Request<Bytes> {
    Request::get("https://api.example.com/v1/items").body(Bytes::new()).unwrap()
}

/// A server answering from a script of (status, Retry-After), then 200; counts requests.
fn server(
    script: Vec<(u16, &'static str)>,
) -> (
    impl tower::Service<
        Request<Bytes>,
        Response = Response<()>,
        Error = BoxError,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static,
    Arc<AtomicUsize>,
) {
    let script = Arc::new(Mutex::new(script.into_iter()));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let svc = service_fn(move |_req: Request<Bytes>| {
        seen.fetch_add(1, Ordering::SeqCst);
        let (status, retry_after) = script.lock().unwrap().next().unwrap_or((200, ""));
        let mut res = Response::builder().status(status);
        if !retry_after.is_empty() {
            res = res.header("retry-after", retry_after);
        }
        let res = res.body(()).map_err(BoxError::from);
        async move { res }
    });
    (svc, count)
}

#[tokio::test(start_paused = true)]
async fn a_long_pause_ends_every_caller_at_once_with_the_servers_time() {
    let clock = Clock::starting_at(t0());
    let (svc, requests) = server(vec![(429, "600")]);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard()).unwrap().clock(clock))
        .layer(RateLimitLayer::new().clock(clock))
        .service(svc);
    let until: Timestamp = "2026-11-28T10:10:00Z".parse().unwrap();

    // The first caller meets the 429 itself.
    let err = client.clone().oneshot(get()).await.unwrap_err();
    let gave_up = err.downcast_ref::<GaveUp>().unwrap();
    assert_eq!((gave_up.reason(), gave_up.retry_at()), (GiveUpReason::ServerWaitTooLong, until));

    // The next caller never reaches the server: the pause outlasts its 60 s, and the retry layer
    // reads the rate limiter's refusal as "rate limited until 10:10" and stops at once.
    let start = clock.now();
    let err = client.oneshot(get()).await.unwrap_err();
    assert_eq!(clock.now(), start);
    let gave_up = err.downcast_ref::<GaveUp>().unwrap();
    assert_eq!(gave_up.attempts(), 1);
    assert_eq!(gave_up.disposition(), Disposition::RetryAt(until));
    assert!(std::error::Error::source(gave_up).unwrap().is::<unattended::HostPaused>());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_short_pause_is_waited_out_by_the_retrying_caller_and_the_others() {
    let clock = Clock::starting_at(t0());
    let (svc, requests) = server(vec![(429, "2")]);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard()).unwrap().clock(clock))
        .layer(RateLimitLayer::new().clock(clock))
        .service(svc);
    let first = tokio::spawn(client.clone().oneshot(get()));
    clock.sleep(Duration::from_millis(100)).await;
    let second = tokio::spawn(client.oneshot(get()));
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(second.await.unwrap().unwrap().status(), 200);
    // One 429, then one request from each caller after the pause: nothing sent during it.
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert!(clock.now() - clock.instant_at(t0()) >= Duration::from_secs(2));
}

/// The design's order: the attempt timeout sits next to the transport, so a request waiting out
/// a 45 s pause (inside the rate limiter's 60 s) is not mistaken for a hung server.
#[tokio::test(start_paused = true)]
async fn waiting_out_a_pause_is_not_a_timeout() {
    let clock = Clock::starting_at(t0());
    let (svc, requests) = server(vec![(429, "45")]);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard().attempt_timeout(None)).unwrap().clock(clock))
        .layer(RateLimitLayer::new().clock(clock).release_spread(Duration::ZERO))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(30)))
        .service(svc);
    // The first caller sees the 429 and (45 s being within its 60 s) waits and retries.
    let first = tokio::spawn(client.clone().oneshot(get()));
    clock.sleep(Duration::from_secs(1)).await;
    // The second is held by the pause for 44 s, longer than the 30 s attempt timeout.
    let start = clock.now();
    let second = client.oneshot(get()).await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(clock.now() - start, Duration::from_secs(44));
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

/// The breaker inside the retry layer counts every attempt, and its refusal is not retried.
#[tokio::test(start_paused = true)]
async fn an_open_breaker_stops_the_retries_at_once() {
    use unattended::breaker::{BreakerConfig, FailurePolicy};

    let clock = Clock::starting_at(t0());
    let (svc, requests) = server(vec![(503, ""); 10]);
    let breaker = unattended::CircuitBreakerLayer::new(
        BreakerConfig::standard().policy(FailurePolicy::consecutive(3)),
    )
    .unwrap()
    .clock(clock);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard().max_attempts(10)).unwrap().clock(clock))
        .layer(RateLimitLayer::new().clock(clock))
        .layer(breaker)
        .service(svc);
    let err = client.clone().oneshot(get()).await.unwrap_err();
    // Three attempts reach the server and open the breaker; the fourth is refused and ends it.
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    let open =
        err.downcast_ref::<unattended::BreakerOpen>().expect("the breaker's error, not retried");
    assert_eq!(open.disposition(), Disposition::Skip("https://api.example.com:443".into()));
    // The next caller fails fast without a single request.
    let err = client.oneshot(get()).await.unwrap_err();
    assert!(err.is::<unattended::BreakerOpen>());
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

/// The token layer inside the breaker: a refused token is renewed and the retry layer sends its
/// copy once more; the breaker does not count the 401 as the service failing.
#[tokio::test(start_paused = true)]
async fn a_refused_token_is_renewed_without_tripping_the_breaker() {
    use unattended::breaker::{BreakerConfig, FailurePolicy};
    use unattended::token::StaticToken;

    let clock = Clock::starting_at(t0());
    // Every other request is refused: the server drops tokens as fast as we bring them.
    let (svc, requests) = server(vec![(401, ""), (200, ""), (401, ""), (200, ""), (401, "")]);
    let breaker = unattended::CircuitBreakerLayer::new(
        BreakerConfig::standard().policy(FailurePolicy::consecutive(2)),
    )
    .unwrap()
    .clock(clock);
    let cache = Arc::new(TokenCache::new(StaticToken::new("key"), clock));
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryConfig::standard()).unwrap().clock(clock))
        .layer(RateLimitLayer::new().clock(clock))
        .layer(breaker.clone())
        .layer(TokenLayer::new(cache).replay_refused(false))
        .service(svc);
    let start = clock.now();
    for _ in 0..3 {
        let res = client.clone().oneshot(get()).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(requests.load(Ordering::SeqCst), 6, "each 401 cost exactly one more request");
    assert_eq!(clock.now(), start, "renewals are sent again at once, without backoff");
    let state = breaker.handle().state("https://api.example.com:443");
    assert_eq!(state, Some(unattended::breaker::BreakerState::Closed), "401s are not outages");
}
