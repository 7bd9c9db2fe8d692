//! The retry layer under a paused clock: exact schedules, pushback, limits, idempotency.

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt};
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Disposition, FailureClass, HasDisposition, TransientCause};
use unattended_retry::{
    BudgetConfig, GaveUp, GiveUpReason, Jitter, NotIdempotent, RetryConfig, RetryEvent, RetryLayer,
    Retryable,
};

use support::{Answer, Script, clock, get, ms, post, t0};

fn layer(config: RetryConfig) -> RetryLayer {
    RetryLayer::new(config).unwrap().clock(clock())
}

/// No randomness: exact schedules.
fn plain() -> RetryConfig {
    RetryConfig::standard().jitter(Jitter::None).pushback_spread(Duration::ZERO)
}

fn gave_up(err: &BoxError) -> &GaveUp {
    err.downcast_ref::<GaveUp>().unwrap_or_else(|| panic!("expected GaveUp, got {err}"))
}

#[tokio::test(start_paused = true)]
async fn retries_503_503_200_on_the_exact_schedule() {
    let script = Script::new(clock(), [Answer::Status(503), Answer::Status(503)]);
    let svc = layer(plain()).layer(script.clone());
    let start = clock().now();
    let res = svc.oneshot(get("https://api.example.com/v")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(script.count(), 3);
    assert_eq!(script.gaps(), [ms(250), ms(500)]);
    assert_eq!(clock().now() - start, ms(750));
}

#[tokio::test(start_paused = true)]
async fn full_jitter_is_bounded_and_reproducible_with_a_seed() {
    async fn run(seed: u64) -> Vec<Duration> {
        let script =
            Script::new(clock(), [Answer::Status(503), Answer::Status(502), Answer::Status(504)]);
        let config = RetryConfig::standard().seed(Some(seed));
        layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
        script.gaps()
    }
    let first = run(7).await;
    assert_eq!(first.len(), 3);
    for (n, gap) in first.iter().enumerate() {
        assert!(*gap <= ms(250 << n), "retry {n} waited {gap:?}");
    }
    assert_eq!(first, run(7).await);
    assert_ne!(first, run(8).await);
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_honoured() {
    let limited = Answer::StatusWith(429, vec![("retry-after", "2".into())]);
    let script = Script::new(clock(), [limited]);
    let res =
        layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(script.gaps(), [Duration::from_secs(2)]);
}

/// 32 callers refused at once with `Retry-After: 1` come back spread over the second after the
/// server's instant, none before it, instead of all at once (a herd refused again).
#[tokio::test(start_paused = true)]
async fn callers_told_the_same_instant_come_back_spread_after_it() {
    let limited = Answer::StatusWith(429, vec![("retry-after", "1".into())]);
    let script = Script::new(clock(), vec![limited; 32]);
    let svc = layer(RetryConfig::standard().budget(None).seed(Some(3))).layer(script.clone());
    let start = clock().now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..32 {
        calls.spawn(svc.clone().oneshot(get("https://a.example/")));
    }
    while let Some(res) = calls.join_next().await {
        assert_eq!(res.unwrap().unwrap().status(), 200);
    }
    let mut back: Vec<Duration> = script.calls()[32..].iter().map(|c| c.at - start).collect();
    back.sort();
    assert_eq!(back.len(), 32);
    assert!(back[0] >= Duration::from_secs(1), "never before the server's instant: {back:?}");
    assert!(back[31] < Duration::from_secs(2), "within the spread: {back:?}");
    assert!(back[31] - back[0] >= ms(500), "spread over the second: {back:?}");
    back.dedup();
    assert!(back.len() >= 30, "hardly two at the same instant: {back:?}");
}

/// The spread never pushes a retry that fits the deadline past it.
#[tokio::test(start_paused = true)]
async fn the_spread_stops_at_the_deadline() {
    for seed in 0..16 {
        let limited = Answer::StatusWith(429, vec![("retry-after", "1".into())]);
        let script = Script::new(clock(), [limited]);
        let config = RetryConfig::standard().deadline(Some(ms(1200))).seed(Some(seed));
        let res = layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await;
        assert_eq!(res.unwrap().status(), 200, "seed {seed}");
        let gap = script.gaps()[0];
        assert!((ms(1000)..=ms(1200)).contains(&gap), "seed {seed}: {gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_honoured() {
    let at = "Sat, 28 Nov 2026 10:00:05 GMT".to_owned();
    let script = Script::new(clock(), [Answer::StatusWith(503, vec![("retry-after", at)])]);
    let res =
        layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(script.gaps(), [Duration::from_secs(5)]);
}

#[tokio::test(start_paused = true)]
async fn a_short_server_wait_never_shortens_the_backoff() {
    // Backoff before the third attempt is 500 ms; the server asks for 0 s.
    let script = Script::new(
        clock(),
        [Answer::Status(503), Answer::StatusWith(429, vec![("retry-after", "0".into())])],
    );
    layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(script.gaps(), [ms(250), ms(500)]);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_ends_at_once_with_retry_at() {
    // 30 s is within the 60 s the layer may sleep, but past a 10 s deadline.
    let script =
        Script::new(clock(), [Answer::StatusWith(429, vec![("retry-after", "30".into())])]);
    let config = plain().deadline(Some(Duration::from_secs(10)));
    let start = clock().now();
    let err =
        layer(config).layer(script.clone()).oneshot(get("https://a.example/x")).await.unwrap_err();
    let err = gave_up(&err);
    assert_eq!(err.reason(), GiveUpReason::Deadline);
    assert_eq!(err.retry_at(), add_saturating(t0(), Duration::from_secs(30)));
    assert_eq!(
        err.disposition(),
        Disposition::RetryAt(add_saturating(t0(), Duration::from_secs(30)))
    );
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.key().unwrap().as_str(), "https://a.example:443");
    assert_eq!(script.count(), 1);
    assert_eq!(clock().now(), start, "gave up without sleeping");
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_allowed_ends_at_once_with_the_server_time() {
    let daily =
        Answer::StatusWith(429, vec![("retry-after", "Sat, 28 Nov 2026 23:00:00 GMT".into())]);
    let script = Script::new(clock(), [daily]);
    let err =
        layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap_err();
    let err = gave_up(&err);
    assert_eq!(err.reason(), GiveUpReason::ServerWaitTooLong);
    assert_eq!(err.retry_at(), "2026-11-28T23:00:00Z".parse().unwrap());
    assert!(matches!(err.last_failure(), FailureClass::RateLimited { .. }));
    assert_eq!(
        err.to_string(),
        "gave up on https://a.example:443 after 1 attempt (the server asked for a longer wait \
         than allowed): last failure was rate limited (HTTP 429) until 2026-11-28T23:00:00Z; \
         retry after 2026-11-28T23:00:00Z"
    );
}

/// The "never" sentinel is a day past the time library's range: it is read as the latest instant
/// and capped like ten years in seconds, not ignored as malformed (which would retry on backoff).
#[tokio::test(start_paused = true)]
async fn a_never_date_ends_at_once_with_the_capped_time_like_huge_seconds() {
    let capped = add_saturating(t0(), unattended_core::HeaderLimits::DEFAULT_MAX_WAIT);
    for value in ["315360000", "Fri, 31 Dec 9999 23:59:59 GMT", "Fri Dec 31 23:59:59 9999"] {
        let never = Answer::StatusWith(429, vec![("retry-after", value.to_owned())]);
        let script = Script::new(clock(), [never]);
        let start = clock().now();
        let err = layer(plain())
            .layer(script.clone())
            .oneshot(get("https://a.example/"))
            .await
            .unwrap_err();
        let err = gave_up(&err);
        assert_eq!(err.reason(), GiveUpReason::ServerWaitTooLong, "{value}");
        assert_eq!(err.retry_at(), capped, "{value}");
        assert_eq!((script.count(), clock().now()), (1, start), "{value}: gave up at once");
    }
}

#[tokio::test(start_paused = true)]
async fn post_is_not_retried_on_503_without_a_key() {
    let script = Script::new(clock(), [Answer::Status(503)]);
    let err = layer(plain())
        .layer(script.clone())
        .oneshot(post("https://a.example/items"))
        .await
        .unwrap_err();
    assert_eq!(gave_up(&err).reason(), GiveUpReason::NotIdempotent);
    assert!(err.to_string().contains("Idempotency-Key"), "{err}");
    assert_eq!(script.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_is_retried_with_a_key_a_marker_or_after_a_connect_error() {
    let mut keyed = post("https://a.example/items");
    keyed.headers_mut().insert("idempotency-key", "k-1".parse().unwrap());
    let mut marked = post("https://a.example/items");
    marked.extensions_mut().insert(Retryable);
    for req in [keyed, marked] {
        let script = Script::new(clock(), [Answer::Status(503)]);
        let res = layer(plain()).layer(script.clone()).oneshot(req).await.unwrap();
        assert_eq!((res.status().as_u16(), script.count()), (200, 2));
    }
    // Nothing was sent: safe to send a POST again.
    let script = Script::new(clock(), [Answer::Error(io::ErrorKind::ConnectionRefused)]);
    let res = layer(plain())
        .layer(script.clone())
        .oneshot(post("https://a.example/items"))
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), script.count()), (200, 2));
    // A 429 was refused before any work: sent again once the wait is over. A 429 without a
    // Retry-After too.
    for answer in [Answer::StatusWith(429, vec![("retry-after", "2".into())]), Answer::Status(429)]
    {
        let script = Script::new(clock(), [answer]);
        let res =
            layer(plain()).layer(script.clone()).oneshot(post("https://a.example/items")).await;
        assert_eq!((res.unwrap().status().as_u16(), script.count()), (200, 2));
    }
    // A reset after sending is not proof of anything.
    let script = Script::new(clock(), [Answer::Error(io::ErrorKind::ConnectionReset)]);
    let err = layer(plain())
        .layer(script.clone())
        .oneshot(post("https://a.example/items"))
        .await
        .unwrap_err();
    let err = gave_up(&err);
    assert_eq!(err.reason(), GiveUpReason::NotIdempotent);
    assert_eq!(err.last_failure(), FailureClass::Transient(TransientCause::Reset));
    let source = std::error::Error::source(err).unwrap().downcast_ref::<io::Error>().unwrap();
    assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn a_put_marked_not_idempotent_is_sent_again_only_when_the_server_did_nothing() {
    let chunk = || {
        let mut req = Request::put("https://uploads.example/v?upload_id=1")
            .body(Bytes::from_static(b"chunk"))
            .unwrap();
        req.extensions_mut().insert(NotIdempotent);
        req
    };
    for failure in [Answer::Status(503), Answer::Error(io::ErrorKind::ConnectionReset)] {
        let script = Script::new(clock(), [failure]);
        let err = layer(plain()).layer(script.clone()).oneshot(chunk()).await.unwrap_err();
        assert_eq!(gave_up(&err).reason(), GiveUpReason::NotIdempotent);
        assert_eq!(script.count(), 1);
    }
    let script = Script::new(clock(), [Answer::StatusWith(429, vec![("retry-after", "2".into())])]);
    let res = layer(plain()).layer(script.clone()).oneshot(chunk()).await.unwrap();
    assert_eq!((res.status().as_u16(), script.count()), (200, 2));
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_sent_once_and_the_error_says_why() {
    let script = Script::new(clock(), [Answer::Status(503)]);
    let body = http_body_util::Full::new(Bytes::from_static(b"chunk")).boxed();
    let req = Request::put("https://uploads.example/v").body(body).unwrap();
    let err = layer(plain()).layer(script.clone()).oneshot(req).await.unwrap_err();
    let err = gave_up(&err);
    assert_eq!(err.reason(), GiveUpReason::NotReplayable);
    assert_eq!(err.key().unwrap().as_str(), "https://uploads.example:443");
    assert!(err.to_string().contains("stream"), "{err}");
    assert_eq!(script.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn failures_no_retry_can_fix_come_back_as_they_were() {
    for status in [404, 401, 400, 501] {
        let script = Script::new(clock(), [Answer::Status(status)]);
        let res =
            layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
        assert_eq!((res.status().as_u16(), script.count()), (status, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_renewed_credential_is_sent_once_more_at_once_whatever_the_method() {
    let script = Script::new(clock(), [Answer::Renewed]);
    let start = clock().now();
    // A POST without a key: a 401 proves the server did nothing, so sending again is safe.
    let res =
        layer(plain()).layer(script.clone()).oneshot(post("https://a.example/")).await.unwrap();
    assert_eq!((res.status().as_u16(), script.count()), (200, 2));
    assert_eq!(clock().now(), start, "no backoff before the replay");
}

#[tokio::test(start_paused = true)]
async fn a_second_renewal_is_passed_through_not_looped() {
    let script = Script::always(clock(), Answer::Renewed);
    let res =
        layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!((res.status().as_u16(), script.count()), (401, 2));
    // A plain 401 (no token layer inside) is never sent again.
    let script = Script::always(clock(), Answer::Status(401));
    layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(script.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_renewal_spends_no_budget() {
    // A budget with nothing in it: no ordinary retry is allowed.
    let config = plain().budget(Some(BudgetConfig::new().max_retries(0)));
    let script = Script::new(clock(), [Answer::Renewed, Answer::Status(503)]);
    let res = layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await;
    assert_eq!(script.count(), 2, "the renewal replay went through, the 503 retry did not");
    assert_eq!(gave_up(&res.unwrap_err()).reason(), GiveUpReason::Budget);
}

/// Where a rate-limit layer inside paces the hosts that throttle, their refusals are retried
/// whatever the budget holds; any other failure still draws on it.
#[tokio::test(start_paused = true)]
async fn paced_throttles_spend_no_budget() {
    let empty = || plain().budget(Some(BudgetConfig::new().max_retries(0)));
    let wait = || Answer::StatusWith(503, vec![("retry-after", "1".to_owned())]);
    let throttles = || [Answer::Status(429), wait(), Answer::Status(429)];
    let script = Script::new(clock(), throttles());
    let svc = layer(empty().paced_throttles(true)).layer(script.clone());
    let res = svc.oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!((res.status().as_u16(), script.count()), (200, 4));
    // Off (the default): the empty budget refuses the first retry.
    let script = Script::new(clock(), throttles());
    let err = layer(empty()).layer(script.clone()).oneshot(get("https://a.example/")).await;
    assert_eq!(gave_up(&err.unwrap_err()).reason(), GiveUpReason::Budget);
    assert_eq!(script.count(), 1);
    // A 503 without a time is a failure, not a throttle.
    let script = Script::new(clock(), [Answer::Status(503)]);
    let svc = layer(empty().paced_throttles(true)).layer(script.clone());
    let err = svc.oneshot(get("https://a.example/")).await.unwrap_err();
    assert_eq!((gave_up(&err).reason(), script.count()), (GiveUpReason::Budget, 1));
}

/// Paced below, a throttle's retry goes at the server's instant: the pace spreads the retries,
/// in order, where the pushback spread would only delay them and shuffle the line.
#[tokio::test(start_paused = true)]
async fn paced_throttles_go_at_the_servers_instant() {
    let limited = || Answer::StatusWith(429, vec![("retry-after", "1".to_owned())]);
    let gap = |config: RetryConfig| async move {
        let script = Script::new(clock(), [limited()]);
        layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap();
        script.gaps()[0]
    };
    let spread = || RetryConfig::standard().jitter(Jitter::None).pushback_spread(ms(1000));
    for seed in 0..8 {
        assert_eq!(gap(spread().seed(Some(seed)).paced_throttles(true)).await, ms(1000));
    }
    let mut unpaced = Vec::new();
    for seed in 0..8 {
        unpaced.push(gap(spread().seed(Some(seed))).await);
    }
    assert!(unpaced.iter().all(|g| (ms(1000)..ms(2000)).contains(g)), "{unpaced:?}");
    assert!(unpaced.iter().any(|g| *g > ms(1000)), "spread when not paced: {unpaced:?}");
}

#[tokio::test(start_paused = true)]
async fn running_out_of_attempts_reports_the_attempts_made() {
    let script = Script::new(clock(), vec![Answer::Status(503); 10]);
    let err =
        layer(plain()).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap_err();
    let err = gave_up(&err);
    assert_eq!((err.reason(), err.attempts()), (GiveUpReason::MaxAttempts, 4));
    assert_eq!(script.count(), 4);
    assert_eq!(script.gaps(), [ms(250), ms(500), ms(1000)]);
    // Retry at = one more backoff (2 s) after the last failure, which came at t0 + 1.75 s.
    assert_eq!(err.retry_at(), add_saturating(t0(), ms(3750)));
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_times_out_and_is_retried() {
    let script = Script::new(clock(), [Answer::Hang]);
    let config = plain().attempt_timeout(Some(Duration::from_secs(5)));
    let res = layer(config.clone())
        .layer(script.clone())
        .oneshot(get("https://a.example/"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(script.gaps(), [ms(5250)]);

    // When every attempt hangs, the error says so and keeps the timeout as its source.
    let script = Script::new(clock(), vec![Answer::Hang; 4]);
    let err =
        layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap_err();
    let err = gave_up(&err);
    assert_eq!(err.last_failure(), FailureClass::Transient(TransientCause::Timeout));
    assert!(std::error::Error::source(err).unwrap().is::<tower::timeout::error::Elapsed>());
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retries_that_would_start_too_late() {
    let script = Script::new(clock(), vec![Answer::Status(503); 10]);
    // 250 + 500 = 750 ms fit in 1 s; the third wait (1 s) would end at 1.75 s.
    let config = plain().max_attempts(10).deadline(Some(Duration::from_secs(1)));
    let err =
        layer(config).layer(script.clone()).oneshot(get("https://a.example/")).await.unwrap_err();
    assert_eq!(gave_up(&err).reason(), GiveUpReason::Deadline);
    assert_eq!(script.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn events_fire_per_retry_and_on_giving_up() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let layer =
        layer(plain().max_attempts(2)).on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let script = Script::new(clock(), vec![Answer::Status(503); 2]);
    let _ = layer.layer(script).oneshot(get("https://a.example/")).await.unwrap_err();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2);
    match &events[0] {
        RetryEvent::Retrying { key, attempt, delay, reason, at } => {
            assert_eq!(key.as_ref().unwrap().as_str(), "https://a.example:443");
            assert_eq!((*attempt, *delay, *at), (1, ms(250), t0()));
            assert_eq!(
                *reason,
                FailureClass::Transient(TransientCause::Status(
                    http::StatusCode::SERVICE_UNAVAILABLE
                ))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        &events[1],
        RetryEvent::GaveUp { attempts: 2, reason: GiveUpReason::MaxAttempts, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn successes_fire_no_events() {
    let events = Arc::new(Mutex::new(0));
    let sink = events.clone();
    let layer = layer(plain()).on_event(move |_| *sink.lock().unwrap() += 1);
    let script = Script::new(clock(), []);
    layer.layer(script).oneshot(get("https://a.example/")).await.unwrap();
    assert_eq!(*events.lock().unwrap(), 0);
}

/// A total outage, 1,000 concurrent calls: the host earns nothing, so the retries stop once the
/// ten saved up are spent.
#[tokio::test(start_paused = true)]
async fn the_budget_caps_amplification_under_a_total_outage() {
    async fn outage(config: RetryConfig) -> f64 {
        let down = Script::always(clock(), Answer::Status(503));
        let svc = layer(config).layer(down.clone());
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let svc = svc.clone();
            calls.spawn(async move { svc.oneshot(get("https://down.example/")).await });
        }
        while let Some(result) = calls.join_next().await {
            let err = result.unwrap().unwrap_err();
            assert!(err.is::<GaveUp>());
        }
        down.count() as f64 / 1000.0
    }
    let with_budget = outage(RetryConfig::standard()).await;
    assert_eq!(with_budget, 1.01, "1,000 calls and the 10 retries saved up");
    let without = outage(RetryConfig::standard().budget(None)).await;
    assert_eq!(without, 4.0);
}

/// Every fifth request fails: successes pay for the retries, so the budget never refuses one,
/// though the retries are a quarter of the first attempts (more than a 20%-of-requests budget
/// allows). Ten callers at once, so a retry sometimes lands on a failing turn again.
#[tokio::test(start_paused = true)]
async fn a_flaky_host_keeps_its_retries() {
    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = requests.clone();
    let flaky = tower::service_fn(move |_: Request<Bytes>| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let status = if n.is_multiple_of(5) { 503 } else { 200 };
        async move { Ok::<_, io::Error>(http::Response::builder().status(status).body(()).unwrap()) }
    });
    let svc = layer(RetryConfig::standard().seed(Some(5))).layer(flaky);
    let mut calls = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let svc = svc.clone();
        calls.spawn(async move {
            let (mut ok, mut refused) = (0u32, 0u32);
            for _ in 0..1_000 {
                let url = format!("https://flaky.example/{worker}");
                match svc.clone().oneshot(Request::get(url).body(Bytes::new()).unwrap()).await {
                    Ok(res) if res.status() == 200 => ok += 1,
                    Err(err) if gave_up(&err).reason() == GiveUpReason::Budget => refused += 1,
                    _ => {}
                }
            }
            (ok, refused)
        });
    }
    let (mut succeeded, mut refused) = (0, 0);
    while let Some(result) = calls.join_next().await {
        let (ok, no) = result.unwrap();
        (succeeded, refused) = (succeeded + ok, refused + no);
    }
    assert_eq!(refused, 0, "the budget refused a retry");
    assert!(succeeded >= 9_990, "{succeeded} of 10,000 calls succeeded");
    let requests = requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(requests >= 12_400, "{requests} requests: the failures were retried");
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_budget() {
    let config = plain().budget(Some(BudgetConfig::new().max_retries(2).per_success(0.0)));
    let svc = layer(config).layer(Script::always(clock(), Answer::Status(503)));
    let (a, b) = (svc.clone(), svc);
    // Two retries saved up: the first caller spends both.
    let err = a.oneshot(get("https://down.example/")).await.unwrap_err();
    assert_eq!((gave_up(&err).reason(), gave_up(&err).attempts()), (GiveUpReason::Budget, 3));
    let err = b.oneshot(get("https://down.example/")).await.unwrap_err();
    assert_eq!((gave_up(&err).reason(), gave_up(&err).attempts()), (GiveUpReason::Budget, 1));
}

#[tokio::test(start_paused = true)]
async fn budget_remaining_is_visible_on_the_layer() {
    let layer = layer(plain());
    assert_eq!(layer.budget_remaining(), Some(10));
    let svc = layer.clone().layer(Script::new(clock(), [Answer::Status(503)]));
    svc.oneshot(get("https://a.example/")).await.unwrap();
    // One retry spent, and half of it earned back by the success.
    assert_eq!(layer.budget_remaining(), Some(9));
    assert_eq!(layer.config().clone().budget(None), plain().budget(None));
    let none = RetryLayer::new(plain().budget(None)).unwrap();
    assert_eq!(none.budget_remaining(), None);
}

#[test]
fn bad_config_is_refused_at_construction() {
    let err = RetryLayer::new(RetryConfig::standard().max_attempts(0)).unwrap_err();
    assert_eq!(err.to_string(), "max_attempts must be between 1 and 100, got 0");
}
