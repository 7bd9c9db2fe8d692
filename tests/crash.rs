//! The kill -9 campaign: the real `unattended run` against loopback mocks of every engine's
//! services, SIGKILLed at seeded moments and started again each time, with new work fed
//! between the kills. At the end every video is uploaded once with its bytes, every post is
//! published once per site, every mail is labelled and written once, every price change is
//! recorded once, and the store opened cleanly after every kill.
//!
//! `cargo test --test crash` makes 10 kills; `UNATTENDED_CRASH_KILLS=100` (and
//! `UNATTENDED_CRASH_SEED`) make a longer campaign.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use unattended::core::Clock;
use unattended_demo::CrashRig;

const BIN: &str = env!("CARGO_BIN_EXE_unattended");

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn start(rig: &CrashRig, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(rig.config())
        .arg("run")
        .envs(rig.env())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_the_runner_loses_nothing_and_does_nothing_twice() {
    let (kills, seed) = (var("UNATTENDED_CRASH_KILLS", 10), var("UNATTENDED_CRASH_SEED", 7));
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let mut rig = CrashRig::new(dir.path(), seed).await.unwrap();
    let log = dir.path().join("runner.log");
    let tail = |log: &std::path::Path| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    // A first start, left to run until the mail task has run once: it reads mail that arrives
    // after that, and the campaign's mail must count.
    let mut first = start(&rig, &log);
    let started = clock.now();
    loop {
        let status = Command::new(BIN)
            .arg("--config")
            .arg(rig.config())
            .args(["status", "--json"])
            .output()
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&status.stdout).unwrap_or(serde_json::Value::Null);
        let tasks = report["tasks"].as_array().cloned().unwrap_or_default();
        if tasks.iter().any(|t| t["name"] == "mail" && !t["last_success"].is_null()) {
            break;
        }
        assert!(clock.now() - started < Duration::from_secs(30), "mail never ran\n{}", tail(&log));
        clock.sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut moments = Vec::new();
    for kill in 0..kills {
        if kill % 3 == 0 {
            rig.feed().unwrap();
        }
        let mut child = start(&rig, &log);
        let after = Duration::from_millis(rng.u64(200..2500));
        moments.push(after.as_millis());
        clock.sleep(after).await;
        child.kill().unwrap(); // SIGKILL: no destructor, no last save
        child.wait().unwrap();
        // The store opens cleanly after every kill: `status` reads all of it.
        let status = Command::new(BIN)
            .arg("--config")
            .arg(rig.config())
            .args(["status", "--json"])
            .output()
            .unwrap();
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&status.stdout);
        assert!(
            parsed.is_ok(),
            "kill {kill}: status could not read the store: {}\n{}",
            String::from_utf8_lossy(&status.stderr),
            tail(&log)
        );
        let audit = rig.audit();
        assert_eq!(
            (audit.duplicated, audit.lost),
            (0, 0),
            "kill {kill} after {after:?}:\n{}\n{}",
            rig.audit_rows(),
            tail(&log)
        );
    }
    // Then left alone until every item is done.
    let mut child = start(&rig, &log);
    let started = clock.now();
    while rig.audit().waiting > 0 {
        if clock.now() - started > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("still waiting after 2 minutes:\n{}\n{}", rig.audit_rows(), tail(&log));
        }
        clock.sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let audit = rig.audit();
    eprintln!("{kills} kills at {moments:?} ms after each start");
    eprintln!("audit: {audit:?}");
    assert_eq!((audit.duplicated, audit.lost, audit.waiting), (0, 0, 0), "{}", rig.audit_rows());
    assert_eq!(audit.once, audit.fed);
}
