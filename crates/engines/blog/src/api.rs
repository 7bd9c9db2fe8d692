//! Typed calls to DEV and Hashnode on `unattended-client`, and what their failures mean.
//!
//! Only the calls the engine needs: create, update, and find a post by the marker in its body.
//! Protocol quirks live here: DEV's `422 … has already been taken`, Hashnode's errors inside
//! HTTP `200` answers. Every failure is an [`ApiError`] that says what the runner should do
//! ([`ApiError::disposition`]) and whether a create may have been applied although it failed
//! ([`ApiError::may_have_applied`]): then the target is searched before anything is created
//! there again.

mod dev;
mod hashnode;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt as _;
use jiff::Timestamp;
use unattended_core::{Disposition, HasDisposition};

pub use self::dev::Dev;
pub use self::hashnode::Hashnode;
use crate::post::Post;
use crate::settings::Target;

/// What is sent for a post: the same on every target but for the canonical URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Draft {
    /// The title.
    pub title: String,
    /// The Markdown, the marker line at its end.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The series.
    pub series: Option<String>,
    /// The cover image's URL.
    pub cover_image: Option<String>,
    /// A short description.
    pub description: Option<String>,
    /// The original's URL, for a copy that is not the original.
    pub canonical_url: Option<String>,
}

impl Draft {
    /// The draft of `post`, pointing at `canonical_url` if given.
    pub fn new(post: &Post, canonical_url: Option<&str>) -> Self {
        let mut body = post.body.trim_end().to_owned();
        body.push_str("\n\n");
        body.push_str(&marker_line(&post.marker));
        body.push('\n');
        Self {
            title: post.meta.title.clone(),
            body,
            tags: post.meta.tags.clone(),
            series: post.meta.series.clone(),
            cover_image: post.meta.cover_image.clone(),
            description: post.meta.description.clone(),
            canonical_url: canonical_url.map(str::to_owned),
        }
    }
}

/// The line at the end of every copy's body: an HTML comment (not shown to readers) by which the
/// engine finds its own copies again.
pub fn marker_line(marker: &str) -> String {
    format!("<!-- unattended-blog:{marker} -->")
}

/// The marker in a copy's body, if it has one.
pub fn marker_in(body: &str) -> Option<&str> {
    let start = body.rfind("<!-- unattended-blog:")? + "<!-- unattended-blog:".len();
    let len = body[start..].find(" -->")?;
    Some(&body[start..start + len])
}

/// A post's copy on a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Article {
    /// The target's id for it.
    pub id: String,
    /// Its URL.
    pub url: String,
}

