//! The command action, in real time (a child process and a paused clock do not mix): the
//! delivery on stdin, the key in the environment, a failure retried next run (at least once),
//! a command past its timeout killed and retried.

mod support;

use support::World;
use unattended_core::Clock;
use unattended_store::RunOutcome;

fn rules(script: &str) -> String {
    format!("[[tasks.mail.rules]]\nname = \"run\"\ncommand = [\"sh\", \"-c\", '''{script}''']\n")
}

#[tokio::test]
async fn a_failed_command_is_run_again_next_run_with_the_same_key() {
    let w = World::with_clock(Clock::system(), 31);
    let dir = w.dir.path().display().to_string();
    // Fails the first time it is ever run, then succeeds.
    let script = format!(
        "cat >> {dir}/in.jsonl; echo >> {dir}/in.jsonl; echo \"$UNATTENDED_IDEMPOTENCY_KEY $UNATTENDED_MESSAGE_ID\" >> {dir}/keys; \
         [ -e {dir}/flag ] || {{ touch {dir}/flag; echo 'not yet' >&2; exit 3; }}"
    );
    let text = World::config_text("", &rules(&script));
    let mut runner = w.runner(&text).await;
    World::once(&mut runner).await;
    let a = w.gmail.deliver("a@example.com", "one");
    let b = w.gmail.deliver("a@example.com", "two");
    let first = World::once(&mut runner).await.end;
    assert_eq!(first.outcome, RunOutcome::Degraded, "{first:?}");
    assert_eq!(first.summary.as_deref(), Some("2 new message(s), 1 action(s) done, 1 pending"));
    let second = World::once(&mut runner).await.end;
    assert_eq!(second.outcome, RunOutcome::Succeeded, "{second:?}");
    assert_eq!(second.summary.as_deref(), Some("0 new message(s), 1 action(s) done, 0 pending"));
    World::once(&mut runner).await;

    let keys = std::fs::read_to_string(w.dir.path().join("keys")).unwrap();
    let key = |id: &str| format!("mail/{id}/run/command {id}");
    assert_eq!(keys.lines().collect::<Vec<_>>(), [key(&a), key(&b), key(&a)], "at least once");
    let inputs: Vec<serde_json::Value> = std::fs::read_to_string(w.dir.path().join("in.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(inputs.len(), 3);
    assert_eq!(inputs[1]["message"]["subject"], "two");
    assert_eq!(inputs[1]["rule"], "run");
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_kept_pending() {
    let w = World::with_clock(Clock::system(), 32);
    let text = World::config_text("command_timeout = \"300ms\"", &rules("sleep 30"));
    let mut runner = w.runner(&text).await;
    World::once(&mut runner).await;
    w.gmail.deliver("a@example.com", "one");
    let started = w.clock.now();
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Degraded, "{end:?}");
    assert!(w.clock.now() - started < std::time::Duration::from_secs(20), "killed, not waited for");
    let pending =
        runner.store().entries::<serde_json::Value>("mail", "pending", None, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].value["last_error"].as_str().unwrap().contains("killed"),
        "{:?}",
        pending[0].value
    );
}

#[tokio::test]
async fn a_command_that_does_not_exist_stops_the_task() {
    let w = World::with_clock(Clock::system(), 33);
    let text = World::config_text(
        "",
        "[[tasks.mail.rules]]\nname = \"run\"\ncommand = [\"/nonexistent/program\"]\n",
    );
    let mut runner = w.runner(&text).await;
    World::once(&mut runner).await;
    w.gmail.deliver("a@example.com", "one");
    let out = World::once(&mut runner).await;
    assert_eq!(out.state, unattended_store::TaskState::Disabled, "{:?}", out.end);
    assert!(out.end.error.unwrap().contains("/nonexistent/program"));
}
