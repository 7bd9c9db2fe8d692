//! The one error type of the client.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;
use jiff::Timestamp;
use unattended_core::{
    BoxError, BreakerOpen, Disposition, FailureClass, HasDisposition, HostPaused, ServiceKey,
    TokenError, TransientCause, classify_error_chain,
};
use unattended_gate::OutsideWindow;
use unattended_retry::GaveUp;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Timeout,
    Connect,
    RateLimited,
    Unavailable,
    Credentials,
    OutsideWindow,
    Status(StatusCode),
    Body,
    Json,
    Request,
    Transport,
}

/// A call failed. Ask it what happened (`is_*`), what to do next
/// ([`disposition`](HasDisposition::disposition)), which service and how many attempts; the
/// cause is its [`source`](StdError::source). It never holds a secret.
pub struct Error {
    kind: Kind,
    disposition: Disposition,
    key: Option<ServiceKey>,
    attempts: Option<u32>,
    source: Option<BoxError>,
}

impl Error {
    /// Reads an error that came out of the stack, at `now`.
    pub(crate) fn from_stack(error: BoxError, key: Option<ServiceKey>, now: Timestamp) -> Self {
        let mut attempts = None;
        let mut key = key;
        let mut disposition = None;
        let mut current: Option<&(dyn StdError + 'static)> = Some(&*error);
        while let Some(err) = current {
            if let Some(gave_up) = err.downcast_ref::<GaveUp>() {
                attempts = Some(gave_up.attempts());
                key = key.or_else(|| gave_up.key().cloned());
                disposition = disposition.or(Some(gave_up.disposition()));
            } else if let Some(e) = err.downcast_ref::<HostPaused>() {
                disposition = disposition.or(Some(e.disposition()));
            } else if let Some(e) = err.downcast_ref::<BreakerOpen>() {
                disposition = Some(e.disposition());
            } else if let Some(e) = err.downcast_ref::<TokenError>() {
                disposition = Some(match (e, &key) {
                    // The token endpoint cannot give a token for now: the service cannot be
                    // reached, as behind an open breaker. The work that needs it waits (and the
                    // token cache spaces its tries); it is not the task's failure.
                    (TokenError::RefreshFailed { .. }, Some(key)) => Disposition::Skip(key.clone()),
                    _ => e.disposition(),
                });
            } else if let Some(e) = err.downcast_ref::<OutsideWindow>() {
                disposition = Some(e.disposition());
            }
            current = err.source();
        }
        let class = last_class(&*error);
        let kind = match class {
            FailureClass::Transient(TransientCause::Timeout) => Kind::Timeout,
            FailureClass::Transient(TransientCause::Connect) => Kind::Connect,
            FailureClass::Transient(TransientCause::Status(s)) => Kind::Status(s),
            FailureClass::RateLimited { .. } => Kind::RateLimited,
            FailureClass::Unavailable { .. } if find::<TokenError>(&*error) => Kind::Credentials,
            FailureClass::Unavailable { .. } => Kind::Unavailable,
            FailureClass::AuthExpired | FailureClass::CredentialRenewed => Kind::Credentials,
            _ if find::<OutsideWindow>(&*error) => Kind::OutsideWindow,
            _ if find::<TokenError>(&*error) => Kind::Credentials,
            _ => Kind::Transport,
        };
        let disposition = disposition.unwrap_or_else(|| match class {
            FailureClass::AuthExpired => Disposition::Reauthorize,
            FailureClass::Permanent(_) => Disposition::Stop,
            other => Disposition::RetryAt(other.not_before().unwrap_or(now)),
        });
        Self { kind, disposition, key, attempts, source: Some(error) }
    }

    /// A response with an error status the caller asked to be an error.
    pub(crate) fn from_status(
        status: StatusCode,
        class: Option<FailureClass>,
        key: Option<ServiceKey>,
        now: Timestamp,
    ) -> Self {
        let disposition = match class {
            Some(FailureClass::AuthExpired | FailureClass::CredentialRenewed) => {
                Disposition::Reauthorize
            }
            Some(FailureClass::RateLimited { until, .. }) => Disposition::RetryAt(until),
            Some(FailureClass::Transient(_)) => Disposition::RetryAt(now),
            _ => Disposition::Stop,
        };
        Self { kind: Kind::Status(status), disposition, key, attempts: None, source: None }
    }

    pub(crate) fn body(source: BoxError, key: Option<ServiceKey>, now: Timestamp) -> Self {
        Self {
            kind: Kind::Body,
            disposition: Disposition::RetryAt(now),
            key,
            attempts: None,
            source: Some(source),
        }
    }

    /// A body over the size limit: asking again brings the same body.
    pub(crate) fn too_big(limit: usize, key: Option<ServiceKey>) -> Self {
        let message = format!(
            "the response body is over the limit of {limit} bytes (raise \
             limits.max_response_bytes if it is expected)"
        );
        Self {
            kind: Kind::Body,
            disposition: Disposition::Stop,
            key,
            attempts: None,
            source: Some(message.into()),
        }
    }

    pub(crate) fn json(source: serde_json::Error, key: Option<ServiceKey>) -> Self {
        Self {
            kind: Kind::Json,
            disposition: Disposition::Stop,
            key,
            attempts: None,
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn request(source: impl Into<BoxError>) -> Self {
        Self {
            kind: Kind::Request,
            disposition: Disposition::Stop,
            key: None,
            attempts: None,
            source: Some(source.into()),
        }
    }

    /// No answer in time (an attempt timed out, and retries did not help).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// No connection could be made.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// The server asked to wait longer than the call may: see the disposition for when.
    pub fn is_rate_limited(&self) -> bool {
        self.kind == Kind::RateLimited
    }

    /// The service's circuit breaker is open: it has been failing.
    pub fn is_unavailable(&self) -> bool {
        self.kind == Kind::Unavailable
    }

    /// No valid credential could be had, or it was refused for good.
    pub fn is_credentials(&self) -> bool {
        self.kind == Kind::Credentials
    }

    /// The action is outside its time window.
    pub fn is_outside_window(&self) -> bool {
        self.kind == Kind::OutsideWindow
    }

    /// The response's status, when the failure is an error status.
    pub fn status(&self) -> Option<StatusCode> {
        match self.kind {
            Kind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The response body could not be read (broken off, or over the size limit).
    pub fn is_body(&self) -> bool {
        self.kind == Kind::Body
    }

    /// The response body is not the JSON expected.
    pub fn is_json(&self) -> bool {
        self.kind == Kind::Json
    }

    /// The request itself is invalid (a bad URL).
    pub fn is_request(&self) -> bool {
        self.kind == Kind::Request
    }

    /// The service the call was for.
    pub fn key(&self) -> Option<&ServiceKey> {
        self.key.as_ref()
    }

    /// Attempts made, when the retry layer gave up.
    pub fn attempts(&self) -> Option<u32> {
        self.attempts
    }
}

fn find<E: StdError + 'static>(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if err.is::<E>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// The class of the failure behind `error`: the retry layer's last failure if it gave up.
fn last_class(error: &(dyn StdError + 'static)) -> FailureClass {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(gave_up) = err.downcast_ref::<GaveUp>() {
            return gave_up.last_failure();
        }
        current = err.source();
    }
    classify_error_chain(error)
}

impl HasDisposition for Error {
    fn disposition(&self) -> Disposition {
        self.disposition.clone()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("disposition", &self.disposition)
            .field("key", &self.key)
            .field("attempts", &self.attempts)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Timeout => "no answer in time",
            Kind::Connect => "could not connect",
            Kind::RateLimited => "rate limited",
            Kind::Unavailable => "service unavailable (circuit open)",
            Kind::Credentials => "credentials refused or unavailable",
            Kind::OutsideWindow => "outside the allowed time window",
            Kind::Status(_) => "error status",
            Kind::Body => "response body could not be read",
            Kind::Json => "response is not the expected JSON",
            Kind::Request => "invalid request",
            Kind::Transport => "request failed",
        };
        f.write_str(what)?;
        if let Kind::Status(status) = self.kind {
            write!(f, " {}", status.as_u16())?;
        }
        if let Some(key) = &self.key {
            write!(f, " ({key})")?;
        }
        if let Some(attempts) = self.attempts {
            write!(f, " after {attempts} attempts")?;
        }
        write!(f, "; next: {}", self.disposition)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}
