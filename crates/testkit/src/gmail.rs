//! Gmail API v1: profile, messages, labels and history for incremental sync, with its quota.
//!
//! Facts followed: under `/gmail/v1/users/me/`, `profile` gives `emailAddress`,
//! `messagesTotal`, `threadsTotal`, `historyId`; `messages` lists `{id, threadId}` newest first
//! (`labelIds` filters, repeatable) with `nextPageToken` and `resultSizeEstimate`;
//! `messages/{id}` gives the message with its `historyId`, `labelIds`, `internalDate` (epoch ms,
//! as a string) and, by `format`: `minimal` no payload, `metadata` the top part's `mimeType` and
//! its headers (only those named by `metadataHeaders`, if any), `full` (the default) the parts
//! too; `POST messages/{id}/modify` with `{addLabelIds, removeLabelIds}` changes labels (an
//! unknown label is `400 invalidArgument`) and answers the message's `id`, `threadId`,
//! `labelIds`; `history?startHistoryId=` gives the records after it (`historyTypes` and
//! `labelId` filter them), in pages, and the current `historyId`; a `startHistoryId` older than
//! the records kept is `404` (do a full sync). History ids grow but are not contiguous; a label
//! change that changes nothing makes no record. Each call costs quota units (profile 1, history
//! 2, messages 5, modify 5); past the per-user limit per minute the answer is
//! `403 userRateLimitExceeded`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Method, Response, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::time::Instant;
use unattended_core::Clock;

use crate::body::MockBody;
use crate::fault::{Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;
use crate::oauth::GoogleOAuth;

/// Google's `403` for a user over the rate limit.
pub const USER_RATE_LIMIT_BODY: &str = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"User Rate Limit Exceeded"}],"code":403,"message":"User Rate Limit Exceeded"}}"#;

const NOT_FOUND_BODY: &str = r#"{"error":{"code":404,"message":"Requested entity was not found.","errors":[{"message":"Requested entity was not found.","domain":"global","reason":"notFound"}],"status":"NOT_FOUND"}}"#;

const PREFIX: &str = "/gmail/v1/users/me/";

