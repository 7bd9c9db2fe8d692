//! The HTTP rules.

use http::{Extensions, HeaderMap, Response, StatusCode};
use jiff::Timestamp;

use super::{Classifier, FailureClass, TransientCause};
use crate::headers::{HeaderLimits, server_wait};
use crate::{Clock, CredentialRenewed};

/// The HTTP rules.
///
/// | status | class |
/// |---|---|
/// | 1xx, 2xx, 3xx | success |
/// | 401 | [`AuthExpired`](FailureClass::AuthExpired), or [`CredentialRenewed`](FailureClass::CredentialRenewed) when the response carries the [`CredentialRenewed`] extension |
/// | 429, 503 with `Retry-After` or rate-limit fields | [`RateLimited`](FailureClass::RateLimited) |
/// | 408, 425, 429, 500, 502, 503, 504 | [`Transient`](FailureClass::Transient) |
/// | 520–524 (a CDN could not reach the origin) | [`Transient`](FailureClass::Transient) |
/// | other 4xx and 5xx | [`Permanent`](FailureClass::Permanent) |
///
/// Errors are classed by [`classify_error_chain`](super::classify_error_chain). Server waits
/// are read by [`server_wait`] and capped by the classifier's [`HeaderLimits`].
///
/// # Example
///
/// ```
/// use http::{Response, StatusCode};
/// use unattended_core::HttpClassifier;
///
/// let now = "2026-11-28T10:00:00Z".parse().unwrap();
/// let res = Response::builder().status(429).header("retry-after", "30").body(()).unwrap();
/// let class = HttpClassifier::new().classify_status(res.status(), res.headers(), now).unwrap_err();
/// assert_eq!(class.not_before(), Some("2026-11-28T10:00:30Z".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpClassifier {
    limits: HeaderLimits,
}

impl HttpClassifier {
    /// The default rules with the default [`HeaderLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `limits` to cap server-requested waits.
    #[must_use]
    pub fn with_limits(mut self, limits: HeaderLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits applied to server-requested waits.
    pub fn limits(&self) -> HeaderLimits {
        self.limits
    }

    /// Classifies a status code and its headers, received at `now`.
    pub fn classify_status(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Result<(), FailureClass> {
        self.classify(status, headers, || now)
    }

    /// The rule of [`Classifier::classify_response`] from a response's status, headers and
    /// extensions, for responses of other types (such as `reqwest`'s): the clock is read only
    /// for a server's wait, and a `401` marked [`CredentialRenewed`] is
    /// [`FailureClass::CredentialRenewed`].
    pub fn classify_parts(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        extensions: &Extensions,
        clock: &Clock,
    ) -> Result<(), FailureClass> {
        let class = self.classify(status, headers, || clock.wall());
        if class == Err(FailureClass::AuthExpired)
            && extensions.get::<CredentialRenewed>().is_some()
        {
            return Err(FailureClass::CredentialRenewed);
        }
        class
    }

    /// The rules, reading the time only for pushback (the common outcomes never need it).
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: impl FnOnce() -> Timestamp,
    ) -> Result<(), FailureClass> {
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(());
        }
        let transient = FailureClass::Transient(TransientCause::Status(status));
        Err(match status.as_u16() {
            401 => FailureClass::AuthExpired,
            429 | 503 => match server_wait(headers, now(), self.limits) {
                Some(wait) => FailureClass::RateLimited { until: wait.until, status: Some(status) },
                None => transient,
            },
            408 | 425 | 500 | 502 | 504 | 520..=524 => transient,
            _ => FailureClass::Permanent(Some(status)),
        })
    }
}

impl<B> Classifier<Response<B>> for HttpClassifier {
    fn classify_response(&self, response: &Response<B>, clock: &Clock) -> Result<(), FailureClass> {
        self.classify_parts(response.status(), response.headers(), response.extensions(), clock)
    }
}
