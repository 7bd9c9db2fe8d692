//! YouTube Data API v3 resumable upload, with its quota.
//!
//! Facts followed: `POST /upload/youtube/v3/videos?uploadType=resumable&part=…` with
//! `X-Upload-Content-Length` and the video resource gives `200` and the session URI in
//! `Location`. `PUT <session>` with `Content-Range: bytes F-L/TOTAL` stores a chunk (all but the
//! last a multiple of 256 KiB) and answers `308` with `Range: bytes=0-N` (inclusive), or, for the
//! last chunk, `201` with the video (`status.uploadStatus: "uploaded"`). `PUT` with
//! `Content-Range: bytes */TOTAL` asks where the upload stands: `308` with `Range`, `308`
//! without `Range` (nothing stored), or `201` with the video if it is complete. An unknown or
//! expired session is `404`. `videos.insert` has its own daily bucket (100 by default, 1 per
//! call), reset at midnight America/Los_Angeles; spent, it answers Google's `403 quotaExceeded`.
//! With an OAuth mock attached, a missing or expired token is Google's `401`.
//!
//! The metadata is checked as YouTube does (`400` with its reason): a title that is empty, over
//! 100 characters or holds `<`/`>` (`invalidTitle`); a description over 5000 bytes or holding
//! `<`/`>` (`invalidDescription`); tags over 500 characters in all (`invalidTags`); a category
//! that is not one of YouTube's ids (`invalidCategoryId`); a `publishAt` that is not a future
//! time on a private video (`invalidPublishAt`). `GET /youtube/v3/videos?id=…` (`videos.list`)
//! finds completed uploads. A file whose bytes match an earlier upload is accepted (`201`,
//! `uploaded`), then rejected by processing as YouTube does: `videos.list` shows it with
//! `uploadStatus: "rejected"` and `rejectionReason: "duplicate"`. Each upload's bytes are hashed as they are kept, so a test can
//! compare what arrived with what was sent ([`YouTube::uploads`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{Method, Response, StatusCode};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use unattended_core::Clock;

use crate::body::MockBody;
use crate::fault::{Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;
use crate::oauth::GoogleOAuth;

/// Google's `403` for a spent quota.
pub const QUOTA_EXCEEDED_BODY: &str = r#"{"error":{"errors":[{"domain":"youtube.quota","reason":"quotaExceeded","message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."}],"code":403,"message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."}}"#;

/// Chunks other than the last must be multiples of this.
pub const CHUNK: u64 = 256 * 1024;

const UPLOAD_PATH: &str = "/upload/youtube/v3/videos";
const LIST_PATH: &str = "/youtube/v3/videos";

/// YouTube's video category ids (assignable ones, for most regions).
const CATEGORIES: [&str; 15] =
    ["1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29"];

#[derive(Debug)]
struct Session {
    total: u64,
    stored: u64,
    resource: Value,
    video: Option<Value>,
    /// The hash of the bytes kept so far (`stored` of them).
    hash: Sha256,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<String, Session>,
    next: u64,
    quota_limit: u32,
    quota_used: u32,
    quota_day: Option<Date>,
    videos: Vec<Value>,
    uploads: Vec<Upload>,
    started: u64,
}

/// A completed upload, as the mock kept it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The video's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, in lower-case hex.
    pub sha256: String,
}

/// The SHA-256 of `bytes` in lower-case hex, as [`Upload::sha256`] gives it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The YouTube mock; clones share its state. A `Service<http::Request<B>>`, servable on
/// 127.0.0.1 with [`serve`](crate::serve::serve).
#[derive(Clone, Debug)]
pub struct YouTube {
    state: Arc<Mutex<State>>,
    core: MockCore,
    auth: Option<GoogleOAuth>,
}