/// The labels every mailbox has.
const SYSTEM_LABELS: [&str; 13] = [
    "INBOX",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "SENT",
    "DRAFT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

/// A message to deliver: who from, about what, with which labels and whether it carries an
/// attachment.
#[derive(Clone, Debug)]
pub struct NewMail {
    from: String,
    subject: String,
    labels: Vec<String>,
    attachment: bool,
}

impl NewMail {
    /// A message in the inbox, unread, without attachment.
    pub fn new(from: &str, subject: &str) -> Self {
        Self {
            from: from.to_owned(),
            subject: subject.to_owned(),
            labels: vec!["INBOX".to_owned(), "UNREAD".to_owned()],
            attachment: false,
        }
    }

    /// With these labels instead.
    #[must_use]
    pub fn labels(mut self, labels: &[&str]) -> Self {
        self.labels = labels.iter().map(|l| (*l).to_owned()).collect();
        self
    }

    /// With (or without) an attachment.
    #[must_use]
    pub fn attachment(mut self, attachment: bool) -> Self {
        self.attachment = attachment;
        self
    }
}

#[derive(Clone, Debug)]
struct Message {
    id: String,
    seq: u64,
    history_id: u64,
    from: String,
    subject: String,
    labels: Vec<String>,
    attachment: bool,
    internal_date: Timestamp,
    deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeKind {
    Added,
    Deleted,
    LabelAdded,
    LabelRemoved,
}

impl ChangeKind {
    fn type_name(self) -> &'static str {
        match self {
            Self::Added => "messageAdded",
            Self::Deleted => "messageDeleted",
            Self::LabelAdded => "labelAdded",
            Self::LabelRemoved => "labelRemoved",
        }
    }
}

/// One history record: what changed, and the message's labels just after.
#[derive(Clone, Debug)]
struct Change {
    id: u64,
    kind: ChangeKind,
    message: String,
    labels: Vec<String>,
    changed: Vec<String>,
}

#[derive(Debug)]
struct State {
    messages: Vec<Message>,
    history: Vec<Change>,
    user_labels: Vec<(String, String)>,
    history_id: u64,
    oldest_history: u64,
    units: VecDeque<(Instant, u32)>,
    units_per_minute: u32,
    rng: fastrand::Rng,
    /// History pages list the records up to the id of the listing's first page.
    snapshot_paging: bool,
}

impl State {
    fn step(&mut self) -> u64 {
        let step = self.rng.u64(1..=5);
        self.history_id += step;
        self.history_id
    }

    fn known_label(&self, id: &str) -> bool {
        SYSTEM_LABELS.contains(&id) || self.user_labels.iter().any(|(l, _)| l == id)
    }
}

/// The Gmail mock; clones share its state.
#[derive(Clone, Debug)]
pub struct Gmail {
    state: Arc<Mutex<State>>,
    core: MockCore,
    auth: Option<GoogleOAuth>,
}

impl Gmail {
    /// An empty mailbox at history id 1000, 15,000 units per minute; history steps and faults
    /// draw from `seed`.
    pub fn new(clock: Clock, seed: u64) -> Self {
        let state = State {
            messages: Vec::new(),
            history: Vec::new(),
            user_labels: Vec::new(),
            history_id: 1000,
            oldest_history: 1000,
            units: VecDeque::new(),
            units_per_minute: 15_000,
            rng: fastrand::Rng::with_seed(seed),
            snapshot_paging: false,
        };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, seed), auth: None }
    }

    /// Accepts only the access tokens `oauth` issued and that have not expired.
    #[must_use]
    pub fn with_auth(mut self, oauth: GoogleOAuth) -> Self {
        self.auth = Some(oauth);
        self
    }

    /// Sets the per-user quota units per minute.
    pub fn units_per_minute(&self, units: u32) -> &Self {
        self.state().units_per_minute = units;
        self
    }

    /// History listings become snapshots: every page of one listing holds only the records up
    /// to the mailbox's id when its first page was read, while each answer still gives the
    /// current `historyId` (Google does not document which way Gmail pages; a client must be
    /// right either way).
    pub fn snapshot_paging(&self, on: bool) -> &Self {
        self.state().snapshot_paging = on;
        self
    }

    /// A new message in the inbox, unread, without attachment, arrives; returns its id.
    pub fn deliver(&self, from: &str, subject: &str) -> String {
        self.deliver_mail(NewMail::new(from, subject))
    }

    /// `mail` arrives (dated now, on the clock); returns its id.
    pub fn deliver_mail(&self, mail: NewMail) -> String {
        let now = self.core.clock.wall();
        let mut state = self.state();
        let history_id = state.step();
        let id = format!("18c{history_id:013x}");
        let seq = state.messages.len() as u64;
        state.messages.push(Message {
            id: id.clone(),
            seq,
            history_id,
            from: mail.from,
            subject: mail.subject,
            labels: mail.labels.clone(),
            attachment: mail.attachment,
            internal_date: now,
            deleted: false,
        });
        state.history.push(Change {
            id: history_id,
            kind: ChangeKind::Added,
            message: id.clone(),
            labels: mail.labels,
            changed: Vec::new(),
        });
        id
    }

    /// Creates a user label; returns its id (`Label_1`, `Label_2`...).
    pub fn create_label(&self, name: &str) -> String {
        let mut state = self.state();
        let id = format!("Label_{}", state.user_labels.len() + 1);
        state.user_labels.push((id.clone(), name.to_owned()));
        id
    }

    /// The labels of message `id` now (`None` if there is no such message).
    pub fn labels_of(&self, id: &str) -> Option<Vec<String>> {
        self.state().messages.iter().find(|m| m.id == id && !m.deleted).map(|m| m.labels.clone())
    }

    /// Message `id` is deleted for good: it is gone from lists and `get`.
    pub fn delete(&self, id: &str) {
        let mut state = self.state();
        let Some(index) = state.messages.iter().position(|m| m.id == id && !m.deleted) else {
            return;
        };
        let history_id = state.step();
        let message = &mut state.messages[index];
        message.deleted = true;
        message.history_id = history_id;
        let labels = message.labels.clone();
        state.history.push(Change {
            id: history_id,
            kind: ChangeKind::Deleted,
            message: id.to_owned(),
            labels,
            changed: Vec::new(),
        });
    }

    /// Forgets the history before now (as after a week): older start ids get `404`.
    pub fn expire_history(&self) {
        let mut state = self.state();
        state.oldest_history = state.history_id;
    }

    /// Injects `fault` into `route` when `trigger` fires.
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(&self, parts: &http::request::Parts, body: &[u8]) -> Response<MockBody> {
        if let Some(refused) = crate::oauth::refuse_unless_valid(self.auth.as_ref(), &parts.headers)
        {
            return refused;
        }
        let Some(route) = parts.uri.path().strip_prefix(PREFIX) else {
            return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
        };
        let modify = route.strip_suffix("/modify").and_then(|r| r.strip_prefix("messages/"));
        match (&parts.method, modify) {
            (&Method::POST, Some(_)) | (&Method::GET, None) => {}
            _ => return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned()),
        }
        let cost = match route {
            "profile" => 1,
            "history" => 2,
            _ => 5,
        };
        let now = self.core.clock.now();
        let mut state = self.state();
        state.units.retain(|(t, _)| now < *t + Duration::from_secs(60));
        let used: u32 = state.units.iter().map(|(_, u)| u).sum();
        if used + cost > state.units_per_minute {
            return json_body(StatusCode::FORBIDDEN, USER_RATE_LIMIT_BODY.to_owned());
        }
        state.units.push_back((now, cost));
        let query = Query(parts.uri.query().unwrap_or_default());
        if let Some(id) = modify {
            return modify_labels(&mut state, id, body);
        }
        match route {
            "profile" => json_body(
                StatusCode::OK,
                json!({"emailAddress": "me@example.com", "messagesTotal": live(&state).count(),
                    "threadsTotal": live(&state).count(), "historyId": state.history_id.to_string()})
                .to_string(),
            ),
            "messages" => list(&state, &query),
            "history" => history(&state, &query),
            other => match other
                .strip_prefix("messages/")
                .and_then(|id| live(&state).find(|m| m.id == id))
            {
                Some(m) => json_body(StatusCode::OK, message(m, &query).to_string()),
                None => json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned()),
            },
        }
    }
}

