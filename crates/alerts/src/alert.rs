//! What an alert says, and its JSON shape.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;
use unattended_store::{AlertId, AlertKind, AlertRecord};

/// The version of the JSON shape ([`Alert::to_json`]); raised only when a field changes meaning
/// or goes away (new fields may be added without it).
pub const JSON_VERSION: u32 = 1;

/// What to tell a human: the part of an alert the caller writes.
///
/// ```
/// use unattended_alerts::Notice;
///
/// let notice = Notice::new("upload cannot sign in to YouTube", "the refresh token was revoked")
///     .task("upload")
///     .help("run `unattended auth google`, then `unattended reset upload`");
/// assert_eq!(notice.task.as_deref(), Some("upload"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// The task it is about, if any.
    pub task: Option<String>,
    /// One line.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// What the human should do, if anything.
    pub help: Option<String>,
}

impl Notice {
    /// A notice with a one-line `title` and a `detail`, about no task, with no help.
    pub fn new(title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { task: None, title: title.into(), detail: detail.into(), help: None }
    }

    /// About `task`.
    #[must_use]
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// What the human should do.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// An alert, as written to the store and handed to each sink.
///
/// # JSON
///
/// [`to_json`](Self::to_json) (and `Serialize`) gives this shape, version [`JSON_VERSION`]; the
/// webhook sink posts it, the command sink writes it on standard input:
///
/// ```json
/// {
///   "version": 1,
///   "id": 42,
///   "incident": "task:upload:auth",
///   "kind": "raised",
///   "task": "upload",
///   "title": "upload cannot sign in to YouTube",
///   "detail": "the refresh token was revoked",
///   "help": "run `unattended auth google`",
///   "at": "2026-11-28T10:00:00Z",
///   "text": "[raised] upload cannot sign in to YouTube\nthe refresh token was revoked\nWhat to do: run `unattended auth google`"
/// }
/// ```
///
/// - `id`: increases with time; a receiver can drop an `id` it has seen (a delivery cut short
///   by a crash is sent again) and order alerts by it.
/// - `incident`: the key of the incident; a `raised` alert opens it, one `recovered` alert
///   with the same key closes it.
/// - `kind`: `"raised"` or `"recovered"`.
/// - `task`, `help`: `null` when there is none.
/// - `at`: when it was raised, RFC 3339 in UTC.
/// - `text`: all of it in a few lines (see [`text`](Self::text)), for chat webhooks that show
///   a `text` field (Slack, Mattermost).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alert {
    /// Its id in the store.
    pub id: AlertId,
    /// The incident it opens or closes.
    pub incident: String,
    /// Opens (`Raised`) or closes (`Recovered`) the incident.
    pub kind: AlertKind,
    /// The task it is about, if any.
    pub task: Option<String>,
    /// One line.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// What the human should do, if anything.
    pub help: Option<String>,
    /// When it was raised (the outbox's clock).
    pub at: Timestamp,
}

impl Alert {
    /// The alert as JSON (the shape in the type's docs).
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing these plain fields cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The alert in a few lines: `[raised] title`, then the detail, then `What to do: help`
    /// when there is help.
    pub fn text(&self) -> String {
        let mut text = format!("[{}] {}\n{}", self.kind, self.title, self.detail);
        if let Some(help) = &self.help {
            let _ = write!(text, "\nWhat to do: {help}");
        }
        text
    }
}

impl From<AlertRecord> for Alert {
    fn from(r: AlertRecord) -> Self {
        Self {
            id: r.id,
            incident: r.incident,
            kind: r.kind,
            task: r.task,
            title: r.title,
            detail: r.detail,
            help: r.help,
            at: r.created_at,
        }
    }
}

#[derive(Serialize)]
struct Json<'a> {
    version: u32,
    id: i64,
    incident: &'a str,
    kind: &'static str,
    task: Option<&'a str>,
    title: &'a str,
    detail: &'a str,
    help: Option<&'a str>,
    at: String,
    text: String,
}

impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Json {
            version: JSON_VERSION,
            id: self.id.0,
            incident: &self.incident,
            kind: self.kind.as_str(),
            task: self.task.as_deref(),
            title: &self.title,
            detail: &self.detail,
            help: self.help.as_deref(),
            at: self.at.to_string(),
            text: self.text(),
        }
        .serialize(s)
    }
}
