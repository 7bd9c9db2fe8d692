//! A task's settings: which mail to watch, how fast, and the rules.
//!
//! Everything is checked while the file is read, so `unattended check` points at the line and
//! column of a bad regular expression, label, URL or number, and at the rule of a rule-level
//! mistake (no action, a label both added and removed, a name used twice).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use regex::Regex;
use serde::{Deserialize, Deserializer, de};

use crate::api::MessageSummary;

/// The settings of an `engine = "email"` task (the task table's own keys).
///
/// ```toml
/// [tasks.mail]
/// engine = "email"
/// every = "5m"
/// label = "INBOX"              # the mail watched (a label id; default INBOX)
/// quota_per_minute = 6000      # Gmail quota units spent per minute at most
///
/// [[tasks.mail.rules]]
/// name = "invoices"
/// from = '(?i)@billing\.example\.com>?$'
/// subject = "(?i)invoice"
/// has_attachment = true
/// max_age = "72h"
/// add_labels = ["Label_12"]
/// remove_labels = ["UNREAD"]
/// webhook = "https://hooks.example.com/mail"
/// jsonl = "invoices.jsonl"
/// command = ["/usr/local/bin/file-invoice", "--quiet"]
/// ```
#[derive(Debug, Deserialize)]
#[serde(from = "RawSettings")]
pub struct EmailSettings {
    pub(crate) label: String,
    pub(crate) resync_limit: u32,
    pub(crate) quota_per_minute: u32,
    pub(crate) page_size: u32,
    pub(crate) command_timeout: Duration,
    pub(crate) rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    /// The label whose new mail is watched (default `INBOX`).
    #[serde(default = "inbox", deserialize_with = "label_id")]
    label: String,
    /// How many of the newest messages a full resync looks at when history has run out
    /// (default 500).
    #[serde(default = "default_resync_limit", deserialize_with = "bounded::<_, 1, 100_000>")]
    resync_limit: u32,
    /// Quota units spent per minute at most (default 6,000; Gmail's per-user limit is 15,000
    /// in some of its documents and 6,000 in others).
    #[serde(default = "default_quota", deserialize_with = "bounded::<_, 10, 1_000_000>")]
    quota_per_minute: u32,
    /// Records or messages per page (default 100, Gmail allows up to 500).
    #[serde(default = "default_page_size", deserialize_with = "bounded::<_, 1, 500>")]
    page_size: u32,
    /// How long a rule's command may run before it is killed (default 60 s).
    #[serde(default = "default_command_timeout", deserialize_with = "positive")]
    command_timeout: Duration,
    /// The rules, tried in order; each that matches acts (`[[tasks.NAME.rules]]`).
    #[serde(deserialize_with = "rules")]
    rules: Vec<Rule>,
}

fn inbox() -> String {
    "INBOX".to_owned()
}

const fn default_resync_limit() -> u32 {
    500
}

const fn default_quota() -> u32 {
    6_000
}

const fn default_page_size() -> u32 {
    100
}

const fn default_command_timeout() -> Duration {
    Duration::from_secs(60)
}

impl From<RawSettings> for EmailSettings {
    fn from(raw: RawSettings) -> Self {
        Self {
            label: raw.label,
            resync_limit: raw.resync_limit,
            quota_per_minute: raw.quota_per_minute,
            page_size: raw.page_size,
            command_timeout: raw.command_timeout,
            rules: raw.rules,
        }
    }
}

/// The rules, checked as a list (so a mistake points at it): at least one, names unique.
fn rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
    let rules = Vec::<Rule>::deserialize(d)?;
    if rules.is_empty() {
        return Err(de::Error::custom("needs at least one rule"));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rules[..i].iter().any(|r| r.name == rule.name) {
            return Err(de::Error::custom(format!(
                "two rules are named {:?}: names key what was done, so each must be unique",
                rule.name
            )));
        }
    }
    Ok(rules)
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let d = unattended_client::duration::deserialize(d)?;
    if d.is_zero() {
        return Err(de::Error::custom("must be more than zero"));
    }
    Ok(d)
}

