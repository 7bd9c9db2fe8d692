//! A run killed between an action and its record, then a new runner on the same store: what
//! each kind of action does then is what the crate documents, and nothing else repeats.

mod support;

use std::time::Duration;

use http::Method;
use serde_json::json;
use support::World;
use unattended_store::RunOutcome;

/// `max_runtime` shorter than the clients' attempt timeouts: a request left unanswered is a
/// run killed after the request took effect and before its answer was recorded.
const TASK: &str = "max_runtime = \"5s\"";

const RULES: &str = r#"
[[tasks.mail.rules]]
name = "all"
add_labels = ["Label_1"]
webhook = "https://hooks.example.com/mail"
jsonl = "mail.jsonl"
"#;

async fn three_new(w: &World) -> Vec<String> {
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&World::config_text(TASK, RULES)).await;
    World::once(&mut runner).await;
    (0..3).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect()
}

#[tokio::test(start_paused = true)]
async fn a_webhook_killed_after_its_post_arrived_is_posted_again_with_the_same_key() {
    let w = World::new(11);
    let new = three_new(&w).await;
    w.hooks_cut.cut(Method::POST, "/mail", 2);
    let mut runner = w.runner(&World::config_text(TASK, RULES)).await;
    let killed = World::once(&mut runner).await;
    assert_eq!(killed.end.outcome, RunOutcome::Failed, "{:?}", killed.end);
    assert!(killed.end.error.as_deref().unwrap().contains("max_runtime"), "{:?}", killed.end);
    drop(runner);

    // A new process on the same store.
    w.hooks_cut.clear();
    w.clock.sleep(Duration::from_secs(300)).await;
    let mut runner = w.runner(&World::config_text(TASK, RULES)).await;
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert_eq!(end.summary.as_deref(), Some("2 new message(s), 5 action(s) done, 0 pending"));

    let keys: Vec<String> = w.hooks.arrived().into_iter().map(|(k, _, _)| k).collect();
    let key = |id: &String| format!("mail/{id}/all/webhook");
    // At least once: the second message's POST arrived twice, with one key.
    assert_eq!(keys, [key(&new[0]), key(&new[1]), key(&new[1]), key(&new[2])]);
    // Labels were recorded before the webhook ran: not sent again. Nothing else repeats.
    assert!(new.iter().all(|id| w.modified(id) == 1));
    assert_eq!((w.fetched(&new[0]), w.fetched(&new[1]), w.fetched(&new[2])), (1, 2, 1));
    let lines: Vec<String> = w
        .jsonl_lines("mail.jsonl")
        .iter()
        .map(|l| l["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, new, "one line each");
}

#[tokio::test(start_paused = true)]
async fn labels_killed_after_gmail_applied_them_are_set_again_to_the_same_labels() {
    let w = World::new(12);
    let new = three_new(&w).await;
    w.gmail_cut.cut(Method::POST, "/gmail/v1/users/me/messages/", 2);
    let mut runner = w.runner(&World::config_text(TASK, RULES)).await;
    let killed = World::once(&mut runner).await;
    assert_eq!(killed.end.outcome, RunOutcome::Failed, "{:?}", killed.end);
    assert!(killed.end.error.as_deref().unwrap().contains("max_runtime"), "{:?}", killed.end);
    assert_eq!(w.gmail.labels_of(&new[1]).unwrap(), ["INBOX", "UNREAD", "Label_1"], "applied");
    drop(runner);

    w.gmail_cut.clear();
    w.clock.sleep(Duration::from_secs(300)).await;
    let mut runner = w.runner(&World::config_text(TASK, RULES)).await;
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    // The request was repeated; its effect was not: the labels are as after one.
    assert_eq!((w.modified(&new[0]), w.modified(&new[1]), w.modified(&new[2])), (1, 2, 1));
    assert_eq!(w.gmail.labels_of(&new[1]).unwrap(), ["INBOX", "UNREAD", "Label_1"]);
    // The actions after it ran once.
    let hooked: Vec<String> = support::ids(&w.hooks.arrived());
    assert_eq!(hooked, new);
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 3);
}

const JSONL_ONLY: &str = r#"
[[tasks.mail.rules]]
name = "all"
jsonl = "mail.jsonl"
"#;

/// The store as a run killed during a JSON Lines append leaves it: the intent written (the
/// file's length before), no done record; and the file with `tail` after that length.
async fn killed_during_append(w: &World, tail: &str) -> String {
    let mut runner = w.runner(&World::config_text("", JSONL_ONLY)).await;
    World::once(&mut runner).await;
    let id = w.gmail.deliver("a@example.com", "x");
    let path = w.dir.path().join("mail.jsonl");
    std::fs::write(&path, "{\"key\":\"someone else's line\"}\n").unwrap();
    let offset = std::fs::metadata(&path).unwrap().len();
    let key = format!("{id}/all/jsonl");
    runner.store().put_entry("mail", "intent", &key, &json!({"offset": offset})).await.unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&tail.replace("ID", &id));
    std::fs::write(&path, text).unwrap();
    id
}

#[tokio::test(start_paused = true)]
async fn a_jsonl_line_written_before_the_kill_is_not_written_again() {
    let w = World::new(13);
    let id =
        killed_during_append(&w, "{\"key\":\"mail/ID/all/jsonl\",\"message\":{\"id\":\"ID\"}}\n")
            .await;
    let mut runner = w.runner(&World::config_text("", JSONL_ONLY)).await;
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    let lines = w.jsonl_lines("mail.jsonl");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["key"], format!("mail/{id}/all/jsonl"));
    let key = format!("{id}/all/jsonl");
    let intent = runner.store().entry::<serde_json::Value>("mail", "intent", &key).await;
    assert_eq!(intent.unwrap(), None, "the intent goes with the done record");
}

#[tokio::test(start_paused = true)]
async fn a_torn_jsonl_line_is_cut_and_written_whole_once() {
    let w = World::new(14);
    let id = killed_during_append(&w, "{\"key\":\"mail/ID/all/js").await;
    let mut runner = w.runner(&World::config_text("", JSONL_ONLY)).await;
    assert_eq!(World::once(&mut runner).await.end.outcome, RunOutcome::Succeeded);
    let lines = w.jsonl_lines("mail.jsonl");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["message"]["id"], id.as_str(), "the whole delivery");
    World::once(&mut runner).await;
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_jsonl_line_not_yet_written_at_the_kill_is_written_once() {
    let w = World::new(15);
    let id = killed_during_append(&w, "").await;
    let mut runner = w.runner(&World::config_text("", JSONL_ONLY)).await;
    assert_eq!(World::once(&mut runner).await.end.outcome, RunOutcome::Succeeded);
    let lines = w.jsonl_lines("mail.jsonl");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["message"]["id"], id.as_str());
}
