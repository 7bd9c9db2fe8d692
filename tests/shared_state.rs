//! Three `unattended run` processes on one PostgreSQL state: every due run happens once and no
//! task runs in two runners at a time; a 429 one runner gets stops the others sending to that
//! host until the pause ends; a runner killed with SIGKILL loses its task to another within
//! about one lease; `status` shows which runner holds which task.
//!
//! PostgreSQL comes from the distribution's packages; `.ci/run` installs it and sets
//! `UNATTENDED_REQUIRE_POSTGRES=1`, so that the test fails instead of skipping.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use unattended::core::Clock;
use unattended::store::{StateStore, Store, StoreConfig};
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};
use unattended_testkit::postgres::server_for;
use unattended_testkit::serve::serve;
use unattended_testkit::website::{Robots, Website};

const BIN: &str = env!("CARGO_BIN_EXE_unattended");
const LEASE_SECS: u64 = 2;
const RUNNERS: [&str; 3] = ["north", "south", "west"];
const COUNTED: [&str; 3] = ["count-a", "count-b", "count-c"];

/// Fails a run that finds its task already running (a lock directory per task).
const LOCKED: &str = r#"#!/bin/sh
d="$LOCKS/$UNATTENDED_TASK"
if ! mkdir "$d" 2>/dev/null; then
  echo "$UNATTENDED_TASK" >> "$LOCKS/overlaps"
  exit 1
fi
sleep 0.3
rmdir "$d"
"#;

