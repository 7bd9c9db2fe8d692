//! Credentials: what goes wrong when a request needs one, and the mark of a renewed one.

use jiff::Timestamp;

use crate::{BoxError, Disposition, HasDisposition};

/// No usable credential could be put on a request.
///
/// Defined here rather than in the token layer so that the shared classifier can read it: a retry
/// layer outside does not retry a revoked grant, and stops at once when the token endpoint cannot
/// answer before `retry_at`. Nothing in it is secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The credentials were refused for good: the grant was revoked (OAuth2 `invalid_grant`), or
    /// a token fetched a moment ago was refused too. Nothing is retried until a human replaces
    /// them.
    #[error("the credentials were refused ({reason}); a human must re-authorize")]
    Reauthorize {
        /// What the server said, without any secret.
        reason: String,
    },
    /// The token expired and could not be refreshed; the next attempt is not before `retry_at`.
    #[error("the token expired and could not be refreshed; retry after {retry_at}")]
    RefreshFailed {
        /// When the token endpoint will be tried again.
        retry_at: Timestamp,
        /// The last failure, if this call saw it.
        #[source]
        source: Option<BoxError>,
    },
    /// The server refused the token (HTTP 401) and a new one was fetched, but the request's body
    /// is a stream that cannot be sent twice. Send the request again (with a buffered body).
    #[error(
        "the server refused the token and a new one is ready, but the request body is a stream \
         and was not sent again; send the request again"
    )]
    NotReplayed {
        /// When the request may be sent again: at once.
        retry_at: Timestamp,
    },
    /// The token source gave a token that cannot be put on a request (it holds characters an
    /// HTTP header or query cannot carry). A bug in the source or its configuration.
    #[error("the token source gave a token that cannot be put on a request ({what})")]
    Unusable {
        /// What is wrong with it, without the token.
        what: &'static str,
    },
}

impl HasDisposition for TokenError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Reauthorize { .. } => Disposition::Reauthorize,
            Self::RefreshFailed { retry_at, .. } | Self::NotReplayed { retry_at } => {
                Disposition::RetryAt(*retry_at)
            }
            Self::Unusable { .. } => Disposition::Stop,
        }
    }
}

/// Marks a `401` response whose credential the token layer has already replaced.
///
/// A token layer that leaves replays to a retry layer outside it inserts this as a response
/// extension; [`HttpClassifier`](crate::HttpClassifier) then classes the response as
/// [`FailureClass::CredentialRenewed`](crate::FailureClass::CredentialRenewed), which the retry
/// layer sends once more at once. A `401` without it is
/// [`FailureClass::AuthExpired`](crate::FailureClass::AuthExpired): sending it again cannot help.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredentialRenewed;
