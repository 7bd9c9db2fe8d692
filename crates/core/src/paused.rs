//! The error of a request refused because its host is paused.

use std::error::Error as StdError;
use std::fmt;

use jiff::Timestamp;

use crate::{Disposition, HasDisposition, ServiceKey};

/// A request was not sent because the server asked every caller of its host to wait until
/// `until`, and that is longer than this caller may wait.
///
/// Defined here rather than in the rate-limit layer so that the shared classifier can read it:
/// a retry layer outside sees a [`FailureClass::RateLimited`](crate::FailureClass::RateLimited)
/// with the same `until`, and stops at once instead of retrying into the pause.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostPaused {
    /// The paused service.
    pub key: ServiceKey,
    /// When the pause ends.
    pub until: Timestamp,
}

impl HostPaused {
    /// The error for `key`, paused until `until`.
    pub fn new(key: ServiceKey, until: Timestamp) -> Self {
        Self { key, until }
    }
}

impl fmt::Display for HostPaused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests to {} are paused until {} because the server asked for fewer requests; \
             retry after {}",
            self.key, self.until, self.until
        )
    }
}

impl StdError for HostPaused {}

impl HasDisposition for HostPaused {
    fn disposition(&self) -> Disposition {
        Disposition::RetryAt(self.until)
    }
}
