//! The command sink with real processes (`sh -c`), in real time: the alert in the environment
//! and on stdin, a failing exit recorded with its stderr, a timeout, a program that is missing.

mod support;

use std::path::Path;
use std::time::Duration;

use unattended_alerts::{AlertsConfig, CommandConfig, Notice, Outbox};
use unattended_core::Clock;

async fn outbox(dir: &Path, commands: Vec<CommandConfig>) -> Outbox {
    let store = support::open(&dir.join("s.db"), Clock::system()).await;
    let mut config = AlertsConfig::default();
    config.log = false;
    config.command = commands;
    Outbox::builder(store).config(config).build().unwrap()
}

fn sh(script: &str, args: &[&str]) -> CommandConfig {
    let mut all = vec!["-c", script, "sh"];
    all.extend_from_slice(args);
    CommandConfig::new("sh", all)
}

#[tokio::test]
async fn the_command_gets_the_alert_in_its_environment_and_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let script = r#"printf '%s\n' "$UNATTENDED_ALERT_ID" "$UNATTENDED_ALERT_INCIDENT" \
        "$UNATTENDED_ALERT_KIND" "[$UNATTENDED_ALERT_TASK]" "$UNATTENDED_ALERT_TITLE" \
        "$UNATTENDED_ALERT_DETAIL" "$UNATTENDED_ALERT_HELP" "$UNATTENDED_ALERT_AT" \
        "$UNATTENDED_ALERT_TEXT" > "$1/env"; cat > "$1/stdin""#;
    let outbox = outbox(dir.path(), vec![sh(script, &[out])]).await;
    assert_eq!(outbox.sinks().collect::<Vec<_>>(), ["command:0"]);
    let notice = Notice::new("upload is late", "no success for 2 h").help("look at the runs");
    let alert = outbox.raise("task:upload:late", notice).await.unwrap().unwrap();

    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 0));
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    let (id, at) = (alert.id.to_string(), alert.at.to_string());
    let expected = [
        id.as_str(),
        "task:upload:late",
        "raised",
        "[]",
        "upload is late",
        "no success for 2 h",
        "look at the runs",
        at.as_str(),
        "[raised] upload is late",
        "no success for 2 h",
        "What to do: look at the runs",
    ];
    assert_eq!(env.lines().collect::<Vec<_>>(), expected);
    let stdin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stdin")).unwrap()).unwrap();
    assert_eq!(stdin, alert.to_json());
}

#[tokio::test]
async fn a_failing_command_is_a_failed_delivery_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo 'lots of noise' >&2; echo 'pager: no route to the service' >&2; exit 3";
    let outbox = outbox(dir.path(), vec![sh(script, &[]).name("pager")]).await;
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();

    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 1));
    let pending = outbox.undelivered().await.unwrap();
    assert_eq!((pending[0].delivery.sink.as_str(), pending[0].delivery.attempts), ("pager", 1));
    let error = pending[0].delivery.last_error.clone().unwrap();
    assert!(error.starts_with("sh failed (exit status: 3)"), "{error}");
    assert!(error.ends_with("lots of noise\npager: no route to the service"), "{error}");
    assert!(
        report.next_due.unwrap() > Clock::system().wall() + jiff::SignedDuration::from_secs(20)
    );
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = r#"echo $$ > "$1"; exec sleep 30"#;
    let slow = sh(script, &[pid_file.to_str().unwrap()]).timeout(Duration::from_millis(500));
    let outbox = outbox(dir.path(), vec![slow]).await;
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();
    let report = outbox.deliver_due().await.unwrap();
    assert_eq!(report.failed, 1);
    let error = outbox.undelivered().await.unwrap()[0].delivery.last_error.clone().unwrap();
    assert!(error.contains("did not finish within 500ms and was killed"), "{error}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    #[cfg(target_os = "linux")]
    assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "the process is gone");
}

#[tokio::test]
async fn a_missing_program_is_a_failed_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let missing = CommandConfig::new("/nonexistent/unattended-pager", Vec::<String>::new());
    let outbox = outbox(dir.path(), vec![missing]).await;
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap().failed, 1);
    let error = outbox.undelivered().await.unwrap()[0].delivery.last_error.clone().unwrap();
    assert!(error.starts_with("/nonexistent/unattended-pager could not be started"), "{error}");
}

#[test]
fn commands_read_from_toml() {
    let text = r#"
        [[command]]
        program = "/usr/local/bin/page-me"
        args = ["--urgent"]
        timeout = "3s"
        [[command]]
        name = "notify"
        program = "notify-send"
    "#;
    let config: AlertsConfig = toml::from_str(text).unwrap();
    assert_eq!(config.command[0].args, ["--urgent"]);
    assert_eq!(config.command[0].timeout, Duration::from_secs(3));
    assert_eq!(config.command[1].timeout, Duration::from_secs(10), "the default");
    assert_eq!(config.command[1].name.as_deref(), Some("notify"));
    let err = toml::from_str::<AlertsConfig>("[[command]]\nargs = []\n").unwrap_err().to_string();
    assert!(err.contains("program"), "{err}");
}
