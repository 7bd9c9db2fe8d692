//! What goes wrong when a token is needed.

use jiff::Timestamp;
use unattended_core::{BoxError, Disposition, HasDisposition};

/// No usable token could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The credentials were refused for good; nothing is retried until they are replaced
    /// ([`TokenCache::reset_credentials`](crate::TokenCache::reset_credentials)).
    #[error("the credentials were refused ({reason}); a human must re-authorize")]
    Reauthorize {
        /// What the server said, without any secret.
        reason: String,
    },
    /// The token expired and could not be refreshed; the next attempt is not before `retry_at`.
    #[error("the token expired and could not be refreshed; retry after {retry_at}")]
    RefreshFailed {
        /// When the cache will try the token endpoint again.
        retry_at: Timestamp,
        /// The last failure, if this call saw it.
        #[source]
        source: Option<BoxError>,
    },
}

impl HasDisposition for TokenError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Reauthorize { .. } => Disposition::Reauthorize,
            Self::RefreshFailed { retry_at, .. } => Disposition::RetryAt(*retry_at),
        }
    }
}
