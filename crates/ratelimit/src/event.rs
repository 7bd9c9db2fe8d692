//! What the layer reports while it works.

use std::sync::Arc;

use jiff::Timestamp;
use unattended_core::{ServiceKey, WaitSource};

/// Something the rate-limit layer did.
///
/// # When events fire
///
/// - [`PauseSet`](RateLimitEvent::PauseSet): a response asked to slow down and the pause on its
///   host was set or extended (`tracing` `WARN`).
/// - [`Held`](RateLimitEvent::Held): a request for a paused host will wait for the pause to end
///   (`DEBUG`).
/// - [`Rejected`](RateLimitEvent::Rejected): a request for a paused host failed at once with
///   [`HostPaused`](crate::HostPaused), because the pause outlasts what it may wait (`INFO`).
/// - [`PauseEnded`](RateLimitEvent::PauseEnded): the first request (or released waiter) after
///   the end of a pause found it over and removed it (`INFO`).
///
/// Requests to hosts that are not paused fire nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitEvent {
    /// Requests to `key` are paused until `until`.
    PauseSet {
        /// The paused service.
        key: ServiceKey,
        /// When the pause ends.
        until: Timestamp,
        /// The field that asked for it.
        source: WaitSource,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// The pause on `key` is over.
    PauseEnded {
        /// The service.
        key: ServiceKey,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// A request to `key` waits until the pause ends (plus its share of the release spread).
    Held {
        /// The paused service.
        key: ServiceKey,
        /// When the pause ends.
        until: Timestamp,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// A request to `key` was refused: the pause lasts longer than it may wait.
    Rejected {
        /// The paused service.
        key: ServiceKey,
        /// When the pause ends.
        until: Timestamp,
        /// Wall time of the event.
        at: Timestamp,
    },
}

pub(crate) type EventHook = Arc<dyn Fn(&RateLimitEvent) + Send + Sync>;