fn config(dir: &Path, name: &str, url: &str, site: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[state]\nurl = \"{url}\"\nlease = \"{LEASE_SECS}s\"\n\n[runner]\nname = \"{name}\"\n\
         shutdown_grace = \"1s\"\n\n"
    );
    for task in COUNTED {
        text.push_str(&format!(
            "[tasks.{task}]\nengine = \"command\"\nevery = \"2s\"\nprogram = \"sh\"\n\
             args = [\"{}\"]\n\n",
            dir.join("locked.sh").display()
        ));
    }
    text.push_str(
        "[tasks.slow]\nengine = \"command\"\nevery = \"1h\"\nprogram = \"sleep\"\nargs = [\"30\"]\n\n",
    );
    for (i, page) in ["/p0", "/p1", "/p2"].iter().enumerate() {
        text.push_str(&format!(
            "[tasks.watch-{i}]\nengine = \"scrape\"\nevery = \"1s\"\n\
             user_agent = \"pricewatch/1.0 (+https://example.com/bot)\"\npages = [\"{site}{page}\"]\n\
             min_delay = \"10ms\"\n[tasks.watch-{i}.fields]\nprice = \".price\"\n\n"
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("LOCKS", dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn logs(dir: &Path) -> String {
    RUNNERS
        .iter()
        .map(|n| {
            format!(
                "--- {n}\n{}",
                std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_share_tasks_pauses_and_a_dead_runners_work() {
    let clock = Clock::system();
    let Some(server) =
        server_for("three_runners_share_tasks_pauses_and_a_dead_runners_work", clock).await
    else {
        return;
    };
    let url = server.create_database("shared").unwrap();
    let site = Website::new(clock, Robots::Missing, 1);
    for i in 0..3 {
        site.page(&format!("/p{i}"), &format!("<span class=\"price\">£{i}</span>"));
    }
    let served = serve(site.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locked.sh"), LOCKED).unwrap();
    let mut children: Vec<(&str, Child)> = RUNNERS
        .iter()
        .map(|name| {
            let config = config(dir.path(), name, &url, &served.url());
            (*name, start(&config, dir.path(), name))
        })
        .collect();
    let store = Store::open_location(&url, StoreConfig::new(), clock).await.unwrap();
    let stop_all = |children: &mut Vec<(&str, Child)>| {
        for (_, child) in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    };

    // 1. Every due run once, none at the same time in two runners.
    let counted_from = clock.wall();
    clock.sleep(Duration::from_secs(12)).await;
    let counted_until = clock.wall();
    let overlaps = std::fs::read_to_string(dir.path().join("overlaps")).unwrap_or_default();
    let mut by_runner = std::collections::BTreeMap::<String, usize>::new();
    for task in COUNTED {
        let mut runs = store.runs(task, 1000).await.unwrap();
        runs.retain(|r| r.started_at >= counted_from && r.started_at < counted_until);
        runs.sort_by_key(|r| r.started_at);
        for run in &runs {
            *by_runner.entry(run.runner.clone().unwrap_or_default()).or_default() += 1;
        }
        let starts: Vec<_> = runs.iter().map(|r| r.started_at).collect();
        let gaps: Vec<_> = starts.windows(2).map(|w| w[1].duration_since(w[0])).collect();
        if overlaps.contains(task)
            || runs.len() < 4
            || gaps.iter().any(|g| *g < jiff::SignedDuration::from_millis(1500))
        {
            stop_all(&mut children);
            panic!(
                "{task}: {} runs in 12 s, gaps {gaps:?}, overlaps {overlaps:?}\n{}",
                runs.len(),
                logs(dir.path())
            );
        }
    }
    eprintln!("runs by runner: {by_runner:?}");

    // 2. A 429 with Retry-After: 4 to one runner: nobody sends to the host until it ends.
    site.fault(
        Route::any("/p"),
        Trigger::Nth(1, 1),
        Fault::RateLimited(Some(RetryAfter::Seconds(4))),
    );
    let wait_start = clock.now();
    let refused_at = loop {
        let refused = site
            .log()
            .all()
            .into_iter()
            .find(|r| r.status == Some(StatusCode::TOO_MANY_REQUESTS))
            .map(|r| r.at);
        if let Some(at) = refused {
            break at;
        }
        if clock.now() - wait_start > Duration::from_secs(20) {
            stop_all(&mut children);
            panic!("no request was refused\n{}", logs(dir.path()));
        }
        clock.sleep(Duration::from_millis(20)).await;
    };
    clock.sleep(Duration::from_secs(6)).await;
    let all = site.log().all();
    let after = |r: &&unattended_testkit::log::Recorded| r.at > refused_at;
    let quiet: Vec<Duration> = all
        .iter()
        .filter(after)
        .map(|r| r.at - refused_at)
        .filter(|d| *d >= Duration::from_secs(1) && *d < Duration::from_millis(3900))
        .collect();
    let in_first_second =
        all.iter().filter(after).filter(|r| r.at - refused_at < Duration::from_secs(1)).count();
    let resumed = all.iter().filter(after).any(|r| r.at - refused_at >= Duration::from_secs(4));
    if !quiet.is_empty() || !resumed {
        stop_all(&mut children);
        panic!(
            "requests during the pause at {quiet:?} after the 429 (resumed: {resumed})\n{}",
            logs(dir.path())
        );
    }
    eprintln!(
        "requests in the first second after the 429 (before the pause reached all): {in_first_second}"
    );

    // 3. `status` names the runner holding `slow` (an hour-long sleep, claimed at start).
    let leases = store.leases().await.unwrap();
    let slow = leases.iter().find(|l| l.task == "slow" && !l.released).cloned();
    let Some(slow) = slow else {
        stop_all(&mut children);
        panic!("nobody holds slow: {leases:?}\n{}", logs(dir.path()));
    };
    let status = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("north.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        )
    });
    let task = report["tasks"].as_array().unwrap().iter().find(|t| t["name"] == "slow").unwrap();
    assert_eq!(task["runner"]["name"], slow.holder.name.as_str(), "{task}");
    assert_eq!(task["state"], "running", "{task}");
    assert!(!report["state"].as_str().unwrap().contains("password"));
    // `once` of a task another runner runs refuses, and says where it runs.
    let once = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("north.toml"))
        .args(["once", "slow"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&once.stderr);
    assert!(!once.status.success(), "{said}");
    assert!(
        said.contains(&format!("slow is running in the runner {}", slow.holder.name)),
        "{said}"
    );

    // 4. Its runner SIGKILLed: another takes `slow` over within about one lease.
    let holder = slow.holder.name.clone();
    let index = children.iter().position(|(n, _)| *n == holder).unwrap();
    let (_, mut killed) = children.remove(index);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let killed_at = clock.wall();
    let started = clock.now();
    let taken = loop {
        let runs = store.runs("slow", 10).await.unwrap();
        if let Some(run) = runs.iter().find(|r| r.started_at > killed_at) {
            break run.clone();
        }
        if (clock.now() - started) > Duration::from_secs(LEASE_SECS * 5 + 5) {
            stop_all(&mut children);
            panic!("nobody took slow over\n{}", logs(dir.path()));
        }
        clock.sleep(Duration::from_millis(20)).await;
    };
    let takeover = taken.started_at.duration_since(killed_at);
    eprintln!("takeover after the kill: {takeover:#} (lease {LEASE_SECS}s)");
    let runner = taken.runner.clone().unwrap_or_default();
    assert_ne!(runner, holder);
    let runner: &str = RUNNERS.iter().find(|n| **n == runner).unwrap();
    let runs = store.runs("slow", 10).await.unwrap();
    let old = runs.iter().find(|r| r.runner.as_deref() == Some(holder.as_str())).unwrap();
    let end = old.end.as_ref().expect("the killed run is marked");
    assert_eq!(end.outcome.as_str(), "abandoned", "{end:?}");
    if takeover > jiff::SignedDuration::from_secs(i64::try_from(LEASE_SECS).unwrap() * 2 + 2) {
        stop_all(&mut children);
        panic!("takeover took {takeover:#}\n{}", logs(dir.path()));
    }

    // 5. The new holder frozen (SIGSTOP: alive, silent, as a machine cut off): the last runner
    //    waits for its lease to run out, then takes over; thawed, the frozen one finds its lease
    //    gone and stops its run without touching the task's state.
    let frozen = runner;
    let index = children.iter().position(|(n, _)| *n == frozen).unwrap();
    let pid = children[index].1.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let frozen_at = clock.wall();
    let started = clock.now();
    let second = loop {
        let runs = store.runs("slow", 10).await.unwrap();
        if let Some(run) = runs.iter().find(|r| r.started_at > frozen_at) {
            break run.clone();
        }
        if (clock.now() - started) > Duration::from_secs(LEASE_SECS * 5 + 5) {
            Command::new("kill").args(["-CONT", &pid]).status().unwrap();
            stop_all(&mut children);
            panic!("nobody took slow over from the frozen runner\n{}", logs(dir.path()));
        }
        clock.sleep(Duration::from_millis(20)).await;
    };
    let expiry_takeover = second.started_at.duration_since(frozen_at);
    eprintln!("takeover from a frozen runner: {expiry_takeover:#} (lease {LEASE_SECS}s)");
    assert_ne!(second.runner.as_deref(), Some(frozen));
    assert!(
        expiry_takeover >= jiff::SignedDuration::from_millis(500),
        "a live runner's lease was taken before it ran out: {expiry_takeover:#}"
    );
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let log = dir.path().join(format!("{frozen}.log"));
    let started = clock.now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("did not renew its claim") {
        if (clock.now() - started) > Duration::from_secs(10) {
            stop_all(&mut children);
            panic!("the thawed runner never noticed\n{}", logs(dir.path()));
        }
        clock.sleep(Duration::from_millis(20)).await;
    }
    clock.sleep(Duration::from_millis(500)).await;
    let leases = store.leases().await.unwrap();
    let slow = leases.iter().find(|l| l.task == "slow").unwrap();
    assert_eq!(slow.holder.name, second.runner.clone().unwrap(), "{leases:?}");
    let state = store.task_state("slow").await.unwrap().unwrap();
    assert_eq!(state.state.as_str(), "running", "the thawed runner left the state alone");
    stop_all(&mut children);
    drop(server);
}