impl YouTube {
    /// A mock with the default quota (100 uploads a day); faults draw from `seed`. Tokens are
    /// not checked unless [`with_auth`](Self::with_auth) is used.
    pub fn new(clock: Clock, seed: u64) -> Self {
        let state = State {
            sessions: HashMap::new(),
            next: 0,
            quota_limit: 100,
            quota_used: 0,
            quota_day: None,
            videos: Vec::new(),
            uploads: Vec::new(),
            started: 0,
        };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, seed), auth: None }
    }

    /// Accepts only the access tokens `oauth` issued and that have not expired.
    #[must_use]
    pub fn with_auth(mut self, oauth: GoogleOAuth) -> Self {
        self.auth = Some(oauth);
        self
    }

    /// Sets the daily `videos.insert` quota.
    pub fn quota(&self, per_day: u32) -> &Self {
        self.state().quota_limit = per_day;
        self
    }

    /// Injects `fault` into `route` when `trigger` fires.
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.core.clear();
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    /// The videos whose upload completed.
    pub fn videos(&self) -> Vec<Value> {
        self.state().videos.clone()
    }

    /// The completed uploads, with the hash of their bytes, in the order they completed.
    pub fn uploads(&self) -> Vec<Upload> {
        self.state().uploads.clone()
    }

    /// How many upload sessions were started.
    pub fn sessions_started(&self) -> u64 {
        self.state().started
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        if let Some(refused) = crate::oauth::refuse_unless_valid(self.auth.as_ref(), &parts.headers)
        {
            return Some(refused);
        }
        if parts.uri.path() == LIST_PATH && parts.method == Method::GET {
            return Some(list(&self.state(), parts));
        }
        if parts.uri.path() != UPLOAD_PATH {
            return Some(google_error(StatusCode::NOT_FOUND, "notFound", "Not Found"));
        }
        let mut state = self.state();
        let session = parts
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("upload_id=")))
            .map(str::to_owned);
        match (&parts.method, session) {
            (&Method::POST, None) => Some(self.initiate(&mut state, parts, body, fault)),
            (&Method::PUT, Some(id)) => Some(put(&mut state, &id, parts, body, fault)),
            _ => Some(google_error(StatusCode::BAD_REQUEST, "badRequest", "Unsupported request")),
        }
    }

    fn initiate(
        &self,
        state: &mut State,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Response<MockBody> {
        let today = self
            .core
            .clock
            .wall()
            .to_zoned_datetime(TimeZone::get("America/Los_Angeles").unwrap_or(TimeZone::UTC))
            .date();
        if state.quota_day != Some(today) {
            state.quota_day = Some(today);
            state.quota_used = 0;
        }
        if matches!(fault, Some(Fault::QuotaExceeded)) {
            state.quota_used = state.quota_limit;
        }
        if state.quota_used >= state.quota_limit {
            return json_body(StatusCode::FORBIDDEN, QUOTA_EXCEEDED_BODY.to_owned());
        }
        state.quota_used += 1;
        if matches!(fault, Some(Fault::UploadLimitExceeded)) {
            return google_error(
                StatusCode::BAD_REQUEST,
                "uploadLimitExceeded",
                "The user has exceeded the number of videos they may upload.",
            );
        }
        let total = parts
            .headers
            .get("x-upload-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(total) = total else {
            return google_error(
                StatusCode::BAD_REQUEST,
                "badContent",
                "X-Upload-Content-Length is missing",
            );
        };
        let resource = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        if let Some((reason, message)) = invalid_metadata(&resource, self.core.clock.wall()) {
            return google_error(StatusCode::BAD_REQUEST, reason, message);
        }
        state.next += 1;
        state.started += 1;
        let id = format!("AEnB2Uo{:08}", state.next);
        let session = Session { total, stored: 0, resource, video: None, hash: Sha256::new() };
        state.sessions.insert(id.clone(), session);
        let mut res = Response::new(MockBody::empty());
        let location =
            format!("{}{UPLOAD_PATH}?uploadType=resumable&upload_id={id}", origin(parts));
        if let Ok(value) = location.parse() {
            res.headers_mut().insert(http::header::LOCATION, value);
        }
        res
    }
}

/// Where the request was sent (the URI's origin in-process, the `Host` over a socket), so the
/// session URI leads back to this mock.
fn origin(parts: &http::request::Parts) -> String {
    if let (Some(scheme), Some(authority)) = (parts.uri.scheme_str(), parts.uri.authority()) {
        return format!("{scheme}://{authority}");
    }
    match parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) => format!("http://{host}"),
        None => "https://www.googleapis.com".to_owned(),
    }
}

/// YouTube's reason and message for metadata it refuses, if it would.
fn invalid_metadata(resource: &Value, now: Timestamp) -> Option<(&'static str, &'static str)> {
    let text = |pointer: &str| resource.pointer(pointer).and_then(Value::as_str);
    let title = text("/snippet/title").unwrap_or("");
    if title.is_empty() || title.chars().count() > 100 || title.contains(['<', '>']) {
        return Some((
            "invalidTitle",
            "The request metadata specifies an invalid or empty video title.",
        ));
    }
    let description = text("/snippet/description").unwrap_or("");
    if description.len() > 5000 || description.contains(['<', '>']) {
        return Some((
            "invalidDescription",
            "The request metadata specifies an invalid video description.",
        ));
    }
    let tags = resource.pointer("/snippet/tags").and_then(Value::as_array);
    let tags_len: usize =
        tags.into_iter().flatten().filter_map(Value::as_str).map(|t| t.chars().count()).sum();
    if tags_len > 500 {
        return Some(("invalidTags", "The request metadata specifies invalid video keywords."));
    }
    if text("/snippet/categoryId").is_some_and(|c| !CATEGORIES.contains(&c)) {
        return Some((
            "invalidCategoryId",
            "The snippet.categoryId property specifies an invalid category ID.",
        ));
    }
    if let Some(at) = text("/status/publishAt") {
        let future = at.parse::<Timestamp>().is_ok_and(|at| at > now);
        if !future || text("/status/privacyStatus") != Some("private") {
            return Some((
                "invalidPublishAt",
                "The request metadata specifies an invalid scheduled publishing time.",
            ));
        }
    }
    None
}

