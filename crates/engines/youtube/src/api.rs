//! The YouTube Data API v3 endpoints the engine uses, on `unattended-client`.
//!
//! - `videos.insert`, resumable: `POST /upload/youtube/v3/videos?uploadType=resumable` with
//!   the video resource and `X-Upload-Content-Length` answers `200` with the session URI in
//!   `Location`;
//! - a chunk: `PUT <session>` with `Content-Range: bytes F-L/TOTAL` answers `308` with
//!   `Range: bytes=0-N` (what was *kept*, which may be less than was sent, or no `Range` at all
//!   when nothing was), or `200`/`201` with the video once the last byte is in;
//! - the status query: the same `PUT` with no body and `Content-Range: bytes */TOTAL`, answered
//!   the same way (this is how a lost final answer is recovered: the video comes back);
//! - `videos.list?id=…&part=status` to confirm a video YouTube said it has.
//!
//! Protocol quirks live here: `Range` read in both the `bytes=` and `bytes ` forms and checked
//! against what was sent, Google's error reasons read from the JSON envelope. A chunk is marked
//! [`NotIdempotent`] so the client sends it again only when YouTube certainly did nothing with it
//! (`429`, a refused credential, a failed connect); after any other interruption the engine asks
//! where the upload stands. The session start is marked [`Retryable`]: a session that is never
//! used holds no video, so starting two cannot upload twice.

use std::fmt;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use unattended_client::{Body, Client};
use unattended_retry::{NotIdempotent, Retryable};

/// The path that starts an upload session.
pub const INSERT_PATH: &str = "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status";

/// What YouTube says about an upload after a chunk or a status query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The upload is incomplete; this many bytes from the start are kept.
    Partial(u64),
    /// The whole file is in: the video.
    Complete(Video),
}

/// A video as YouTube describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Video {
    /// Its id (`https://youtu.be/<id>`).
    pub id: String,
    /// `status.uploadStatus`: `uploaded`, `processed`, `failed`, `rejected`, `deleted`.
    pub upload_status: Option<String>,
    /// Why it failed or was rejected (`status.failureReason` / `status.rejectionReason`).
    pub problem: Option<String>,
}

impl Video {
    fn from_json(value: &Value) -> Option<Self> {
        let id = value.get("id")?.as_str()?.to_owned();
        let status = value.get("status");
        let text = |key: &str| status.and_then(|s| s.get(key)).and_then(Value::as_str);
        Some(Self {
            id,
            upload_status: text("uploadStatus").map(str::to_owned),
            problem: text("rejectionReason").or_else(|| text("failureReason")).map(str::to_owned),
        })
    }
}