/// A call to a blog API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client gave up (transport, throttles, outages, refused credentials, the time
    /// window); its disposition says what next.
    #[error(transparent)]
    Client(#[from] unattended_client::Error),
    /// The target refused the post itself (validation); its message says why.
    #[error("{target} refused the post: {message}")]
    Rejected {
        /// Where.
        target: Target,
        /// The target's message.
        message: String,
    },
    /// DEV's duplicate guard: an article with the same title and body, or the same canonical
    /// URL, is already there.
    #[error("{target} says the post is already there: {message}")]
    Taken {
        /// Where.
        target: Target,
        /// The target's message.
        message: String,
    },
    /// The copy to update is not there any more.
    #[error("{target} no longer has the copy to update: {message}")]
    NotFound {
        /// Where.
        target: Target,
        /// The target's message.
        message: String,
    },
    /// The token was refused (Hashnode's `UNAUTHENTICATED`).
    #[error("{target} refused the token: {message}")]
    Unauthenticated {
        /// Where.
        target: Target,
        /// The target's message.
        message: String,
    },
    /// The token may not do this (Hashnode's `FORBIDDEN`).
    #[error("{target} forbids it: {message}")]
    Forbidden {
        /// Where.
        target: Target,
        /// The target's message.
        message: String,
    },
    /// The publication posts go to is not there, or the token may not publish to it (Hashnode's
    /// `NOT_FOUND` or `FORBIDDEN` to a `publishPost`): the task's settings are wrong, not the
    /// post.
    #[error("{target} cannot publish to the publication {publication}: {message}")]
    Publication {
        /// Where.
        target: Target,
        /// The publication's id, as the settings give it.
        publication: String,
        /// The target's message.
        message: String,
    },
    /// The target throttles this token until `until` (Hashnode's `TOO_MANY_REQUESTS`).
    #[error("{target} is throttling until {until}: {message}")]
    Throttled {
        /// Where.
        target: Target,
        /// When to come back.
        until: Timestamp,
        /// The target's message.
        message: String,
    },
    /// The target failed inside (a `5xx` answer, Hashnode's `INTERNAL_SERVER_ERROR`, or a
    /// code this engine does not know): what it did is unknown.
    #[error("{target} failed ({code}): {message}")]
    Server {
        /// Where.
        target: Target,
        /// The error's code (`HTTP 507` for a status).
        code: String,
        /// The target's message.
        message: String,
        /// When it answered.
        at: Timestamp,
    },
    /// The answer was not what the protocol says (a body cut short, JSON of another shape):
    /// what the target did is unknown.
    #[error("{target} gave an answer that cannot be read: {message}")]
    Unreadable {
        /// Where.
        target: Target,
        /// What was wrong with it.
        message: String,
        /// When it answered.
        at: Timestamp,
    },
    /// The target refused the request as such (`400`, a GraphQL validation error, a `4xx` the
    /// protocol does not use here): a bug to report, not to retry.
    #[error("{target} refused the request ({status}): {message}")]
    Refused {
        /// Where.
        target: Target,
        /// The HTTP status.
        status: u16,
        /// The target's message.
        message: String,
    },
}

impl ApiError {
    /// Whether a create that failed so may have been applied: the target must be searched
    /// before the post is created there again. Only failures that prove nothing was done
    /// say no: no connection, the time window or an open breaker (nothing sent), refused
    /// credentials or a `429` (refused before any work), a validation refusal.
    pub fn may_have_applied(&self) -> bool {
        match self {
            Self::Client(e) => {
                !(e.is_connect()
                    || e.is_outside_window()
                    || e.is_unavailable()
                    || e.is_credentials()
                    || e.status() == Some(StatusCode::TOO_MANY_REQUESTS))
            }
            Self::Taken { .. } | Self::Server { .. } | Self::Unreadable { .. } => true,
            Self::Rejected { .. }
            | Self::NotFound { .. }
            | Self::Unauthenticated { .. }
            | Self::Forbidden { .. }
            | Self::Publication { .. }
            | Self::Throttled { .. }
            | Self::Refused { .. } => false,
        }
    }

    /// Whether the target refused this post's content (the post fails with the target's
    /// message until the file changes), rather than the call failing.
    pub fn is_about_the_post(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::Taken { .. } | Self::NotFound { .. })
    }
}

impl HasDisposition for ApiError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Client(e) => e.disposition(),
            Self::Unauthenticated { .. } => Disposition::Reauthorize,
            Self::Throttled { until, .. } => Disposition::RetryAt(*until),
            Self::Server { at, .. } | Self::Unreadable { at, .. } => Disposition::RetryAt(*at),
            Self::Rejected { .. }
            | Self::Taken { .. }
            | Self::NotFound { .. }
            | Self::Forbidden { .. }
            | Self::Publication { .. }
            | Self::Refused { .. } => Disposition::Stop,
        }
    }
}

/// A `5xx` answer: the target failed, and whether it acted first is unknown.
fn server_error(target: Target, status: StatusCode, at: Timestamp) -> ApiError {
    let message = status.canonical_reason().unwrap_or("server error").to_owned();
    ApiError::Server { target, code: format!("HTTP {}", status.as_u16()), message, at }
}

/// Reads a response's body whole (the client's stack bounds its size).
async fn read_body(
    target: Target,
    body: unattended_client::Body,
    at: Timestamp,
) -> Result<Bytes, ApiError> {
    body.collect().await.map(http_body_util::Collected::to_bytes).map_err(|e| {
        ApiError::Unreadable { target, message: format!("the body broke off: {e}"), at }
    })
}
