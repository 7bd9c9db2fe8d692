//! Every fault of the catalogue during the upload of a multi-chunk file, in-process under a
//! paused clock, through the real runner: each ends with YouTube holding the video exactly once
//! with identical bytes, and with at most one chunk sent again per interruption.

mod support;

use std::time::Duration;

use http::Method;
use support::{CHUNK, World, sidecar};
use unattended_store::{RunOutcome, TaskState};
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};

/// Six chunks: five whole ones and a short last one.
const SIZE: u64 = 5 * CHUNK + 100_000;

fn chunks() -> Route {
    Route::of(Method::PUT, "/upload")
}

/// Uploads one six-chunk video with `fault` on the `nth` chunk request; returns the world and
/// the bytes, after checking YouTube has them once.
async fn upload_with(nth: u64, fault: Fault) -> (World, Vec<u8>) {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(chunks(), Trigger::Nth(nth, nth), fault);
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    let cp = w.checkpoint(&runner).await.unwrap();
    assert!(cp.upload.is_none(), "nothing left in hand: {cp:?}");
    (w, data)
}

#[tokio::test(start_paused = true)]
async fn a_clean_upload_is_six_chunks_and_one_session() {
    let (w, _) = upload_with(99, Fault::Unavailable).await;
    assert_eq!(w.sessions(), 1);
    assert_eq!(w.chunk_starts(), [0, 1, 2, 3, 4, 5].map(|n| n * CHUNK));
    assert_eq!(w.status_queries(), 0);
    assert_eq!(w.bytes_sent(), SIZE);
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_waited_out_and_the_chunk_sent_again() {
    let start = World::new("2026-12-01T12:00:00Z").clock.now();
    let (w, _) = upload_with(3, Fault::RateLimited(Some(RetryAfter::Seconds(20)))).await;
    // YouTube did nothing with a 429: the client sends the same chunk after the wait.
    assert_eq!(w.chunk_starts(), [0, 1, 2, 2, 3, 4, 5].map(|n| n * CHUNK));
    assert_eq!(w.bytes_sent() - SIZE, CHUNK, "one chunk sent again");
    let gap = w.chunks()[3].at - w.chunks()[2].at;
    assert!(gap >= Duration::from_secs(20), "waited {gap:?}");
    assert!(w.clock.now() - start < Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_pauses_then_a_status_query_finds_where_to_go_on() {
    let (w, _) = upload_with(3, Fault::UnavailableFor(RetryAfter::Seconds(30))).await;
    // A 503 may come after YouTube kept some of the chunk: wait as asked, ask, go on.
    assert_eq!(w.status_queries(), 1);
    assert_eq!(w.chunk_starts(), [0, 1, 2, 2, 3, 4, 5].map(|n| n * CHUNK));
    assert_eq!(w.bytes_sent() - SIZE, CHUNK);
    assert_eq!(w.sessions(), 1);
    let puts = w.yt.log().to(&Method::PUT, "/upload");
    let gap = puts[3].at - puts[2].at;
    assert!(gap >= Duration::from_secs(30), "the status query waited {gap:?}");
}

#[tokio::test(start_paused = true)]
async fn a_503_burst_over_the_chunk_and_the_status_queries() {
    // The third chunk and the status queries after it are refused: the client retries the
    // query (it changes nothing) until the breaker judges YouTube down. The run is degraded,
    // not failed, with the confirmed offset saved; a later run goes on from it.
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(chunks(), Trigger::Nth(3, 5), Fault::Unavailable);
    let mut runner = w.runner("").await;
    let first = w.once(&mut runner).await;
    assert_eq!(first.end.outcome, RunOutcome::Degraded, "{:?}", first.end);
    let up = w.checkpoint(&runner).await.unwrap().upload.unwrap();
    assert_eq!((up.confirmed, up.sessions), (2 * CHUNK, 1));
    w.run_for(&mut runner, Duration::from_secs(3600)).await;
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert_eq!(w.sessions(), 1);
    assert_eq!(w.bytes_sent() - SIZE, CHUNK, "only the refused chunk again");
}

#[tokio::test(start_paused = true)]
async fn a_reset_mid_chunk_resumes_from_what_youtube_kept() {
    let (w, _) = upload_with(3, Fault::ResetMidChunk).await;
    assert_eq!(w.status_queries(), 1);
    // Half of the third chunk was kept: the next chunk starts there.
    let half = CHUNK / 2;
    assert_eq!(
        w.chunk_starts(),
        [0, CHUNK, 2 * CHUNK, 2 * CHUNK + half, 3 * CHUNK + half, 4 * CHUNK + half]
    );
    assert_eq!(w.bytes_sent() - SIZE, CHUNK / 2);
}

#[tokio::test(start_paused = true)]
async fn a_reset_before_any_answer_sends_that_chunk_again() {
    let (w, _) = upload_with(3, Fault::Transport).await;
    assert_eq!(w.status_queries(), 1);
    assert_eq!(w.bytes_sent() - SIZE, CHUNK);
}

#[tokio::test(start_paused = true)]
async fn a_hang_times_out_then_the_upload_goes_on() {
    let w = World::new("2026-12-01T12:00:00Z");
    let start = w.clock.now();
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(chunks(), Trigger::Nth(3, 3), Fault::Hang);
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert_eq!(w.status_queries(), 1);
    assert_eq!(w.bytes_sent() - SIZE, CHUNK);
    // The attempt timeout (5 min by default for uploads) ended the hang.
    assert!(w.clock.now() - start >= Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn a_short_range_resumes_from_the_range_not_from_what_was_sent() {
    let (w, _) = upload_with(2, Fault::ShortRange).await;
    // The second chunk's answer kept only 768 KiB of its 1 MiB.
    let kept = 2 * CHUNK - 256 * 1024;
    assert_eq!(&w.chunk_starts()[..3], [0, CHUNK, kept]);
    assert_eq!(w.bytes_sent() - SIZE, 256 * 1024);
    assert_eq!(w.status_queries(), 0, "the Range is the answer");
}

#[tokio::test(start_paused = true)]
async fn a_missing_range_on_the_first_chunk_sends_it_again() {
    let (w, _) = upload_with(1, Fault::NoRange).await;
    assert_eq!(&w.chunk_starts()[..2], [0, 0]);
    assert_eq!(w.bytes_sent() - SIZE, CHUNK);
}

#[tokio::test(start_paused = true)]
async fn a_missing_range_later_is_checked_then_the_upload_starts_over() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(chunks(), Trigger::Nth(3, 3), Fault::NoRange);
    let mut runner = w.runner("").await;
    assert_eq!(w.once(&mut runner).await.end.outcome, RunOutcome::Succeeded);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    // Asked once to be sure; YouTube kept nothing, so from byte 0 in the same session.
    assert_eq!(w.status_queries(), 1);
    assert_eq!(&w.chunk_starts()[..4], [0, CHUNK, 2 * CHUNK, 0]);
    assert_eq!(w.sessions(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_final_answer_lost_after_the_commit_is_recovered_by_the_status_query() {
    let (w, _) = upload_with(6, Fault::CommitThenDrop).await;
    // No second upload: the status query's answer is the video.
    assert_eq!(w.status_queries(), 1);
    assert_eq!(w.chunks().len(), 6);
    assert_eq!(w.bytes_sent(), SIZE);
    assert_eq!(w.sessions(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_starts_a_new_one_from_zero_and_the_checkpoint_says_so() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    w.yt.fault(chunks(), Trigger::Nth(4, 4), Fault::SessionExpired);
    // The new session is refused for quota, so the run stops with the checkpoint to read.
    w.yt.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(2, 2), Fault::QuotaExceeded);
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Failed);
    let up = w.checkpoint(&runner).await.unwrap().upload.unwrap();
    assert_eq!((up.session.is_none(), up.confirmed, up.sessions), (true, 0, 1));
    let why = up.restarted.unwrap();
    assert!(why.contains("gone (404)") && why.contains("from byte 0"), "{why}");

    // After midnight Pacific: a new session, from byte 0.
    w.clock.sleep(Duration::from_secs(24 * 3600)).await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert_eq!(w.sessions(), 2);
    let starts = w.chunk_starts();
    assert_eq!(&starts[..4], [0, CHUNK, 2 * CHUNK, 3 * CHUNK]);
    assert_eq!(&starts[4..], [0, 1, 2, 3, 4, 5].map(|n| n * CHUNK));
    let record = std::fs::read_to_string(w.queue().join("done/talk.mp4.uploaded.toml")).unwrap();
    assert!(record.contains("sessions = 2"), "{record}");
}

#[tokio::test(start_paused = true)]
async fn invalid_metadata_goes_to_failed_with_youtubes_reason_and_the_queue_goes_on() {
    let w = World::new("2026-12-01T12:00:00Z");
    w.video("a-bad.mp4", CHUNK, "title = \"bad\"\ncategory = 9999\n");
    let good = w.video("b-good.mp4", 2 * CHUNK, &sidecar("good"));
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded);
    w.assert_uploaded(&[("b-good.mp4", &good)]);
    let failed = w.queue().join("failed");
    assert!(failed.join("a-bad.mp4").exists() && failed.join("a-bad.toml").exists());
    let record = std::fs::read_to_string(failed.join("a-bad.mp4.failed.toml")).unwrap();
    assert!(record.contains("invalidCategoryId"), "{record}");
    assert!(outcome.end.summary.unwrap().contains("failed 1 (a-bad.mp4)"));
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_malformed_sidecar_goes_to_failed_with_a_clear_reason() {
    let w = World::new("2026-12-01T12:00:00Z");
    w.write("no-sidecar.mp4", b"0123456789");
    w.video("broken.mp4", 10, "title = \"unterminated\n");
    w.video(
        "private-only.mp4",
        10,
        "title = \"t\"\nprivacy = \"public\"\npublish_at = \"2027-01-01T00:00:00Z\"\n",
    );
    let mut runner = w.runner("sidecar_wait = \"30m\"").await;
    w.once(&mut runner).await;
    let failed = w.queue().join("failed");
    let reason =
        |name: &str| std::fs::read_to_string(failed.join(format!("{name}.failed.toml"))).unwrap();
    assert!(
        reason("no-sidecar.mp4").contains("no sidecar no-sidecar.toml"),
        "{}",
        reason("no-sidecar.mp4")
    );
    assert!(
        reason("broken.mp4").contains("the sidecar broken.toml is not valid"),
        "{}",
        reason("broken.mp4")
    );
    assert!(reason("private-only.mp4").contains("publish_at"), "{}", reason("private-only.mp4"));
    assert_eq!(w.sessions(), 0, "nothing was sent to YouTube for them");
    assert!(w.yt.log().all().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_file_still_being_written_waits_until_it_settles() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", 2 * CHUNK, &sidecar("talk"));
    // Touched just now: still being copied.
    let file = std::fs::File::options().write(true).open(w.queue().join("talk.mp4")).unwrap();
    file.set_modified(std::time::SystemTime::try_from(w.clock.wall()).unwrap()).unwrap();
    let mut runner = w.runner("").await;
    w.once(&mut runner).await;
    assert_eq!(w.sessions(), 0);
    w.clock.sleep(Duration::from_secs(61)).await;
    w.once(&mut runner).await;
    w.assert_uploaded(&[("talk.mp4", &data)]);
}

#[tokio::test(start_paused = true)]
async fn two_videos_go_one_after_another_in_name_order() {
    let w = World::new("2026-12-01T12:00:00Z");
    let b = w.video("b.mp4", 2 * CHUNK + 1, &sidecar("b"));
    let a = w.video("a.mov", 3 * CHUNK, &sidecar("a"));
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    w.assert_uploaded(&[("a.mov", &a), ("b.mp4", &b)]);
    let titles: Vec<String> = w.yt.uploads().into_iter().map(|u| u.title).collect();
    assert_eq!(titles, ["a", "b"]);
    assert_eq!(outcome.end.summary.unwrap(), "uploaded 2 (vid000002, vid000004)");
    assert_eq!(w.checkpoint(&runner).await.unwrap().uploaded, 2);
    assert_eq!(outcome.state, TaskState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_video_youtube_rejects_after_the_upload_goes_to_failed_with_its_id_and_reason() {
    let w = World::new("2026-12-01T12:00:00Z");
    let first = w.video("a.mp4", 2 * CHUNK, &sidecar("first"));
    // The same bytes under another name: YouTube takes them, then rejects them as a duplicate.
    w.write("b.mp4", &first);
    w.write("b.toml", sidecar("again").as_bytes());
    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    assert_eq!(w.yt.uploads().len(), 2, "both were sent");
    assert!(w.queue().join("done/a.mp4").exists());
    let failed = w.queue().join("failed");
    assert!(failed.join("b.mp4").exists() && failed.join("b.toml").exists());
    let record: toml::Table =
        toml::from_str(&std::fs::read_to_string(failed.join("b.mp4.failed.toml")).unwrap())
            .unwrap();
    assert_eq!(record["video_id"].as_str(), Some("vid000004"), "{record}");
    assert_eq!(record["upload_status"].as_str(), Some("rejected"), "{record}");
    assert!(record["reason"].as_str().unwrap().contains("(duplicate)"), "{record}");
    assert_eq!(outcome.end.summary.unwrap(), "uploaded 1 (vid000002); failed 1 (b.mp4)");
    let cp = w.checkpoint(&runner).await.unwrap();
    assert_eq!((cp.uploaded, cp.failed, cp.upload), (1, 1, None));
}
