//! What the breaker reports while it works.

use std::sync::Arc;

use jiff::Timestamp;
use unattended_core::ServiceKey;

/// Something a breaker did.
///
/// # When events fire
///
/// - [`Opened`](BreakerEvent::Opened): the window called for it, a probe failed, or someone
///   forced it open (`tracing` `WARN`).
/// - [`HalfOpened`](BreakerEvent::HalfOpened): the first call after the open time found it over
///   and became a probe (`INFO`).
/// - [`Closed`](BreakerEvent::Closed): enough probes succeeded (`INFO`).
/// - [`Rejected`](BreakerEvent::Rejected): a call failed fast with
///   [`BreakerOpen`](crate::BreakerOpen) (`DEBUG`).
///
/// Calls through a closed breaker fire nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerEvent {
    /// Calls to `key` fail fast until `until`.
    Opened {
        /// The service.
        key: ServiceKey,
        /// When probing starts.
        until: Timestamp,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// Probes may test `key`.
    HalfOpened {
        /// The service.
        key: ServiceKey,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// `key` is healthy again.
    Closed {
        /// The service.
        key: ServiceKey,
        /// Wall time of the event.
        at: Timestamp,
    },
    /// A call to `key` failed fast.
    Rejected {
        /// The service.
        key: ServiceKey,
        /// When to try again.
        retry_at: Timestamp,
        /// Wall time of the event.
        at: Timestamp,
    },
}

pub(crate) type EventHook = Arc<dyn Fn(&BreakerEvent) + Send + Sync>;
