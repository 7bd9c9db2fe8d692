//! The Gmail API calls the engine makes, typed, on an `unattended-client` [`Client`].
//!
//! Only what a watcher needs: `users.getProfile` (the current history id), `users.history.list`
//! (what was added since an id, in pages), `users.messages.list` (for a full resync),
//! `users.messages.get` with `format=metadata` (sender, subject, date, labels, top MIME type) and
//! `users.messages.modify` (labels). Protocol quirks live here:
//!
//! - history ids are unsigned 64-bit numbers sent as JSON strings, increasing but not
//!   contiguous; an empty page leaves out `history`, an empty list `messages`;
//! - a `startHistoryId` older than the history Gmail keeps (about a week) is `404`:
//!   [`ApiError::HistoryGone`], answered by a full resync;
//! - every call costs quota units ([`Cost`]), spent through a [`QuotaWindow`] so a task stays
//!   under its units per minute; Gmail's `403`/`429` `userRateLimitExceeded` (or
//!   `rateLimitExceeded`) still pauses the host for the minute the limit counts over, and
//!   `dailyLimitExceeded` until midnight Pacific time, when Google resets daily quotas;
//! - `messages.modify` is a `POST` that sets labels, so sending it twice changes nothing more: it
//!   is marked [`Retryable`] for the client's retries;
//! - the metadata format has no parts, so "has an attachment" is read from the top part's MIME
//!   type: `multipart/mixed` is how mail carries attachments.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use unattended_client::Client;
use unattended_core::{Clock, ServiceKey};
use unattended_retry::Retryable;
use unattended_runner::TaskError;

use crate::quota::QuotaWindow;

const USER: &str = "/gmail/v1/users/me";

/// How long a per-minute rate limit pauses the host: the span Gmail counts units over.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// The quota units of each call (Gmail's published costs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cost {
    Profile,
    History,
    List,
    Get,
    Modify,
}

impl Cost {
    pub(crate) fn units(self) -> u32 {
        match self {
            Self::Profile => 1,
            Self::History => 2,
            Self::List | Self::Get | Self::Modify => 5,
        }
    }
}

/// What the engine knows of a message: enough for rules, and what actions send on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageSummary {
    /// Gmail's message id.
    pub id: String,
    /// Gmail's thread id.
    pub thread_id: String,
    /// The `From` header, as sent (`"Billing <billing@example.com>"`).
    pub from: String,
    /// The `Subject` header.
    pub subject: String,
    /// The `Date` header, as sent, if any.
    pub date: Option<String>,
    /// When Gmail accepted the message (`internalDate`).
    pub received: Timestamp,
    /// Its label ids when it was read (`INBOX`, `UNREAD`, `Label_12`...).
    pub labels: Vec<String>,
    /// Gmail's snippet of the body.
    pub snippet: String,
    /// Whether its top part is `multipart/mixed`, the form of mail with attachments.
    pub has_attachment: bool,
}

/// A call to Gmail failed.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The client could not get an answer (timeouts, resets, an open breaker...).
    Client(unattended_client::Error),
    /// Over a quota: the host is paused until `until`.
    RateLimited { until: Timestamp, reason: String },
    /// `startHistoryId` is older than the history Gmail keeps.
    HistoryGone,
    /// Gmail refused the request.
    Refused { status: StatusCode, reason: String, message: String },
    /// The answer could not be read (cut short, too big, JSON of another shape), at this time:
    /// a proxy's page or a glitch as often as a change of API, so it is tried again later (the
    /// runner spaces the tries and raises `failing` when it goes on).
    Unreadable(String, Timestamp),
}

