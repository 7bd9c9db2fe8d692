//! What an error is, from its `source()` chain.

use std::error::Error as StdError;
use std::io;

use super::{FailureClass, TransientCause};
use crate::{BreakerOpen, HostPaused, TokenError};

/// Classes an error by walking its `source()` chain.
///
/// - a timeout (`tower::timeout::error::Elapsed`, `tokio::time::error::Elapsed`, or an I/O error
///   of kind `TimedOut`) is [`TransientCause::Timeout`];
/// - an I/O error saying the connection could not be made (refused, unreachable, address not
///   available) is [`TransientCause::Connect`];
/// - an I/O error saying it broke (reset, aborted, broken pipe, unexpected end of file, not
///   connected) is [`TransientCause::Reset`];
/// - a [`HostPaused`] (a rate-limit pause longer than the caller may wait) is
///   [`FailureClass::RateLimited`] until the pause ends;
/// - a [`BreakerOpen`] is [`FailureClass::Unavailable`] until the breaker lets a probe through;
/// - a [`TokenError`]: a revoked grant is [`FailureClass::AuthExpired`], a token that could not be
///   refreshed is [`FailureClass::Unavailable`] until the next refresh, a refused token already
///   renewed is [`FailureClass::CredentialRenewed`], an unusable token is
///   [`FailureClass::Permanent`];
/// - anything else is [`TransientCause::Other`]: an unknown transport error is more often a
///   network hiccup than a bug, and the retry layer bounds the attempts anyway.
pub fn classify_error_chain(error: &(dyn StdError + 'static)) -> FailureClass {
    let mut current = Some(error);
    while let Some(err) = current {
        if err.is::<tower::timeout::error::Elapsed>() || err.is::<tokio::time::error::Elapsed>() {
            return FailureClass::Transient(TransientCause::Timeout);
        }
        if let Some(paused) = err.downcast_ref::<HostPaused>() {
            return FailureClass::RateLimited { until: paused.until, status: None };
        }
        if let Some(open) = err.downcast_ref::<BreakerOpen>() {
            return FailureClass::Unavailable { until: open.retry_at };
        }
        if let Some(token) = err.downcast_ref::<TokenError>() {
            return match token {
                TokenError::Reauthorize { .. } => FailureClass::AuthExpired,
                TokenError::RefreshFailed { retry_at, .. } => {
                    FailureClass::Unavailable { until: *retry_at }
                }
                TokenError::NotReplayed { .. } => FailureClass::CredentialRenewed,
                TokenError::Unusable { .. } => FailureClass::Permanent(None),
            };
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(cause) = io_cause(io.kind()) {
                return FailureClass::Transient(cause);
            }
            // An I/O error of another kind may wrap a more telling error.
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn StdError + 'static) = inner;
                if let FailureClass::Transient(cause) = classify_error_chain(inner)
                    && cause != TransientCause::Other
                {
                    return FailureClass::Transient(cause);
                }
            }
        }
        current = err.source();
    }
    FailureClass::Transient(TransientCause::Other)
}

fn io_cause(kind: io::ErrorKind) -> Option<TransientCause> {
    use io::ErrorKind::*;
    match kind {
        TimedOut => Some(TransientCause::Timeout),
        ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
        | NetworkDown => Some(TransientCause::Connect),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Some(TransientCause::Reset)
        }
        _ => None,
    }
}
