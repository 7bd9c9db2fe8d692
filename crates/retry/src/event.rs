//! What the layer reports while it works.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use unattended_core::{FailureClass, ServiceKey};

use crate::error::GiveUpReason;

/// Something the retry layer did.
///
/// # When events fire
///
/// - [`Retrying`](RetryEvent::Retrying): after a failed attempt, once the layer has decided to
///   retry and before it sleeps. Also logged with `tracing` at `WARN`.
/// - [`GaveUp`](RetryEvent::GaveUp): when the layer stops retrying a failure that might pass, just
///   before it returns [`GaveUp`](crate::GaveUp). Also logged at `INFO` (the caller gets the error).
///
/// Successes and failures that are not retryable fire nothing: the happy path stays silent and
/// cheap.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Attempt `attempt` failed and the layer will retry after `delay`.
    Retrying {
        /// The service, if known.
        key: Option<ServiceKey>,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// How long the layer waits before the next attempt.
        delay: Duration,
        /// What went wrong.
        reason: FailureClass,
        /// Wall time of the decision.
        at: Timestamp,
    },
    /// The layer stopped after `attempts` attempts.
    GaveUp {
        /// The service, if known.
        key: Option<ServiceKey>,
        /// Attempts made.
        attempts: u32,
        /// Why it stopped.
        reason: GiveUpReason,
        /// The last failure.
        last: FailureClass,
        /// When to try again.
        retry_at: Timestamp,
        /// Wall time of the decision.
        at: Timestamp,
    },
}

pub(crate) type EventHook = Arc<dyn Fn(&RetryEvent) + Send + Sync>;
