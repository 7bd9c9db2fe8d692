//! Tokens and quotas during an upload: access tokens expiring mid-upload, a revoked refresh
//! token, the daily quota and upload limit spent just before midnight Pacific.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use support::{CHUNK, World, at, sidecar};
use tower::ServiceExt as _;
use unattended_client::RequestBody;
use unattended_runner::{Disposition, Transport, transport};
use unattended_store::{RunOutcome, TaskState};
use unattended_testkit::fault::{Fault, Route, Trigger};

const SIZE: u64 = 5 * CHUNK + 100_000;

/// YouTube behind a slow uplink (each answer takes `each` on the clock after YouTube read the
/// request's headers); at request `at`, `then` runs first (to invalidate or revoke credentials
/// mid-upload).
fn slow_youtube(
    w: &World,
    each: Duration,
    at: u64,
    then: impl Fn() + Clone + Send + Sync + 'static,
) -> Transport {
    let (yt, clock, seen) = (w.yt.clone(), w.clock, Arc::new(AtomicU64::new(0)));
    transport(tower::service_fn(move |req: Request<RequestBody>| {
        let (yt, seen, then) = (yt.clone(), seen.clone(), then.clone());
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == at {
                then();
            }
            let res = yt.oneshot(req).await;
            clock.sleep(each).await;
            res
        }
    }))
}

#[tokio::test(start_paused = true)]
async fn tokens_are_refreshed_before_expiry_and_a_401_replays_once() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    // Ten-minute tokens, four minutes a chunk: the upload outlives three tokens.
    w.oauth.token_lifetime(Duration::from_secs(600));
    let oauth = w.oauth.clone();
    let youtube =
        slow_youtube(&w, Duration::from_secs(240), 6, move || oauth.invalidate_access_tokens());
    let mut runner = w.runner_with("", youtube).await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    let refused: Vec<_> =
        w.yt.log()
            .all()
            .into_iter()
            .filter(|r| r.status == Some(StatusCode::UNAUTHORIZED))
            .collect();
    // Only the token invalidated on YouTube's side was refused: expiry never was.
    assert_eq!(refused.len(), 1, "{refused:?}");
    // The refused chunk went again, at once, with a new token; nothing else was sent twice.
    assert_eq!(w.bytes_sent() - SIZE, CHUNK);
    assert_eq!(w.status_queries(), 0);
    assert!(w.oauth.token_calls().len() >= 3, "{:?}", w.oauth.token_calls());
}

#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_needs_a_human_and_the_video_stays_queued() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    let oauth = w.oauth.clone();
    // At the fourth request (the third chunk) the user has revoked the app.
    let youtube = slow_youtube(&w, Duration::ZERO, 4, move || {
        oauth.revoke_all();
        oauth.invalidate_access_tokens();
    });
    let mut runner = w.runner_with("", youtube).await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Failed);
    assert_eq!(
        outcome.end.disposition.as_deref(),
        Some(Disposition::Reauthorize.to_string().as_str())
    );
    assert_eq!(outcome.state, TaskState::Disabled);
    assert!(w.queue().join("talk.mp4").exists(), "still queued");
    assert!(!w.queue().join("failed").exists());
    let up = w.checkpoint(&runner).await.unwrap().upload.unwrap();
    assert_eq!((up.confirmed, up.session.is_some()), (2 * CHUNK, true));
    assert!(
        runner.alerts().iter().any(|a| format!("{a:?}").contains("re-authoriz")),
        "{:?}",
        runner.alerts()
    );
    drop(runner);

    // Re-authorized (a new refresh token saved): the same session goes on from its offset.
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert_eq!(w.sessions(), 1);
    assert_eq!(w.status_queries(), 1);
    assert_eq!(w.bytes_sent() - SIZE, CHUNK, "only the refused chunk went twice");
}

/// The wall time of each `videos.insert` and its status.
fn inserts(w: &World) -> Vec<(jiff::Timestamp, Option<StatusCode>)> {
    w.yt.log()
        .to(&Method::POST, "/upload")
        .iter()
        .map(|r| (w.clock.wall_at(r.at), r.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_quota_spent_at_23_50_pacific_resumes_after_midnight_not_before() {
    // 23:50 PST on 30 November 2026.
    let w = World::new("2026-12-01T07:50:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(1, 1), Fault::QuotaExceeded);
    let mut runner = w.runner("").await;
    let first = w.once(&mut runner).await;
    let midnight = at("2026-12-01T08:00:00Z");
    assert_eq!(
        first.end.disposition.as_deref(),
        Some(Disposition::RetryAt(midnight).to_string().as_str())
    );
    assert_eq!(w.checkpoint(&runner).await.unwrap().paused_until, Some(midnight));
    // A run at 23:55 (by hand, say) asks YouTube nothing.
    w.clock.sleep(Duration::from_secs(300)).await;
    w.once(&mut runner).await;
    assert_eq!(w.yt.log().all().len(), 1);
    // On its schedule, the task goes on at midnight.
    w.run_for(&mut runner, Duration::from_secs(1800)).await;
    w.assert_uploaded(&[("talk.mp4", &data)]);
    let inserts = inserts(&w);
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert_eq!(inserts[0], (at("2026-12-01T07:50:00Z"), Some(StatusCode::FORBIDDEN)));
    assert!(inserts[1].0 >= midnight && inserts[1].0 < at("2026-12-01T08:01:00Z"), "{inserts:?}");
    assert!(
        w.yt.log().all().iter().all(|r| w.clock.wall_at(r.at) < at("2026-12-01T07:51:00Z")
            || w.clock.wall_at(r.at) >= midnight)
    );
}

#[tokio::test(start_paused = true)]
async fn on_the_23_hour_day_the_quota_resets_at_midnight_in_the_zone() {
    // 00:30 PST on 8 March 2026; clocks spring forward at 02:00, so the next midnight (PDT)
    // is 22 h 30 min away: 07:00 UTC on 9 March, not 08:00 (a fixed -8) nor 08:30 (+24 h).
    let w = World::new("2026-03-08T08:30:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(1, 1), Fault::QuotaExceeded);
    let mut runner = w.runner("").await;
    w.run_for(&mut runner, Duration::from_secs(23 * 3600)).await;
    w.assert_uploaded(&[("talk.mp4", &data)]);
    let inserts = inserts(&w);
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert!(
        inserts[1].0 >= at("2026-03-09T07:00:00Z") && inserts[1].0 < at("2026-03-09T07:01:00Z"),
        "{inserts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_upload_limit_waits_for_midnight_pacific_too() {
    let w = World::new("2026-12-01T20:00:00Z"); // noon in Los Angeles
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(1, 1), Fault::UploadLimitExceeded);
    let mut runner = w.runner("").await;
    let first = w.once(&mut runner).await;
    let midnight = at("2026-12-02T08:00:00Z");
    assert_eq!(
        first.end.disposition.as_deref(),
        Some(Disposition::RetryAt(midnight).to_string().as_str())
    );
    assert!(first.end.error.unwrap().contains("uploadLimitExceeded"));
    assert!(w.queue().join("talk.mp4").exists(), "not failed: it waits");
    w.run_for(&mut runner, Duration::from_secs(13 * 3600)).await;
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert!(inserts(&w)[1].0 >= midnight);
}
