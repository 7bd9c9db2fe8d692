//! `unattended check` on email tasks: every mistake in a task's settings is reported with its
//! line and column; a good task reads with the engine's service defaults under it.

use unattended_runner::{ConfigError, RunnerConfig};

fn parse(text: &str) -> Result<RunnerConfig, ConfigError> {
    RunnerConfig::parse(text, "/etc/unattended/unattended.toml", &unattended_engine_email::kinds())
}

/// The one mistake of `task` (a task table and its rules), with its place.
fn mistake(task: &str) -> ((usize, usize), String) {
    let text = format!("[tasks.mail]\nengine = \"email\"\nevery = \"5m\"\n{task}");
    let err = parse(&text).expect_err("a mistake");
    let places = err.places();
    assert_eq!(places.len(), 1, "one mistake: {err}");
    (places[0], err.to_string())
}

const RULE: &str = "\n[[tasks.mail.rules]]\nname = \"r\"\n";

#[test]
fn a_bad_regular_expression_is_pointed_at() {
    let (place, shown) =
        mistake(&format!("{RULE}from = \"(unclosed\"\nadd_labels = [\"STARRED\"]\n"));
    assert_eq!(place, (7, 8), "{shown}");
    assert!(shown.contains("\"(unclosed\" is not a regular expression"), "{shown}");
    assert!(shown.contains("unattended.toml:7:8"), "{shown}");
}

#[test]
fn unknown_keys_bad_labels_urls_commands_and_numbers_are_pointed_at() {
    let cases: [(&str, (usize, usize), &str); 7] = [
        ("form = \"x\"\nadd_labels = [\"STARRED\"]\n", (7, 1), "unknown field `form`"),
        ("add_labels = [\"My Receipts\"]\n", (7, 15), "is not a label id"),
        ("webhook = \"ftp://example.com/x\"\n", (7, 11), "must be an http:// or https:// URL"),
        ("command = []\n", (7, 11), "a program and its arguments"),
        ("max_age = \"a week\"\nadd_labels = [\"STARRED\"]\n", (7, 11), "is not a duration"),
        ("name = \"two words\"\n", (7, 8), "rule name \"two words\""),
        ("has_attachment = \"yes\"\nadd_labels = [\"STARRED\"]\n", (7, 18), "invalid type"),
    ];
    for (rule, want, text) in cases {
        let rule = if rule.starts_with("name") {
            format!("\n[[tasks.mail.rules]]\n{rule}jsonl = \"x\"\n")
        } else {
            format!("{RULE}{rule}")
        };
        let (place, shown) = mistake(&rule);
        // A rule's name line shifts by one when the case sets it itself.
        let want = if rule.contains("two words") { (6, 8) } else { want };
        assert_eq!(place, want, "{rule}: {shown}");
        assert!(shown.contains(text), "{rule}: {shown}");
    }
    let (place, shown) = mistake(&format!("page_size = 0\n{RULE}jsonl = \"x\"\n"));
    assert_eq!(place, (4, 13), "{shown}");
    assert!(shown.contains("0 is out of range: from 1 to 500"), "{shown}");
}

#[test]
fn rule_level_mistakes_point_at_the_rule_and_list_level_ones_at_the_list() {
    let (place, shown) = mistake(RULE);
    assert_eq!(place.0, 5, "the rule's table: {shown}");
    assert!(shown.contains("rule \"r\" does nothing"), "{shown}");

    let (place, shown) =
        mistake(&format!("{RULE}add_labels = [\"UNREAD\"]\nremove_labels = [\"UNREAD\"]\n"));
    assert_eq!(place.0, 5, "{shown}");
    assert!(shown.contains("both adds and removes label \"UNREAD\""), "{shown}");

    let (place, shown) = mistake(&format!("{RULE}jsonl = \"a\"\n{RULE}jsonl = \"b\"\n"));
    assert_eq!(place.0, 5, "the rules: {shown}");
    assert!(shown.contains("two rules are named \"r\""), "{shown}");

    let (place, shown) = mistake("");
    assert_eq!(place.0, 1, "the task: {shown}");
    assert!(shown.contains("missing field `rules`"), "{shown}");
    let (place, shown) = mistake("rules = []\n");
    assert_eq!(place, (4, 9), "{shown}");
    assert!(shown.contains("needs at least one rule"), "{shown}");
}

#[test]
fn a_good_task_reads_with_the_engine_service_defaults() {
    let text = r#"
[services.gmail]
[services.gmail.timeouts]
attempt = "45s"

[tasks.mail]
engine = "email"
every = "5m"
label = "Label_3"
quota_per_minute = 250

[[tasks.mail.rules]]
name = "invoices"
from = '(?i)@billing\.example\.com>?$'
subject = "(?i)invoice"
labels = ["INBOX"]
has_attachment = true
max_age = "72h"
add_labels = ["Label_12"]
remove_labels = ["UNREAD"]
webhook = "https://hooks.example.com/mail"
jsonl = "invoices.jsonl"
command = ["/usr/local/bin/file-invoice", "--quiet"]
"#;
    let config = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let gmail = &config.services["gmail"];
    assert_eq!(gmail.config.base_url.as_deref(), Some("https://gmail.googleapis.com"));
    assert_eq!(
        gmail.config.timeouts.attempt,
        std::time::Duration::from_secs(45),
        "the file's key wins"
    );
    let oauth = gmail.oauth.as_ref().expect("google oauth by default");
    assert_eq!(
        (oauth.client_id_env.as_str(), oauth.client_secret_env.as_str()),
        ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET")
    );
    assert_eq!(oauth.scopes, ["https://www.googleapis.com/auth/gmail.modify"]);
    assert!(config.services["webhook"].oauth.is_none());
    assert_eq!(config.services["webhook"].config.retry.max_attempts, 3);
}
