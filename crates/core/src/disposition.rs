//! What the runner should do with a failure that reached it.

use std::fmt;

use jiff::Timestamp;

use crate::ServiceKey;

/// The runner's instruction for an error that left the client.
///
/// Every error type of the workspace that can reach a caller says which of these it means, through
/// [`HasDisposition`]. The table in the design maps them to actions:
///
/// | disposition | example | the runner |
/// |---|---|---|
/// | [`RetryAt`](Disposition::RetryAt) | 429, 503, reset, timeout | reschedules the task at that time, from its checkpoint |
/// | [`Skip`](Disposition::Skip) | one API down (breaker open) | skips steps that need it; other tasks go on |
/// | [`Reauthorize`](Disposition::Reauthorize) | refresh token revoked | alerts: a human must re-authorize |
/// | [`Stop`](Disposition::Stop) | bad config, disk full, a 4xx bug | alerts a human and stops that task |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The failure is temporary: try again at (not before) this time.
    RetryAt(Timestamp),
    /// This service is unavailable for now: skip the work that needs it.
    Skip(ServiceKey),
    /// Credentials were refused and cannot be renewed without a human.
    Reauthorize,
    /// Retrying cannot help: a human must look.
    Stop,
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RetryAt(at) => write!(f, "retry at {at}"),
            Self::Skip(key) => write!(f, "skip work that needs {key}"),
            Self::Reauthorize => f.write_str("re-authorize"),
            Self::Stop => f.write_str("stop"),
        }
    }
}

/// An error that knows what the runner should do about it.
pub trait HasDisposition {
    /// The runner's instruction for this error.
    fn disposition(&self) -> Disposition;
}
