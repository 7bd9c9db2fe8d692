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
/// - [`Paced`](RateLimitEvent::Paced): the layer started pacing a host after its first throttle,
///   cut its rate on a throttle, or set it from the server's quota fields (`INFO`). The rate
///   also grows while calls succeed; that fires nothing.
///
/// Requests to hosts that are neither paused nor throttled fire nothing; nor does a request
/// waiting for its slot in a paced host's line.
#[derive(Clone, Debug, PartialEq)]
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
    /// Requests to `key` are now paced at `rate` per second.
    Paced {
        /// The paced service.
        key: ServiceKey,
        /// Requests per second.
        rate: f64,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// A request to `key` was refused: the pause (or its slot in a paced line) is further away
    /// than it may wait.
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
