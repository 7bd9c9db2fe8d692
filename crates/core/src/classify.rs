//! What an outcome is, decided once for every layer.
//!
//! A [`Classifier`] looks at a response or an error and answers with `Ok(())` or a
//! [`FailureClass`]. The retry layer retries transient failures, the rate-limit layer pauses on
//! rate limiting, the breaker counts transient failures, the token layer refreshes on an expired
//! credential: all of them read the same answer, so they never disagree about what happened.
//!
//! [`HttpClassifier`] is the HTTP default. [`ClockedClassifier`] is the same rules behind
//! tower-http's [`MakeClassifier`]/[`ClassifyResponse`] traits, so `TraceLayer` can log the very
//! classes the layers act on.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::{Extensions, HeaderMap, Request, Response, StatusCode};
use jiff::Timestamp;
use tower_http::classify::{
    ClassifiedResponse, ClassifyResponse, MakeClassifier, NeverClassifyEos,
};

use crate::headers::{HeaderLimits, server_wait};
use crate::{BreakerOpen, Clock, CredentialRenewed, HostPaused, TokenError};

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
/// Errors are classed by [`classify_error_chain`]. Server waits are read by
/// [`server_wait`] and capped by the classifier's [`HeaderLimits`].
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

/// [`HttpClassifier`] with a [`Clock`], for tower-http.
///
/// tower-http's classifiers take no time argument, so this one reads the clock itself. Use it with
/// `TraceLayer::new(ClockedClassifier::new(clock))` so traces report the same [`FailureClass`]
/// the layers act on.
#[derive(Clone, Copy, Debug)]
pub struct ClockedClassifier {
    classifier: HttpClassifier,
    clock: Clock,
}

impl ClockedClassifier {
    /// The default HTTP rules, reading time from `clock`.
    pub fn new(clock: Clock) -> Self {
        Self::with_classifier(HttpClassifier::new(), clock)
    }

    /// The given rules, reading time from `clock`.
    pub fn with_classifier(classifier: HttpClassifier, clock: Clock) -> Self {
        Self { classifier, clock }
    }
}

impl MakeClassifier for ClockedClassifier {
    type Classifier = Self;
    type FailureClass = FailureClass;
    type ClassifyEos = NeverClassifyEos<FailureClass>;

    fn make_classifier<B>(&self, _req: &Request<B>) -> Self::Classifier {
        *self
    }
}

impl ClassifyResponse for ClockedClassifier {
    type FailureClass = FailureClass;
    type ClassifyEos = NeverClassifyEos<FailureClass>;

    fn classify_response<B>(
        self,
        res: &Response<B>,
    ) -> ClassifiedResponse<Self::FailureClass, Self::ClassifyEos> {
        ClassifiedResponse::Ready(self.classifier.classify_response(res, &self.clock))
    }

    fn classify_error<E>(self, error: &E) -> Self::FailureClass
    where
        E: fmt::Display + 'static,
    {
        // tower-http only promises `Display`; look for the error types stacks actually use.
        let any = error as &dyn Any;
        if let Some(boxed) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
            return classify_error_chain(&**boxed);
        }
        if let Some(io) = any.downcast_ref::<io::Error>() {
            return classify_error_chain(io);
        }
        if any.is::<tower::timeout::error::Elapsed>() || any.is::<tokio::time::error::Elapsed>() {
            return FailureClass::Transient(TransientCause::Timeout);
        }
        FailureClass::Transient(TransientCause::Other)
    }
}

#[cfg(test)]
mod tests;