/// A call the engine must act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// The day's quota is spent (`403 quotaExceeded`, `dailyLimitExceeded`): nothing to do
    /// before midnight Pacific.
    Quota(String),
    /// The channel may upload no more today (`400 uploadLimitExceeded`).
    UploadLimit,
    /// YouTube refused this video for a reason no retry can fix (invalid metadata, a forbidden
    /// setting): its reason and message.
    Refused {
        /// The status.
        status: StatusCode,
        /// Google's reason (`invalidTitle`, `invalidCategoryId`, …).
        reason: String,
        /// Google's message.
        message: String,
    },
    /// The upload session is gone (`404`, `410`): a new one must start from byte 0.
    SessionGone(StatusCode),
    /// YouTube asks to slow down (`403 rateLimitExceeded`, `userRateLimitExceeded`).
    Throttled(String),
    /// The credentials were refused even after a fresh token (`401`).
    Credentials,
    /// Another answer the engine has no rule for.
    Status {
        /// The status.
        status: StatusCode,
        /// Google's reason, if it gave one.
        reason: Option<String>,
    },
    /// The answer breaks the protocol (no `Location`, a `Range` past what was sent).
    Protocol(String),
    /// The client could not get an answer (after its own retries): its error.
    Client(unattended_client::Error),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quota(reason) => write!(f, "YouTube's daily quota is spent ({reason})"),
            Self::UploadLimit => {
                f.write_str("the channel uploaded all it may today (uploadLimitExceeded)")
            }
            Self::Refused { status, reason, message } => {
                write!(f, "YouTube refused the video: {reason} ({}): {message}", status.as_u16())
            }
            Self::SessionGone(status) => {
                write!(f, "the upload session is gone ({})", status.as_u16())
            }
            Self::Throttled(reason) => write!(f, "YouTube asks to slow down ({reason})"),
            Self::Credentials => f.write_str("YouTube refused the credentials (401)"),
            Self::Status { status, reason } => {
                write!(f, "YouTube answered {}", status.as_u16())?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
            Self::Protocol(what) => write!(f, "YouTube's answer breaks the protocol: {what}"),
            Self::Client(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<unattended_client::Error> for ApiError {
    fn from(e: unattended_client::Error) -> Self {
        Self::Client(e)
    }
}

/// The endpoints, on a client whose base URL is YouTube's (`https://www.googleapis.com`).
#[derive(Clone, Copy, Debug)]
pub struct YoutubeApi<'a> {
    client: &'a Client,
}

impl<'a> YoutubeApi<'a> {
    /// The endpoints on `client`.
    pub fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Starts an upload session for `size` bytes of `content_type` described by `resource`;
    /// returns the session URI.
    ///
    /// # Errors
    ///
    /// See [`ApiError`]: quota, upload limit, refused metadata, or the client's error.
    pub async fn start(
        &self,
        resource: &Value,
        size: u64,
        content_type: &str,
    ) -> Result<String, ApiError> {
        let body = serde_json::to_vec(resource)
            .map_err(|e| ApiError::Protocol(format!("the video resource: {e}")))?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(INSERT_PATH)
            .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
            .header("x-upload-content-length", size)
            .header("x-upload-content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ApiError::Protocol(e.to_string()))?;
        req.extensions_mut().insert(Retryable);
        let res = self.client.send(req).await?;
        let status = res.status();
        if status.is_success() {
            let location = res
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.parse::<http::Uri>().is_ok_and(|u| u.scheme().is_some()));
            return location
                .map(str::to_owned)
                .ok_or_else(|| ApiError::Protocol("no session URI in Location".to_owned()));
        }
        Err(refusal(status, res.into_body()).await)
    }

    /// Sends `bytes` as the chunk starting at `first` of a `total`-byte upload.
    ///
    /// # Errors
    ///
    /// See [`ApiError`]; an interruption is [`ApiError::Client`] (ask with
    /// [`status`](Self::status) where the upload stands).
    pub async fn put_chunk(
        &self,
        session: &str,
        first: u64,
        bytes: Bytes,
        total: u64,
        content_type: &str,
    ) -> Result<Stored, ApiError> {
        let len = bytes.len() as u64;
        if len == 0 || first + len > total {
            return Err(ApiError::Protocol(format!(
                "a chunk of {len} bytes at {first} does not fit in {total}"
            )));
        }
        let range = format!("bytes {first}-{}/{total}", first + len - 1);
        let mut req = Request::builder()
            .method(Method::PUT)
            .uri(session)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_RANGE, range)
            .body(Full::new(bytes))
            .map_err(|e| ApiError::Protocol(e.to_string()))?;
        req.extensions_mut().insert(NotIdempotent);
        let res = self.client.send(req).await?;
        stored(res, first + len).await
    }

    /// Asks where the upload of `total` bytes stands.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn status(&self, session: &str, total: u64) -> Result<Stored, ApiError> {
        let req = Request::builder()
            .method(Method::PUT)
            .uri(session)
            .header(header::CONTENT_RANGE, format!("bytes */{total}"))
            .body(Full::default())
            .map_err(|e| ApiError::Protocol(e.to_string()))?;
        let res = self.client.send(req).await?;
        stored(res, total).await
    }

    /// `videos.list` for `id`: the video, or `None` if YouTube does not know it.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn find(&self, id: &str) -> Result<Option<Video>, ApiError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::Protocol(format!("{id:?} is not a video id")));
        }
        let req = Request::get(format!("/youtube/v3/videos?part=status&id={id}"))
            .body(Full::default())
            .map_err(|e| ApiError::Protocol(e.to_string()))?;
        let res = self.client.send(req).await?;
        let status = res.status();
        if !status.is_success() {
            return Err(refusal(status, res.into_body()).await);
        }
        let body = read(res.into_body()).await?;
        let list: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::Protocol(format!("videos.list answer: {e}")))?;
        let items = list.get("items").and_then(Value::as_array);
        Ok(items.into_iter().flatten().filter_map(Video::from_json).find(|v| v.id == id))
    }
}

async fn read(body: Body) -> Result<Bytes, ApiError> {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ApiError::Protocol(format!("the answer could not be read: {e}")))
}

/// Reads a chunk's or status query's answer; `sent_to` is one past the last byte sent.
async fn stored(res: http::Response<Body>, sent_to: u64) -> Result<Stored, ApiError> {
    let status = res.status();
    if status == StatusCode::PERMANENT_REDIRECT {
        let kept = match res.headers().get(header::RANGE) {
            None => 0,
            Some(value) => {
                let text = value.to_str().unwrap_or("");
                parse_range(text)
                    .ok_or_else(|| ApiError::Protocol(format!("unreadable Range {text:?}")))?
            }
        };
        if kept > sent_to {
            return Err(ApiError::Protocol(format!(
                "Range says {kept} bytes are kept, but only {sent_to} were sent"
            )));
        }
        return Ok(Stored::Partial(kept));
    }
    if status == StatusCode::OK || status == StatusCode::CREATED {
        let body = read(res.into_body()).await?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::Protocol(format!("the video answer: {e}")))?;
        return Video::from_json(&value)
            .map(Stored::Complete)
            .ok_or_else(|| ApiError::Protocol("the video answer has no id".to_owned()));
    }
    Err(refusal(status, res.into_body()).await)
}