/// One rule: what a message must be, and what is done with it.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawRule")]
pub(crate) struct Rule {
    pub(crate) name: String,
    from: Option<Pattern>,
    subject: Option<Pattern>,
    labels: Vec<String>,
    has_attachment: Option<bool>,
    max_age: Option<Duration>,
    pub(crate) actions: Vec<Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(deserialize_with = "rule_name")]
    name: String,
    #[serde(default)]
    from: Option<Pattern>,
    #[serde(default)]
    subject: Option<Pattern>,
    #[serde(default, deserialize_with = "label_ids")]
    labels: Vec<String>,
    #[serde(default)]
    has_attachment: Option<bool>,
    #[serde(default, with = "unattended_client::opt_duration")]
    max_age: Option<Duration>,
    #[serde(default, deserialize_with = "label_ids")]
    add_labels: Vec<String>,
    #[serde(default, deserialize_with = "label_ids")]
    remove_labels: Vec<String>,
    #[serde(default, deserialize_with = "webhook_url")]
    webhook: Option<http::Uri>,
    #[serde(default)]
    jsonl: Option<PathBuf>,
    #[serde(default, deserialize_with = "command_line")]
    command: Option<Vec<String>>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        let name = raw.name;
        if let Some(both) = raw.add_labels.iter().find(|l| raw.remove_labels.contains(l)) {
            return Err(format!("rule {name:?} both adds and removes label {both:?}"));
        }
        let mut actions = Vec::new();
        if !raw.add_labels.is_empty() || !raw.remove_labels.is_empty() {
            actions.push(Action::Labels { add: raw.add_labels, remove: raw.remove_labels });
        }
        if let Some(url) = raw.webhook {
            actions.push(Action::Webhook(url));
        }
        if let Some(path) = raw.jsonl {
            if path.as_os_str().is_empty() {
                return Err(format!("rule {name:?}: `jsonl` names no file"));
            }
            actions.push(Action::Jsonl(path));
        }
        if let Some(argv) = raw.command {
            actions.push(Action::Command(argv));
        }
        if actions.is_empty() {
            return Err(format!(
                "rule {name:?} does nothing: give it `add_labels`, `remove_labels`, `webhook`, \
                 `jsonl` or `command`"
            ));
        }
        Ok(Self {
            name,
            from: raw.from,
            subject: raw.subject,
            labels: raw.labels,
            has_attachment: raw.has_attachment,
            max_age: raw.max_age,
            actions,
        })
    }
}

impl Rule {
    /// Whether `message`, looked at `now`, is one this rule acts on: every condition it sets
    /// holds (a rule without conditions matches every message).
    pub(crate) fn matches(&self, message: &MessageSummary, now: Timestamp) -> bool {
        let young = || {
            self.max_age.is_none_or(|max| {
                unattended_core::clock::duration_between(message.received, now) <= max
            })
        };
        self.from.as_ref().is_none_or(|p| p.0.is_match(&message.from))
            && self.subject.as_ref().is_none_or(|p| p.0.is_match(&message.subject))
            && self.labels.iter().all(|l| message.labels.contains(l))
            && self.has_attachment.is_none_or(|want| want == message.has_attachment)
            && young()
    }
}

/// What a rule does with a message it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `messages.modify`: add and remove label ids.
    Labels { add: Vec<String>, remove: Vec<String> },
    /// POST the summary as JSON.
    Webhook(http::Uri),
    /// Append the summary as one JSON line (relative to the config file until the engine is
    /// made, then resolved).
    Jsonl(PathBuf),
    /// Run a program (no shell) with the summary on stdin.
    Command(Vec<String>),
}

impl Action {
    /// The action's name in the action log's keys.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Labels { .. } => "labels",
            Self::Webhook(_) => "webhook",
            Self::Jsonl(_) => "jsonl",
            Self::Command(_) => "command",
        }
    }
}

/// A regular expression, compiled when the file is read.
pub(crate) struct Pattern(Regex);

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.0.as_str()).finish()
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // A pattern of a megabyte is a mistake, not a rule; the regex crate's size limit bounds
        // the compiled form too.
        Regex::new(&text).map(Pattern).map_err(|e| {
            de::Error::custom(format!("{text:?} is not a regular expression: {}", one_line(&e)))
        })
    }
}

fn one_line(e: &regex::Error) -> String {
    e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn label_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if is_token(&text) {
        Ok(text)
    } else {
        Err(de::Error::custom(format!(
            "{text:?} is not a label id: ids are like \"INBOX\", \"UNREAD\" or \"Label_12\" (a \
             label's own name is not its id)"
        )))
    }
}

fn label_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Id(#[serde(deserialize_with = "label_id")] String);
    Ok(Vec::<Id>::deserialize(d)?.into_iter().map(|id| id.0).collect())
}

fn rule_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if is_token(&text) && text.len() <= 64 {
        Ok(text)
    } else {
        Err(de::Error::custom(format!(
            "rule name {text:?}: use 1 to 64 letters, digits, `_` or `-` (it keys the action log)"
        )))
    }
}

fn webhook_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<http::Uri>, D::Error> {
    let text = String::deserialize(d)?;
    let uri: http::Uri = text
        .parse()
        .map_err(|e| de::Error::custom(format!("`webhook` {text:?} is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(Some(uri)),
        _ => Err(de::Error::custom(format!(
            "`webhook` {text:?} must be an http:// or https:// URL with a host"
        ))),
    }
}

fn command_line<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let argv = Vec::<String>::deserialize(d)?;
    match argv.first() {
        Some(program) if !program.is_empty() => Ok(Some(argv)),
        _ => Err(de::Error::custom(
            "`command` is a program and its arguments, as a list: [\"/usr/bin/prog\", \"--flag\"]",
        )),
    }
}

fn bounded<'de, D: Deserializer<'de>, const MIN: u32, const MAX: u32>(
    d: D,
) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    match u32::try_from(n) {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
        _ => Err(de::Error::custom(format!("{n} is out of range: from {MIN} to {MAX}"))),
    }
}