/// `videos.list` by id: the completed uploads among the ids asked for.
fn list(state: &State, parts: &http::request::Parts) -> Response<MockBody> {
    let ids = parts.uri.query().and_then(|q| q.split('&').find_map(|p| p.strip_prefix("id=")));
    let Some(ids) = ids else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "missingRequiredParameter",
            "No filter selected. Expected one of: id, myRating, chart",
        );
    };
    let wanted: Vec<&str> = ids.split([',']).flat_map(|i| i.split("%2C")).collect();
    let items: Vec<&Value> = state
        .videos
        .iter()
        .filter(|v| v["id"].as_str().is_some_and(|id| wanted.contains(&id)))
        .collect();
    let body = json!({"kind": "youtube#videoListResponse", "items": items,
        "pageInfo": {"totalResults": items.len(), "resultsPerPage": 5}});
    json_body(StatusCode::OK, body.to_string())
}

fn put(
    state: &mut State,
    id: &str,
    parts: &http::request::Parts,
    body: &[u8],
    fault: Option<&Fault>,
) -> Response<MockBody> {
    if matches!(fault, Some(Fault::SessionExpired)) {
        state.sessions.remove(id);
    }
    let State { sessions, next, videos, uploads, .. } = state;
    let Some(session) = sessions.get_mut(id) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Upload session not found or expired",
        );
    };
    let range =
        parts.headers.get(http::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let spec = range.strip_prefix("bytes ").unwrap_or("");
    let (span, total) = spec.split_once('/').unwrap_or(("", ""));
    if total.parse::<u64>().ok() != Some(session.total) && !range.is_empty() {
        return google_error(
            StatusCode::BAD_REQUEST,
            "badContent",
            "Content-Range total does not match the upload",
        );
    }
    if let Some(video) = &session.video {
        return json_body(StatusCode::CREATED, video.to_string());
    }
    if span != "*" {
        let (first, last) =
            match span.split_once('-').map(|(f, l)| (f.parse::<u64>(), l.parse::<u64>())) {
                Some((Ok(f), Ok(l))) if l >= f => (f, l),
                _ if range.is_empty() => (0, (body.len() as u64).saturating_sub(1)),
                _ => {
                    return google_error(
                        StatusCode::BAD_REQUEST,
                        "badContent",
                        "Invalid Content-Range",
                    );
                }
            };
        let len = last - first + 1;
        let is_last = last + 1 == session.total;
        if len != body.len() as u64 || first > session.stored || (!is_last && len % CHUNK != 0) {
            return google_error(StatusCode::BAD_REQUEST, "badContent", "Invalid chunk");
        }
        let mut stored = session.stored.max(last + 1);
        match fault {
            Some(Fault::NoRange) => stored = 0,
            Some(Fault::ShortRange) if !is_last => {
                stored = stored.saturating_sub(CHUNK).max(first).max(session.stored);
            }
            Some(Fault::ResetMidChunk) => {
                stored = session.stored.max(first + len / 2 / CHUNK * CHUNK)
            }
            _ => {}
        }
        if stored < session.stored {
            // Nothing kept: the upload starts again from its first byte.
            session.hash = Sha256::new();
            session.stored = 0;
        }
        if stored > session.stored {
            let from = usize::try_from(session.stored - first).unwrap_or(usize::MAX);
            let to = usize::try_from(stored - first).unwrap_or(usize::MAX);
            session.hash.update(&body[from.min(body.len())..to.min(body.len())]);
        }
        session.stored = stored;
        if stored == session.total {
            *next += 1;
            let id = format!("vid{:06}", next);
            let mut video = session.resource.clone();
            video["id"] = json!(id);
            video["kind"] = json!("youtube#video");
            video["status"]["uploadStatus"] = json!("uploaded");
            session.video = Some(video.clone());
            let title = video.pointer("/snippet/title").and_then(Value::as_str).unwrap_or("");
            let sha256 = hex(&session.hash.clone().finalize());
            let duplicate = uploads.iter().any(|u| u.sha256 == sha256);
            uploads.push(Upload { id, title: title.to_owned(), bytes: session.total, sha256 });
            let answer = video.to_string();
            if duplicate {
                // Processing, after the upload, finds the same bytes on the channel.
                video["status"]["uploadStatus"] = json!("rejected");
                video["status"]["rejectionReason"] = json!("duplicate");
            }
            videos.push(video);
            return json_body(StatusCode::CREATED, answer);
        }
    }
    let mut res = Response::new(MockBody::empty());
    *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if session.stored > 0
        && let Ok(value) = format!("bytes=0-{}", session.stored - 1).parse()
    {
        res.headers_mut().insert(http::header::RANGE, value);
    }
    res
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

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response<MockBody> {
    let body = json!({"error": {"errors": [{"domain": "global", "reason": reason, "message": message}],
        "code": status.as_u16(), "message": message}});
    json_body(status, body.to_string())
}

impl Mock for YouTube {
    fn core(&self) -> &MockCore {
        &self.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        self.answer(parts, body, fault)
    }
}
