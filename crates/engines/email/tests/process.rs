//! The `unattended-email` binary as a person runs it: `check` on a broken rule, and a process
//! killed (SIGKILL) after a webhook delivery arrived and before the process recorded it.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use http::Method;
use support::World;
use unattended_core::Clock;
use unattended_testkit::serve::serve;

const BIN: &str = env!("CARGO_BIN_EXE_unattended-email");

fn command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.arg("--config").arg(config).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test]
async fn check_points_at_a_broken_rule_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("unattended.toml");
    std::fs::write(
        &config,
        "[tasks.mail]\nengine = \"email\"\nevery = \"5m\"\n\n[[tasks.mail.rules]]\nname = \"r\"\n\
         from = \"(unclosed\"\nadd_labels = [\"STARRED\"]\n",
    )
    .unwrap();
    let out = output(command(&config, &["check"])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unattended.toml:7:8"), "{err}");
    assert!(err.contains("\"(unclosed\" is not a regular expression"), "{err}");

    let fixed = std::fs::read_to_string(&config).unwrap().replace("(unclosed", "example");
    std::fs::write(&config, fixed).unwrap();
    let out = output(command(&config, &["check"])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_after_a_webhook_arrived_posts_it_again_with_the_same_key_only() {
    let w = World::with_clock(Clock::system(), 51);
    let gmail = serve(w.gmail.clone()).await.unwrap();
    let token = serve(w.oauth.token_endpoint()).await.unwrap();
    // The second delivery is taken and never answered: the process waits there until killed.
    let hooks = serve(w.hooks_cut.clone()).await.unwrap();
    w.gmail.create_label("Receipts");
    let config = w.dir.path().join("unattended.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[state]
path = "state.db"

[services.gmail]
base_url = "{gmail}"
[services.gmail.oauth]
token_url = "{token}/token"
client_id_env = "{id}"
client_secret_env = "{secret}"

[tasks.mail]
engine = "email"
every = "5m"

[[tasks.mail.rules]]
name = "all"
add_labels = ["Label_1"]
webhook = "{hooks}/mail"
jsonl = "mail.jsonl"
"#,
            gmail = gmail.url(),
            token = token.url(),
            hooks = hooks.url(),
            id = support::CLIENT_ID_ENV,
            secret = support::CLIENT_SECRET_ENV,
        ),
    )
    .unwrap();
    // The refresh token `unattended auth google` would have saved.
    drop(w.store().await);
    let once = || command(&config, &["once", "mail"]);
    let first = output(once()).await;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let new: Vec<String> =
        (0..3).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();

    w.hooks_cut.cut(Method::POST, "/mail", 2);
    let mut child = once().spawn().unwrap();
    let start = w.clock.now();
    while w.hooks.arrived().len() < 2 {
        assert!(w.clock.now() - start < Duration::from_secs(30), "the second delivery never came");
        w.clock.sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no last save
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success());
    w.hooks_cut.clear();

    let again = output(once()).await;
    let (stdout, stderr) =
        (String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    assert!(again.status.success(), "{stdout}\n{stderr}");
    let keys: Vec<String> = w.hooks.arrived().into_iter().map(|(k, _, _)| k).collect();
    let key = |id: &String| format!("mail/{id}/all/webhook");
    // At least once: the delivery in flight arrived twice, with one key; the others once.
    assert_eq!(keys, [key(&new[0]), key(&new[1]), key(&new[1]), key(&new[2])]);
    // Labels are recorded before the webhook runs: set once each.
    assert!(new.iter().all(|id| w.modified(id) == 1), "labels set once each");
    let lines: Vec<String> = w
        .jsonl_lines("mail.jsonl")
        .iter()
        .map(|l| l["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, new, "one line each");
}
