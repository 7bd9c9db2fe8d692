//! What an outcome is, decided once for every layer.
//!
//! A [`Classifier`] looks at a response or an error and answers with `Ok(())` or a
//! [`FailureClass`]. The retry layer retries transient failures, the rate-limit layer pauses on
//! rate limiting, the breaker counts transient failures, the token layer refreshes on an expired
//! credential: all of them read the same answer, so they never disagree about what happened.
//!
//! [`HttpClassifier`] is the HTTP default. [`ClockedClassifier`] is the same rules behind
//! tower-http's [`MakeClassifier`](tower_http::classify::MakeClassifier)/
//! [`ClassifyResponse`](tower_http::classify::ClassifyResponse) traits, so `TraceLayer` can log
//! the very classes the layers act on.
//!
//! The module is split as tower-http's `classify` is: the vocabulary and the trait here, each
//! classifier in a file of its own (`http_classifier.rs`, `clocked_classifier.rs`) and the error rules in
//! `error_chain.rs`.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;
use jiff::Timestamp;

use crate::Clock;

mod clocked_classifier;
mod error_chain;
mod http_classifier;

pub use self::clocked_classifier::ClockedClassifier;
pub use self::error_chain::classify_error_chain;
pub use self::http_classifier::HttpClassifier;

/// What kind of failure an outcome was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureClass {
    /// Worth retrying after a backoff: 5xx, 408, a reset connection, a timeout.
    Transient(TransientCause),
    /// The server asked us to wait until `until` (429 or 503 with `Retry-After` or rate-limit
    /// fields).
    RateLimited {
        /// Do not send to this server before this instant.
        until: Timestamp,
        /// The status code that carried the request, if the outcome was a response.
        status: Option<StatusCode>,
    },
    /// The service cannot be used before `until` (its circuit breaker is open, or the credential
    /// it needs cannot be had sooner): retrying sooner cannot help, and other work should go on.
    Unavailable {
        /// When the breaker lets a probe through again.
        until: Timestamp,
    },
    /// The credential was refused (401). Sending the same request again cannot help until a
    /// new credential is had; see [`CredentialRenewed`](Self::CredentialRenewed).
    AuthExpired,
    /// The credential was refused (401) and the token layer has already fetched a new one: the
    /// request may be sent once more, at once. Not [`is_retryable`](Self::is_retryable): the retry
    /// layer replays it once by its own rule, and the breaker does not count it.
    CredentialRenewed,
    /// Retrying the same request cannot help (other 4xx, 501, …).
    Permanent(Option<StatusCode>),
}

/// Why a [`FailureClass::Transient`] failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransientCause {
    /// The server answered with this status.
    Status(StatusCode),
    /// The connection could not be made, so no byte of the request was sent.
    Connect,
    /// The connection broke during the exchange.
    Reset,
    /// No answer in time.
    Timeout,
    /// Another error that is probably temporary (an I/O or protocol error).
    Other,
}

impl FailureClass {
    /// True for failures that a later attempt may fix: transient and rate-limited ones.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::RateLimited { .. })
    }

    /// True when the request certainly never reached the server (a connect failure), so even a
    /// non-idempotent request may be sent again.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Self::Transient(TransientCause::Connect))
    }

    /// True when the server certainly did not act on the request: it was never sent (a connect
    /// failure, a paused host, an open breaker) or the server refused it before doing anything
    /// (`429 Too Many Requests`, a refused credential). Sending a request that is not idempotent
    /// again is then safe.
    pub fn not_processed(&self) -> bool {
        match self {
            Self::Transient(TransientCause::Connect)
            | Self::Unavailable { .. }
            | Self::AuthExpired
            | Self::CredentialRenewed => true,
            Self::RateLimited { status, .. } => {
                status.is_none_or(|s| s == StatusCode::TOO_MANY_REQUESTS)
            }
            Self::Transient(TransientCause::Status(status)) => {
                *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// The instant before which the server asked not to be called again, if it said.
    pub fn not_before(&self) -> Option<Timestamp> {
        match self {
            Self::RateLimited { until, .. } | Self::Unavailable { until } => Some(*until),
            _ => None,
        }
    }

    /// The HTTP status behind this failure, when the outcome was a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Transient(TransientCause::Status(status)) => Some(*status),
            Self::RateLimited { status, .. } | Self::Permanent(status) => *status,
            Self::AuthExpired | Self::CredentialRenewed => Some(StatusCode::UNAUTHORIZED),
            Self::Transient(_) | Self::Unavailable { .. } => None,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(cause) => write!(f, "transient failure ({cause})"),
            Self::RateLimited { until, status } => {
                f.write_str("rate limited")?;
                if let Some(status) = status {
                    write!(f, " (HTTP {})", status.as_u16())?;
                }
                write!(f, " until {until}")
            }
            Self::Unavailable { until } => write!(f, "service down (circuit open) until {until}"),
            Self::AuthExpired => f.write_str("credential refused (HTTP 401)"),
            Self::CredentialRenewed => {
                f.write_str("credential refused (HTTP 401) and renewed; send once more")
            }
            Self::Permanent(Some(status)) => {
                write!(f, "permanent failure (HTTP {})", status.as_u16())
            }
            Self::Permanent(None) => f.write_str("permanent failure"),
        }
    }
}

impl fmt::Display for TransientCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {}", status.as_u16()),
            Self::Connect => f.write_str("connect failed"),
            Self::Reset => f.write_str("connection reset"),
            Self::Timeout => f.write_str("timed out"),
            Self::Other => f.write_str("error"),
        }
    }
}

/// Decides what the outcomes of a service are.
///
/// Implement it to use the layers around a service that is not HTTP: say which responses are
/// failures, and (optionally) how errors are classed. Classifiers are cheap to clone and shared
/// by every clone of a layer.
///
/// The `clock` is there for answers that depend on the time (a `Retry-After` of 30 seconds means
/// "until now + 30 s"); read it only when needed, since most outcomes are plain successes.
pub trait Classifier<Res>: Clone + Send + Sync + 'static {
    /// Classifies a response that has just arrived.
    fn classify_response(&self, response: &Res, clock: &Clock) -> Result<(), FailureClass>;

    /// Classifies an error that has just happened. The default walks the error's `source()`
    /// chain with [`classify_error_chain`].
    fn classify_error(&self, error: &(dyn StdError + 'static), clock: &Clock) -> FailureClass {
        let _ = clock;
        classify_error_chain(error)
    }
}

#[cfg(test)]
mod tests;
