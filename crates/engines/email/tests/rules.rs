//! Rules: sender and subject by regular expression, labels, an attachment, age; each rule that
//! matches acts, each on its own.

mod support;

use std::time::Duration;

use support::World;
use unattended_store::RunOutcome;
use unattended_testkit::gmail::NewMail;

const RULES: &str = r#"
[[tasks.mail.rules]]
name = "invoices"
from = '(?i)@billing\.example\.com>?$'
has_attachment = true
add_labels = ["Label_1"]

[[tasks.mail.rules]]
name = "urgent"
subject = "(?i)\\burgent\\b"
labels = ["IMPORTANT"]
add_labels = ["STARRED"]

[[tasks.mail.rules]]
name = "fresh"
max_age = "1h"
remove_labels = ["UNREAD"]
"#;

#[tokio::test(start_paused = true)]
async fn each_rule_acts_on_the_messages_it_matches() {
    let w = World::new(21);
    w.gmail.create_label("Invoices");
    let mut runner = w.runner(&World::config_text("", RULES)).await;
    World::once(&mut runner).await;
    let mail = |from: &str, subject: &str, labels: &[&str], attachment: bool| {
        w.gmail.deliver_mail(NewMail::new(from, subject).labels(labels).attachment(attachment))
    };
    let inbox = ["INBOX", "UNREAD"];
    let invoice = mail("Billing <invoices@billing.example.com>", "Your invoice", &inbox, true);
    let no_pdf = mail("Billing <invoices@billing.example.com>", "Your invoice", &inbox, false);
    let other = mail("Someone <x@billing.example.com.evil>", "Invoice", &inbox, true);
    let urgent =
        mail("boss@example.com", "URGENT: call me", &["INBOX", "UNREAD", "IMPORTANT"], false);
    let not_important = mail("boss@example.com", "urgent", &inbox, false);
    let word = mail("boss@example.com", "insurgent", &["INBOX", "UNREAD", "IMPORTANT"], false);
    // Two hours pass before the run: nothing is fresh any more.
    w.clock.sleep(Duration::from_secs(2 * 3600)).await;
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    let labels = |id: &str| w.gmail.labels_of(id).unwrap();
    assert_eq!(labels(&invoice), ["INBOX", "UNREAD", "Label_1"]);
    assert_eq!(labels(&no_pdf), inbox, "no attachment");
    assert_eq!(labels(&other), inbox, "not billing.example.com");
    assert_eq!(labels(&urgent), ["INBOX", "UNREAD", "IMPORTANT", "STARRED"]);
    assert_eq!(labels(&not_important), inbox, "not IMPORTANT");
    assert_eq!(labels(&word), ["INBOX", "UNREAD", "IMPORTANT"], "a word, not a part of one");

    // A fresh message gets every rule it matches.
    let fresh = mail(
        "Billing <invoices@billing.example.com>",
        "urgent invoice",
        &["INBOX", "UNREAD", "IMPORTANT"],
        true,
    );
    w.clock.sleep(Duration::from_secs(60)).await;
    World::once(&mut runner).await;
    assert_eq!(labels(&fresh), ["INBOX", "IMPORTANT", "Label_1", "STARRED"]);
    let seen =
        runner.store().entry::<serde_json::Value>("mail", "seen", &fresh).await.unwrap().unwrap();
    assert_eq!(seen.value["rules"], serde_json::json!(["invoices", "urgent", "fresh"]));
}