/// A request's query: `name=value` pairs, names repeatable.
struct Query<'a>(&'a str);

impl Query<'_> {
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .split('&')
            .filter_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.replace("%20", " "))
            .collect()
    }

    fn one(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    fn max_results(&self) -> usize {
        self.one("maxResults").and_then(|v| v.parse().ok()).unwrap_or(100).clamp(1, 500)
    }
}

fn live(state: &State) -> impl DoubleEndedIterator<Item = &Message> {
    state.messages.iter().filter(|m| !m.deleted)
}

fn list(state: &State, query: &Query<'_>) -> Response<MockBody> {
    let labels = query.all("labelIds");
    let max = query.max_results();
    // The token is the position of the last message given: the next page continues below it,
    // so mail arriving meanwhile does not shift the pages.
    let before = query.one("pageToken").and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
    let matching: Vec<&Message> =
        live(state).rev().filter(|m| labels.iter().all(|l| m.labels.contains(l))).collect();
    let page: Vec<&Message> =
        matching.iter().filter(|m| m.seq < before).take(max).copied().collect();
    let list: Vec<Value> = page.iter().map(|m| json!({"id": m.id, "threadId": m.id})).collect();
    let mut body = json!({"resultSizeEstimate": matching.len()});
    if !list.is_empty() {
        body["messages"] = json!(list);
    }
    if let Some(last) = page.last()
        && matching.iter().any(|m| m.seq < last.seq)
    {
        body["nextPageToken"] = json!(last.seq.to_string());
    }
    json_body(StatusCode::OK, body.to_string())
}

fn history(state: &State, query: &Query<'_>) -> Response<MockBody> {
    let Some(start) = query.one("startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
        return json_body(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": 400, "message": "Missing startHistoryId"}}).to_string(),
        );
    };
    if start < state.oldest_history {
        return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
    }
    let types = query.all("historyTypes");
    let label = query.one("labelId");
    let max = query.max_results();
    // A page token is the offset of the page, and in snapshot paging `.` and the id the
    // listing stops at.
    let token = query.one("pageToken");
    let mut token = token.as_deref().unwrap_or("0").splitn(2, '.');
    let page = token.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let upto = token.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(state.history_id);
    let upto = if state.snapshot_paging { upto } else { u64::MAX };
    // Each record keeps the labels its message had just after it, so the filtered list only
    // grows at its end and offsets stay good as page tokens.
    let changes: Vec<&Change> = state
        .history
        .iter()
        .filter(|c| c.id > start && c.id <= upto)
        .filter(|c| types.is_empty() || types.iter().any(|t| t == c.kind.type_name()))
        .filter(|c| label.as_ref().is_none_or(|l| c.labels.contains(l)))
        .collect();
    let records: Vec<Value> = changes
        .iter()
        .skip(page)
        .take(max)
        .map(|c| {
            let msg = json!({"id": c.message, "threadId": c.message, "labelIds": c.labels});
            let mut record =
                json!({"id": c.id.to_string(), "messages": [{"id": c.message, "threadId": c.message}]});
            match c.kind {
                ChangeKind::Added => record["messagesAdded"] = json!([{"message": msg}]),
                ChangeKind::Deleted => record["messagesDeleted"] = json!([{"message": msg}]),
                ChangeKind::LabelAdded => {
                    record["labelsAdded"] = json!([{"message": msg, "labelIds": c.changed}]);
                }
                ChangeKind::LabelRemoved => {
                    record["labelsRemoved"] = json!([{"message": msg, "labelIds": c.changed}]);
                }
            }
            record
        })
        .collect();
    let mut body = json!({"historyId": state.history_id.to_string()});
    if !records.is_empty() {
        body["history"] = json!(records);
    }
    if page + max < changes.len() {
        body["nextPageToken"] = if state.snapshot_paging {
            json!(format!("{}.{upto}", page + max))
        } else {
            json!((page + max).to_string())
        };
    }
    json_body(StatusCode::OK, body.to_string())
}

