//! The runner's memory over a long stretch of work: the real `unattended run`, its own process,
//! against every engine's mocks served from this test process (so what the mocks keep is not
//! counted), with new work fed all along. Its resident memory is read from
//! `/proc/PID/status` every few seconds; the second half of the stretch must not grow past the
//! first half's peak by more than a small margin (caches bounded, history pruned, nothing kept
//! per run).
//!
//! `cargo test --release --test soak -- --ignored --nocapture` runs for 10 minutes, every
//! task every second or two: about 600 runs of each. `UNATTENDED_SOAK_SECS=2100` is about 2,000
//! runs of each, a week of a task every 5 minutes.

use std::process::{Command, Stdio};
use std::time::Duration;

use unattended::core::Clock;
use unattended::store::{StateStore as _, Store, StoreConfig};
use unattended_demo::CrashRig;

const BIN: &str = env!("CARGO_BIN_EXE_unattended");

/// The runner's resident memory, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long measure: 10 minutes by default"]
async fn the_runners_memory_stays_flat_over_a_long_stretch_of_work() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc here to read a process's memory from");
        return;
    }
    let secs = std::env::var("UNATTENDED_SOAK_SECS").ok().and_then(|v| v.parse().ok());
    let length = Duration::from_secs(secs.unwrap_or(600));
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let mut rig = CrashRig::new(dir.path(), 11).await.unwrap();
    // The rig keeps every run for its audit; here history is pruned as a user's config does.
    let text = std::fs::read_to_string(rig.config()).unwrap();
    std::fs::write(rig.config(), text.replace("keep_runs = 1000000\n", "")).unwrap();
    let log = std::fs::File::create(dir.path().join("runner.log")).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(rig.config())
        .arg("run")
        .envs(rig.env())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();

    let started = clock.now();
    let every = Duration::from_secs(5);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    while clock.now() - started < length {
        clock.sleep(every).await;
        let at = clock.now() - started;
        if at.as_secs() % 10 < every.as_secs() {
            rig.feed().unwrap();
        }
        let rss = rss_kib(pid).unwrap_or_else(|| panic!("the runner is gone after {at:?}"));
        samples.push((at, rss));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let text = std::fs::read_to_string(dir.path().join("runner.log")).unwrap();
    let mut runs = Vec::new();
    for task in ["uploads", "mail", "blog", "prices"] {
        // Text or JSON lines, as the log is written.
        let (plain, json) = (format!("task={task}"), format!("\"task\":\"{task}\""));
        let ended = |l: &&str| l.contains("run ended") && (l.contains(&plain) || l.contains(&json));
        let n = text.lines().filter(ended).count();
        runs.push((task, n));
    }
    // The store opens cleanly after all of it, with its history pruned.
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let kept = store.runs("mail", 1_000_000).await.unwrap().len();
    let audit = rig.audit();

    let mib = |kib: u64| kib as f64 / 1024.0;
    let half = samples.len() / 2;
    let first_peak = samples[..half].iter().map(|s| s.1).max().unwrap();
    let second_peak = samples[half..].iter().map(|s| s.1).max().unwrap();
    let step = (samples.len() / 10).max(1);
    for (at, rss) in samples.iter().step_by(step).chain(samples.last()) {
        eprintln!("{:>6} s  {:>7.1} MiB", at.as_secs(), mib(*rss));
    }
    eprintln!(
        "peak of the first half {:.1} MiB, of the second {:.1} MiB; runs {runs:?} \
         ({kept} of mail's kept); audit {audit:?}",
        mib(first_peak),
        mib(second_peak)
    );
    assert_eq!((audit.duplicated, audit.lost), (0, 0), "{}", rig.audit_rows());
    assert!(
        second_peak <= first_peak + first_peak / 10 + 2048,
        "the runner grew from {:.1} MiB to {:.1} MiB",
        mib(first_peak),
        mib(second_peak)
    );
}