impl From<ApiError> for TaskError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Client(e) => e.into(),
            ApiError::RateLimited { until, reason } => Self::retry_at(
                until,
                format!(
                    "gmail answered {reason}: paused until {until}; the next run goes on from the checkpoint"
                ),
            ),
            ApiError::HistoryGone => Self::stop("gmail's history is gone and no resync was made"),
            ApiError::Refused { status, reason, message } if status == StatusCode::UNAUTHORIZED => {
                Self::reauthorize(format!("gmail refused the credentials ({reason}: {message})"))
                    .with_help(
                        "renew them with `unattended auth google`, then `unattended reset TASK`",
                    )
            }
            ApiError::Refused { status, reason, message } if reason == "invalidArgument" => {
                Self::stop(format!("gmail refused a request ({status} {reason}): {message}"))
                    .with_help(
                        "rules name labels by id: INBOX, UNREAD, STARRED... for system labels and \
                         Label_N (from Gmail's labels list) for your own",
                    )
            }
            ApiError::Refused { status, reason, message } => {
                Self::stop(format!("gmail refused a request ({status} {reason}): {message}"))
            }
            ApiError::Unreadable(why, at) => {
                Self::retry_at(at, format!("gmail's answer could not be read: {why}"))
            }
        }
    }
}

/// One page of history: the messages added, in order, and where to go next.
#[derive(Debug)]
pub(crate) struct HistoryPage {
    /// The ids of the messages added, each once, in the order of the records.
    pub(crate) added: Vec<String>,
    /// The next page's token, if this is not the last.
    pub(crate) next: Option<String>,
    /// The mailbox's history id when the page was read.
    pub(crate) history_id: u64,
}

/// One page of a message list (newest first).
#[derive(Debug)]
pub(crate) struct ListPage {
    pub(crate) ids: Vec<String>,
    pub(crate) next: Option<String>,
}

/// The Gmail API of one mailbox (`users/me`), its calls paced by a shared quota window.
#[derive(Clone, Debug)]
pub(crate) struct Gmail {
    client: Client,
    quota: Arc<Mutex<QuotaWindow>>,
    clock: Clock,
}

impl Gmail {
    pub(crate) fn new(client: Client, quota: Arc<Mutex<QuotaWindow>>, clock: Clock) -> Self {
        Self { client, quota, clock }
    }