/// `Range: bytes=0-N` (or `bytes 0-N`, as some servers write it) → N + 1 bytes kept; `None`
/// for anything else (a range not from 0, an end that is not a number or is `u64::MAX`).
pub fn parse_range(text: &str) -> Option<u64> {
    let spec = text.trim().strip_prefix("bytes")?.trim_start_matches(['=', ' ']);
    let (first, last) = spec.split_once('-')?;
    if first.trim() != "0" {
        return None;
    }
    last.trim().parse::<u64>().ok()?.checked_add(1)
}

/// Google's reason and message from its JSON error envelope.
pub(crate) fn google_reason(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return (None, None) };
    let error = value.get("error");
    let reason = error
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .and_then(|errors| errors.first())
        .and_then(|first| first.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_owned);
    (reason, message)
}

/// What an error answer means for the engine.
async fn refusal(status: StatusCode, body: Body) -> ApiError {
    // An unreadable error body still has its status.
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    classify(status, &bytes)
}

/// The rule behind [`refusal`], sans I/O.
pub(crate) fn classify(status: StatusCode, body: &[u8]) -> ApiError {
    let (reason, message) = google_reason(body);
    let reason_is = |names: &[&str]| reason.as_deref().is_some_and(|r| names.contains(&r));
    match status.as_u16() {
        404 | 410 => ApiError::SessionGone(status),
        401 => ApiError::Credentials,
        403 if reason_is(&["quotaExceeded", "dailyLimitExceeded"]) => {
            ApiError::Quota(reason.unwrap_or_default())
        }
        403 if reason_is(&["rateLimitExceeded", "userRateLimitExceeded"]) => {
            ApiError::Throttled(reason.unwrap_or_default())
        }
        400 if reason_is(&["uploadLimitExceeded"]) => ApiError::UploadLimit,
        // The video's own fault: its metadata or a setting the channel may not use.
        400 | 403
            if reason.is_some()
                && (status == StatusCode::BAD_REQUEST || reason_is(&FORBIDDEN_SETTINGS)) =>
        {
            ApiError::Refused {
                status,
                reason: reason.unwrap_or_default(),
                message: message.unwrap_or_default(),
            }
        }
        _ => ApiError::Status { status, reason },
    }
}

const FORBIDDEN_SETTINGS: [&str; 3] =
    ["forbiddenLicenseSetting", "forbiddenPrivacySetting", "forbiddenEmbedSetting"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_both_forms() {
        assert_eq!(parse_range("bytes=0-262143"), Some(262_144));
        assert_eq!(parse_range("bytes 0-0"), Some(1));
        for bad in ["bytes=5-9", "bytes=0-", "0-9", "bytes=0-x", "items=0-9"] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_by_status_and_reason() {
        let body = |reason: &str| {
            format!(
                r#"{{"error":{{"errors":[{{"reason":"{reason}","message":"m"}}],"code":400,"message":"why"}}}}"#
            )
        };
        let s = |n: u16| StatusCode::from_u16(n).unwrap();
        assert!(matches!(classify(s(403), body("quotaExceeded").as_bytes()), ApiError::Quota(_)));
        assert!(matches!(
            classify(s(403), unattended_testkit_quota().as_bytes()),
            ApiError::Quota(_)
        ));
        assert!(matches!(
            classify(s(400), body("uploadLimitExceeded").as_bytes()),
            ApiError::UploadLimit
        ));
        assert!(matches!(
            classify(s(403), body("userRateLimitExceeded").as_bytes()),
            ApiError::Throttled(_)
        ));
        match classify(s(400), body("invalidTitle").as_bytes()) {
            ApiError::Refused { reason, message, .. } => {
                assert_eq!((reason.as_str(), message.as_str()), ("invalidTitle", "why"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(s(403), body("forbiddenPrivacySetting").as_bytes()),
            ApiError::Refused { .. }
        ));
        // A forbidden account is not the video's fault.
        assert!(matches!(classify(s(403), body("forbidden").as_bytes()), ApiError::Status { .. }));
        assert!(matches!(classify(s(404), b""), ApiError::SessionGone(_)));
        assert!(matches!(classify(s(410), b"<html>"), ApiError::SessionGone(_)));
        assert!(matches!(classify(s(401), b""), ApiError::Credentials));
        assert!(matches!(classify(s(400), b"not json"), ApiError::Status { .. }));
    }

    fn unattended_testkit_quota() -> String {
        // Google's body as captured (youtube.quota domain, HTML in the message).
        r#"{"error":{"errors":[{"domain":"youtube.quota","reason":"quotaExceeded","message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."}],"code":403,"message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."}}"#.to_owned()
    }
}
