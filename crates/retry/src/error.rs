//! The one failure this layer adds: it stopped retrying a failure that might pass.

use std::error::Error as StdError;
use std::fmt;

use jiff::Timestamp;
use unattended_core::{BoxError, Disposition, FailureClass, HasDisposition, ServiceKey};

/// Why the layer stopped retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Every attempt allowed was made.
    MaxAttempts,
    /// The next retry would start after the overall deadline.
    Deadline,
    /// The retry budget shared by all callers is spent: the service is failing for many requests.
    Budget,
    /// The server asked to wait longer than the layer may sleep.
    ServerWaitTooLong,
    /// The request is not idempotent (a `POST` or `PATCH` without an `Idempotency-Key`, or a
    /// request marked [`NotIdempotent`](crate::NotIdempotent)), and the failure does not prove
    /// the server did nothing (a connect failure or a `429` would).
    NotIdempotent,
    /// The request's body is a stream that cannot be sent again.
    NotReplayable,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MaxAttempts => "no attempts left",
            Self::Deadline => "the next retry would pass the deadline",
            Self::Budget => "the retry budget is spent (the service is failing for many requests)",
            Self::ServerWaitTooLong => "the server asked for a longer wait than allowed",
            Self::NotIdempotent => {
                "the request is not idempotent; add an Idempotency-Key header or the Retryable \
                 extension if it is safe to repeat"
            }
            Self::NotReplayable => {
                "the request body is a stream that cannot be sent again; buffer it to allow retries"
            }
        })
    }
}

/// The layer stopped retrying a failure that a later attempt might fix.
///
/// It says how many attempts were made, why the layer stopped, what the last failure was, and
/// when to try again: the server's time if it gave one, otherwise one more backoff delay from
/// now. Its [`disposition`](HasDisposition::disposition) is [`Disposition::RetryAt`] that time.
///
/// A failure that no retry can fix (a 404, a refused credential) is not wrapped: the layer
/// returns the response or error as it came.
#[derive(Debug)]
pub struct GaveUp {
    pub(crate) attempts: u32,
    pub(crate) reason: GiveUpReason,
    pub(crate) last: FailureClass,
    pub(crate) retry_at: Timestamp,
    pub(crate) key: Option<ServiceKey>,
    pub(crate) source: Option<BoxError>,
}

impl GaveUp {
    /// The error of code that retries by hand (a `reqwest-middleware` adapter) with the same
    /// rules: `attempts` made, stopped for `reason`, the last failure `last`, to be tried again
    /// at `retry_at`.
    pub fn new(
        attempts: u32,
        reason: GiveUpReason,
        last: FailureClass,
        retry_at: Timestamp,
        key: Option<ServiceKey>,
    ) -> Self {
        Self { attempts, reason, last, retry_at, key, source: None }
    }

    /// How many attempts were made, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the layer stopped.
    pub fn reason(&self) -> GiveUpReason {
        self.reason
    }

    /// The class of the last attempt's failure.
    pub fn last_failure(&self) -> FailureClass {
        self.last
    }

    /// When to try again.
    pub fn retry_at(&self) -> Timestamp {
        self.retry_at
    }

    /// The service the request was for, if known.
    pub fn key(&self) -> Option<&ServiceKey> {
        self.key.as_ref()
    }
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gave up")?;
        if let Some(key) = &self.key {
            write!(f, " on {key}")?;
        }
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            " after {} attempt{plural} ({}): last failure was {}; retry after {}",
            self.attempts, self.reason, self.last, self.retry_at
        )
    }
}

impl StdError for GaveUp {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

impl HasDisposition for GaveUp {
    fn disposition(&self) -> Disposition {
        Disposition::RetryAt(self.retry_at)
    }
}