    /// `users.getProfile`: the mailbox's current history id.
    pub(crate) async fn history_id(&self) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Profile {
            #[serde(with = "id_text")]
            history_id: u64,
        }
        let p: Profile = self.get(&format!("{USER}/profile"), Cost::Profile).await?;
        Ok(p.history_id)
    }

    /// `users.history.list`: messages added with `label` after `start`, one page.
    pub(crate) async fn history(
        &self,
        start: u64,
        label: &str,
        page: Option<&str>,
        max: u32,
    ) -> Result<HistoryPage, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            history: Vec<Record>,
            next_page_token: Option<String>,
            #[serde(with = "id_text")]
            history_id: u64,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Record {
            #[serde(default)]
            messages_added: Vec<Added>,
        }
        #[derive(Deserialize)]
        struct Added {
            message: Ref,
        }
        let mut path = format!(
            "{USER}/history?startHistoryId={start}&historyTypes=messageAdded&labelId={}&maxResults={max}",
            encode(label)
        );
        if let Some(token) = page {
            path.push_str(&format!("&pageToken={}", encode(token)));
        }
        let raw: Raw = match self.get(&path, Cost::History).await {
            Err(ApiError::Refused { status: StatusCode::NOT_FOUND, .. }) => {
                return Err(ApiError::HistoryGone);
            }
            other => other?,
        };
        let mut added: Vec<String> = Vec::new();
        for a in raw.history.into_iter().flat_map(|r| r.messages_added) {
            if !added.contains(&a.message.id) {
                added.push(a.message.id);
            }
        }
        Ok(HistoryPage { added, next: raw.next_page_token, history_id: raw.history_id })
    }

    /// `users.messages.list`: messages with `label`, newest first, one page.
    pub(crate) async fn list(
        &self,
        label: &str,
        page: Option<&str>,
        max: u32,
    ) -> Result<ListPage, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            messages: Vec<Ref>,
            next_page_token: Option<String>,
        }
        let mut path = format!("{USER}/messages?labelIds={}&maxResults={max}", encode(label));
        if let Some(token) = page {
            path.push_str(&format!("&pageToken={}", encode(token)));
        }
        let raw: Raw = self.get(&path, Cost::List).await?;
        Ok(ListPage {
            ids: raw.messages.into_iter().map(|m| m.id).collect(),
            next: raw.next_page_token,
        })
    }

    /// `users.messages.get` with `format=metadata`; `None` if the message is gone.
    pub(crate) async fn message(&self, id: &str) -> Result<Option<MessageSummary>, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            id: String,
            thread_id: String,
            #[serde(default)]
            label_ids: Vec<String>,
            #[serde(default)]
            snippet: String,
            internal_date: Option<String>,
            payload: Option<Payload>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload {
            #[serde(default)]
            mime_type: String,
            #[serde(default)]
            headers: Vec<Header>,
        }
        #[derive(Deserialize)]
        struct Header {
            name: String,
            value: String,
        }
        let path = format!(
            "{USER}/messages/{}?format=metadata&metadataHeaders=From&metadataHeaders=Subject&metadataHeaders=Date&metadataHeaders=Content-Type",
            encode(id)
        );
        let raw: Raw = match self.get(&path, Cost::Get).await {
            Err(ApiError::Refused { status: StatusCode::NOT_FOUND, .. }) => return Ok(None),
            other => other?,
        };
        let payload =
            raw.payload.unwrap_or(Payload { mime_type: String::new(), headers: Vec::new() });
        let header = |name: &str| {
            payload
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.clone())
        };
        let mime = match header("Content-Type") {
            Some(content_type) => content_type,
            None => payload.mime_type.clone(),
        };
        let received = raw
            .internal_date
            .as_deref()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .ok_or_else(|| {
                ApiError::Unreadable(
                    format!("message {} has no internalDate", raw.id),
                    self.clock.wall(),
                )
            })?;
        Ok(Some(MessageSummary {
            from: header("From").unwrap_or_default(),
            subject: header("Subject").unwrap_or_default(),
            date: header("Date"),
            has_attachment: mime.trim_start().to_ascii_lowercase().starts_with("multipart/mixed"),
            id: raw.id,
            thread_id: raw.thread_id,
            received,
            labels: raw.label_ids,
            snippet: raw.snippet,
        }))
    }

    /// `users.messages.modify`; `false` if the message is gone.
    pub(crate) async fn modify(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<bool, ApiError> {
        let body = serde_json::json!({"addLabelIds": add, "removeLabelIds": remove});
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{USER}/messages/{}/modify", encode(id)))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| ApiError::Unreadable(e.to_string(), self.clock.wall()))?;
        // Setting labels twice sets them once: safe to send again.
        req.extensions_mut().insert(Retryable);
        match self.call(req, Cost::Modify).await {
            Ok(_) => Ok(true),
            Err(ApiError::Refused { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, cost: Cost) -> Result<T, ApiError> {
        let req = Request::get(path)
            .body(Full::default())
            .map_err(|e| ApiError::Unreadable(e.to_string(), self.clock.wall()))?;
        let body = self.call(req, cost).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Unreadable(e.to_string(), self.clock.wall()))
    }

    /// Spends the call's units, sends it and reads a `2xx` body; other answers become errors.
    async fn call(&self, req: Request<Full<Bytes>>, cost: Cost) -> Result<Bytes, ApiError> {
        self.pace(cost.units()).await;
        let res = self.client.send(req).await.map_err(ApiError::Client)?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                ApiError::Unreadable(
                    format!("the body of a {status} answer: {e}"),
                    self.clock.wall(),
                )
            })?
            .to_bytes();
        if status.is_success() {
            return Ok(body);
        }
        let (reason, message) = google_error(&body);
        let now = self.clock.wall();
        let until = match reason.as_str() {
            "userRateLimitExceeded" | "rateLimitExceeded" => {
                unattended_core::clock::add_saturating(now, RATE_LIMIT_PAUSE)
            }
            "dailyLimitExceeded" => next_pacific_midnight(now),
            _ => return Err(ApiError::Refused { status, reason, message }),
        };
        if let Some(key) = self.client.base_url().and_then(ServiceKey::from_uri) {
            self.client.pauses().pause(key, until, now);
        }
        Err(ApiError::RateLimited { until, reason })
    }

    async fn pace(&self, cost: u32) {
        loop {
            let now = self.clock.now();
            let taken = self.quota.lock().unwrap_or_else(PoisonError::into_inner).take(now, cost);
            match taken {
                Ok(()) => return,
                Err(at) => self.clock.sleep_until(at).await,
            }
        }
    }
}

