//! The errors of requests refused without being sent: a paused host, an open breaker; and the
//! record of either, as saved and restored.

use std::error::Error as StdError;
use std::fmt;

use jiff::Timestamp;

use crate::{Disposition, HasDisposition, ServiceKey};

/// A service held back until an instant, as saved and restored: an open breaker (when probing
/// starts) or a paused host (when the pause ends). The until is wall time, so it means the same
/// after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldUntil {
    /// The service.
    pub key: ServiceKey,
    /// When it may be called again.
    pub until: Timestamp,
}

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

/// A request was not sent because the circuit breaker for its service is open: the service has
/// been failing, and calls to it fail fast until `retry_at`.
///
/// Defined here so the shared classifier can read it: a retry layer outside does not retry it
/// (the breaker already knows the service is down), and the runner skips the work that needs the
/// service ([`Disposition::Skip`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerOpen {
    /// The failing service.
    pub key: ServiceKey,
    /// When the breaker lets a probe through again.
    pub retry_at: Timestamp,
}

impl BreakerOpen {
    /// The error for `key`, open until `retry_at`.
    pub fn new(key: ServiceKey, retry_at: Timestamp) -> Self {
        Self { key, retry_at }
    }
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit open for {} after repeated failures; retry after {}",
            self.key, self.retry_at
        )
    }
}

impl StdError for BreakerOpen {}

impl HasDisposition for BreakerOpen {
    fn disposition(&self) -> Disposition {
        Disposition::Skip(self.key.clone())
    }
}