fn rfc2822(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn message(m: &Message, query: &Query<'_>) -> Value {
    let format = query.one("format").unwrap_or_else(|| "full".to_owned());
    let mime = if m.attachment { "multipart/mixed" } else { "multipart/alternative" };
    let mut out = json!({
        "id": m.id, "threadId": m.id, "labelIds": m.labels, "snippet": m.subject,
        "historyId": m.history_id.to_string(),
        "internalDate": m.internal_date.as_millisecond().to_string(),
        "sizeEstimate": 2048 + if m.attachment { 40_000 } else { 0 },
    });
    if format == "minimal" {
        return out;
    }
    let headers = [
        ("From", m.from.clone()),
        ("Subject", m.subject.clone()),
        ("To", "me@example.com".to_owned()),
        ("Date", rfc2822(m.internal_date)),
        ("Message-ID", format!("<{}@mail.example.com>", m.id)),
        ("Content-Type", format!("{mime}; boundary=\"b{}\"", m.id)),
    ];
    let wanted = query.all("metadataHeaders");
    let headers: Vec<Value> = headers
        .iter()
        .filter(|(name, _)| {
            format != "metadata"
                || wanted.is_empty()
                || wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
        })
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    out["payload"] = json!({"partId": "", "mimeType": mime, "filename": "", "headers": headers});
    if format == "full" {
        let mut parts = vec![json!({"partId": "0", "mimeType": "text/plain", "filename": "",
            "body": {"size": m.subject.len(), "data": ""}})];
        if m.attachment {
            parts.push(json!({"partId": "1", "mimeType": "application/pdf",
                "filename": "invoice.pdf",
                "body": {"attachmentId": format!("att-{}", m.id), "size": 40_000}}));
        }
        out["payload"]["parts"] = json!(parts);
    }
    out
}

fn modify_labels(state: &mut State, id: &str, body: &[u8]) -> Response<MockBody> {
    let Some(index) = state.messages.iter().position(|m| m.id == id && !m.deleted) else {
        return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
    };
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let ids = |field: &str| -> Vec<String> {
        request[field]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let (add, remove) = (ids("addLabelIds"), ids("removeLabelIds"));
    if let Some(unknown) = add.iter().chain(&remove).find(|l| !state.known_label(l)) {
        return invalid(&format!("Invalid label: {unknown}"));
    }
    let before = state.messages[index].labels.clone();
    let added: Vec<String> = add.iter().filter(|l| !before.contains(l)).cloned().collect();
    let removed: Vec<String> =
        remove.iter().filter(|l| before.contains(l) && !add.contains(l)).cloned().collect();
    for (kind, changed) in [(ChangeKind::LabelAdded, added), (ChangeKind::LabelRemoved, removed)] {
        if changed.is_empty() {
            continue;
        }
        let history_id = state.step();
        let message = &mut state.messages[index];
        match kind {
            ChangeKind::LabelAdded => message.labels.extend(changed.iter().cloned()),
            _ => message.labels.retain(|l| !changed.contains(l)),
        }
        message.history_id = history_id;
        let labels = message.labels.clone();
        state.history.push(Change {
            id: history_id,
            kind,
            message: id.to_owned(),
            labels,
            changed,
        });
    }
    let m = &state.messages[index];
    json_body(
        StatusCode::OK,
        json!({"id": m.id, "threadId": m.id, "labelIds": m.labels}).to_string(),
    )
}

fn invalid(message: &str) -> Response<MockBody> {
    let body = json!({"error": {"code": 400, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": "invalidArgument"}],
        "status": "INVALID_ARGUMENT"}});
    json_body(StatusCode::BAD_REQUEST, body.to_string())
}

fn json_body(status: StatusCode, body: String) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    res
}

impl Mock for Gmail {
    fn core(&self) -> &MockCore {
        &self.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        _fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        Some(self.answer(parts, body))
    }
}