#[derive(Deserialize)]
struct Ref {
    id: String,
}

/// The `reason` and `message` of Google's error envelope (empty when it is not one).
fn google_error(body: &[u8]) -> (String, String) {
    #[derive(Deserialize, Default)]
    struct Envelope {
        #[serde(default)]
        error: Inner,
    }
    #[derive(Deserialize, Default)]
    struct Inner {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        reason: String,
    }
    let e: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let reason = e.error.errors.into_iter().map(|d| d.reason).next().unwrap_or_default();
    // Google's messages say what was wrong ("Invalid label: Label_9"); they hold no secrets,
    // but are cut to keep errors short.
    let message: String = e.error.message.chars().take(200).collect();
    (reason, message)
}

/// Google resets daily quotas at midnight Pacific time.
fn next_pacific_midnight(now: Timestamp) -> Timestamp {
    let zone = TimeZone::get("America/Los_Angeles").unwrap_or(TimeZone::UTC);
    let local = now.to_zoned_datetime(zone);
    local
        .date()
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned_datetime(local.time_zone().clone()).ok())
        .map_or_else(
            || unattended_core::clock::add_saturating(now, Duration::from_secs(86_400)),
            |z| z.timestamp(),
        )
}

/// Percent-encodes a query value or path segment (everything but RFC 3986's unreserved bytes).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// History ids: unsigned 64-bit numbers written as JSON strings.
mod id_text {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Id {
            Text(String),
            Number(u64),
        }
        match Id::deserialize(d)? {
            Id::Number(n) => Ok(n),
            Id::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_for_queries_and_paths() {
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
    }

    #[test]
    fn google_errors_are_read_and_anything_else_is_empty() {
        let body = br#"{"error":{"code":403,"message":"User Rate Limit Exceeded","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}]}}"#;
        assert_eq!(
            google_error(body),
            ("userRateLimitExceeded".into(), "User Rate Limit Exceeded".into())
        );
        assert_eq!(google_error(b"<html>503</html>"), (String::new(), String::new()));
    }

    #[test]
    fn the_daily_quota_resets_at_midnight_in_los_angeles() {
        // 10:00 UTC on 1 December is 02:00 in Los Angeles (UTC-8): the reset is 08:00 UTC on
        // 2 December.
        let now = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(next_pacific_midnight(now), "2026-12-02T08:00:00Z".parse().unwrap());
        // 23:00 PDT (UTC-7) on 31 October: midnight is still PDT.
        let now = "2026-11-01T06:00:00Z".parse().unwrap();
        assert_eq!(next_pacific_midnight(now), "2026-11-01T07:00:00Z".parse().unwrap());
        // After clocks go back that night, the next midnight is PST (UTC-8).
        let now = "2026-11-01T10:00:00Z".parse().unwrap();
        assert_eq!(next_pacific_midnight(now), "2026-11-02T08:00:00Z".parse().unwrap());
    }
}
