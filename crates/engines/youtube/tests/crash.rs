//! A run dropped mid-chunk (the runner shut down, the process gone) resumes in a new runner
//! from the offset YouTube confirmed: nothing repeated but the chunk in flight.

mod support;

use std::time::Duration;

use http::Method;
use support::{CHUNK, World, sidecar};
use unattended_store::{RunOutcome, StateStore};
use unattended_testkit::fault::{Fault, Route, Trigger};

const SIZE: u64 = 5 * CHUNK + 100_000;

#[tokio::test(start_paused = true)]
async fn a_run_dropped_mid_chunk_resumes_in_a_new_runner_from_the_confirmed_offset() {
    let w = World::new("2026-12-01T12:00:00Z");
    let data = w.video("talk.mp4", SIZE, &sidecar("talk"));
    // The third chunk never gets an answer; the runner shuts down while it waits, and after
    // its grace period drops the run where it stands.
    w.yt.fault(Route::of(Method::PUT, "/upload"), Trigger::Nth(3, 3), Fault::Hang);
    let mut runner = w.runner("").await;
    w.run_for(&mut runner, Duration::from_secs(90)).await;
    let runs = runner.store().runs("uploads", 5).await.unwrap();
    assert_eq!(runs[0].end.as_ref().map(|e| e.outcome), Some(RunOutcome::Abandoned), "{runs:?}");
    let up = w.checkpoint(&runner).await.unwrap().upload.unwrap();
    assert_eq!((up.confirmed, up.sessions), (2 * CHUNK, 1));
    assert!(w.yt.uploads().is_empty());
    drop(runner);

    let mut runner = w.runner("").await;
    let outcome = w.once(&mut runner).await;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    w.assert_uploaded(&[("talk.mp4", &data)]);
    assert_eq!(w.sessions(), 1, "the same session");
    assert_eq!(w.status_queries(), 1, "asked where it stood");
    assert_eq!(w.chunk_starts(), [0, 1, 2, 2, 3, 4, 5].map(|n| n * CHUNK));
    assert_eq!(w.bytes_sent() - SIZE, CHUNK, "only the chunk in flight again");
}
