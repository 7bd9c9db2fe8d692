//! Gmail API v1: profile, messages, and history for incremental sync, with its quota.
//!
//! Facts followed: under `/gmail/v1/users/me/`, `profile` gives `emailAddress`,
//! `messagesTotal`, `threadsTotal`, `historyId`; `messages` lists `{id, threadId}` newest first
//! with `nextPageToken` and `resultSizeEstimate`; `messages/{id}` gives the message with its
//! `historyId`; `history?startHistoryId=` gives the changes after it, in pages, and the current
//! `historyId`; a `startHistoryId` older than the records kept is `404` (do a full sync). History
//! ids grow but are not contiguous. Each call costs quota units (profile 1, history 2, messages
//! 5); past the per-user limit per minute the answer is `403 userRateLimitExceeded`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Method, Response, StatusCode};
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

#[derive(Clone, Debug)]
struct Message {
    id: String,
    history_id: u64,
    from: String,
    subject: String,
}

#[derive(Debug)]
struct State {
    messages: Vec<Message>,
    history_id: u64,
    oldest_history: u64,
    units: VecDeque<(Instant, u32)>,
    units_per_minute: u32,
    rng: fastrand::Rng,
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
            history_id: 1000,
            oldest_history: 1000,
            units: VecDeque::new(),
            units_per_minute: 15_000,
            rng: fastrand::Rng::with_seed(seed),
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

    /// A new message arrives; returns its id.
    pub fn deliver(&self, from: &str, subject: &str) -> String {
        let mut state = self.state();
        let step = state.rng.u64(1..=5);
        state.history_id += step;
        let id = format!("18c{:013x}", state.history_id);
        let history_id = state.history_id;
        state.messages.push(Message {
            id: id.clone(),
            history_id,
            from: from.into(),
            subject: subject.into(),
        });
        id
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

    fn answer(&self, parts: &http::request::Parts) -> Response<MockBody> {
        if let Some(refused) = crate::oauth::refuse_unless_valid(self.auth.as_ref(), &parts.headers)
        {
            return refused;
        }
        let Some(route) = parts.uri.path().strip_prefix(PREFIX) else {
            return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
        };
        if parts.method != Method::GET {
            return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
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
        let query = |name: &str| {
            parts
                .uri
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix(name)?.strip_prefix('=')))
        };
        let max =
            query("maxResults").and_then(|v| v.parse::<usize>().ok()).unwrap_or(100).clamp(1, 500);
        let page = query("pageToken").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        match route {
            "profile" => json_body(
                StatusCode::OK,
                json!({"emailAddress": "me@example.com", "messagesTotal": state.messages.len(),
                    "threadsTotal": state.messages.len(), "historyId": state.history_id.to_string()})
                .to_string(),
            ),
            "messages" => {
                let newest: Vec<&Message> = state.messages.iter().rev().collect();
                let list: Vec<Value> = newest.iter().skip(page).take(max).map(|m| json!({"id": m.id, "threadId": m.id})).collect();
                let mut body = json!({"messages": list, "resultSizeEstimate": newest.len()});
                if page + max < newest.len() {
                    body["nextPageToken"] = json!((page + max).to_string());
                }
                json_body(StatusCode::OK, body.to_string())
            }
            "history" => {
                let Some(start) = query("startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
                    return json_body(StatusCode::BAD_REQUEST, json!({"error": {"code": 400, "message": "Missing startHistoryId"}}).to_string());
                };
                if start < state.oldest_history {
                    return json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned());
                }
                let changes: Vec<&Message> = state.messages.iter().filter(|m| m.history_id > start).collect();
                let records: Vec<Value> = changes
                    .iter()
                    .skip(page)
                    .take(max)
                    .map(|m| {
                        let msg = json!({"id": m.id, "threadId": m.id, "labelIds": ["INBOX", "UNREAD"]});
                        json!({"id": m.history_id.to_string(), "messages": [{"id": m.id, "threadId": m.id}],
                            "messagesAdded": [{"message": msg}]})
                    })
                    .collect();
                let mut body = json!({"history": records, "historyId": state.history_id.to_string()});
                if page + max < changes.len() {
                    body["nextPageToken"] = json!((page + max).to_string());
                }
                json_body(StatusCode::OK, body.to_string())
            }
            other => match other.strip_prefix("messages/").and_then(|id| state.messages.iter().find(|m| m.id == id)) {
                Some(m) => json_body(
                    StatusCode::OK,
                    json!({"id": m.id, "threadId": m.id, "labelIds": ["INBOX", "UNREAD"],
                        "snippet": m.subject, "historyId": m.history_id.to_string(),
                        "payload": {"headers": [{"name": "From", "value": m.from}, {"name": "Subject", "value": m.subject}]}})
                    .to_string(),
                ),
                None => json_body(StatusCode::NOT_FOUND, NOT_FOUND_BODY.to_owned()),
            },
        }
    }
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
        _body: &[u8],
        _fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        Some(self.answer(parts))
    }
}
