//! Crash safety: a writer process killed with SIGKILL at random points never leaves a damaged
//! database or a half-written checkpoint.
//!
//! The test binary runs itself as the writer (the ignored `writer` test, selected by name).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use unattended_store::{Expect, StateDb, StoreConfig};

const DB_VAR: &str = "UNATTENDED_CRASH_TEST_DB";

/// A checkpoint whose fields check each other: a torn write would not add up.
fn value(n: u64) -> String {
    let payload = "x".repeat(usize::try_from(n % 3000).unwrap_or(0));
    format!(r#"{{"n":{n},"payload":"{payload}","len":{}}}"#, payload.len())
}

fn check(json: &str, version: u64) {
    let v: serde_json::Value = serde_json::from_str(json).expect("the checkpoint is whole JSON");
    assert_eq!(v["n"].as_u64(), Some(version), "value and version were saved together");
    let len = v["payload"].as_str().unwrap().len() as u64;
    assert_eq!(v["len"].as_u64(), Some(len), "the payload is whole");
}

/// The writer: saves checkpoints in a loop, printing each committed version, until killed.
#[test]
#[ignore = "run by killed_writers_never_corrupt_the_store as a child process"]
fn writer() {
    let Ok(path) = std::env::var(DB_VAR) else { return };
    let mut db = StateDb::open(&path, &StoreConfig::new()).unwrap();
    let mut version = db.load_checkpoint("crash").unwrap().map_or(0, |c| c.version);
    let now = "2026-11-28T10:00:00Z".parse().unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        version = db
            .save_checkpoint("crash", &value(version + 1), Expect::Version(version), now)
            .unwrap();
        writeln!(out, "committed {version}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_writers_never_corrupt_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let exe = std::env::current_exe().unwrap();
    let mut last_seen = 0;
    for round in 0..50 {
        let mut child = Command::new(&exe)
            .args(["writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DB_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ")
                    && tx.send(n.parse::<u64>().unwrap()).is_err()
                {
                    return;
                }
            }
        });
        // Let it commit a random number of checkpoints, then kill it wherever it is.
        let target = last_seen + rng.u64(1..60);
        loop {
            let n = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("round {round} (seed {seed}): the writer stalled: {e}"));
            last_seen = n;
            if n >= target {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        while let Ok(n) = rx.try_recv() {
            last_seen = last_seen.max(n);
        }

        let db = StateDb::open(&path, &StoreConfig::new())
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): {e}"));
        let saved = db.load_checkpoint("crash").unwrap().expect("a checkpoint was committed");
        assert!(
            saved.version >= last_seen,
            "round {round} (seed {seed}): committed {last_seen} was lost (found {})",
            saved.version
        );
        check(&saved.value, saved.version);
        last_seen = saved.version;
    }
    assert!(last_seen >= 50, "every round committed something: {last_seen}");
}
