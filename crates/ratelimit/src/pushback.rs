//! What in a response makes the layer pause a host.

use http::{Response, StatusCode};
use unattended_core::headers::{has_quota_fields, quota_exhausted, server_wait};
use unattended_core::{Clock, HeaderLimits, ServerWait};

/// Reads a response for a request to slow down.
///
/// [`HttpPushback`] reads the standard fields. For answers that headers do not describe, write
/// a closure `Fn(&Res, &Clock) -> Option<ServerWait>` (it may call [`HttpPushback`] first), or
/// pause the host by hand through the layer's [`PauseRegistry`](crate::PauseRegistry) once the
/// body has been read (YouTube's `403 quotaExceeded` is only in the body).
pub trait Pushback<Res>: Clone + Send + Sync + 'static {
    /// Until when the server asks every caller of this host to wait, if it does.
    ///
    /// Called for every response: return early and read the clock only when there is pushback.
    fn pushback(&self, response: &Res, clock: &Clock) -> Option<ServerWait>;
}

impl<F, Res> Pushback<Res> for F
where
    F: Fn(&Res, &Clock) -> Option<ServerWait> + Clone + Send + Sync + 'static,
{
    fn pushback(&self, response: &Res, clock: &Clock) -> Option<ServerWait> {
        self(response, clock)
    }
}

/// The standard fields: on a `429` or `503`, `Retry-After` (seconds or HTTP-date) and then the
/// quota fields; on any other response, the quota fields alone (IETF `RateLimit` with `r=0`,
/// `RateLimit-Remaining: 0` + `RateLimit-Reset`, `X-RateLimit-Remaining: 0` +
/// `X-RateLimit-Reset`), so an exhausted quota pauses the host *before* the first `429`.
///
/// Waits longer than the [`HeaderLimits`] cap (25 hours by default) are cut to the cap, with a
/// `WARN` event; malformed values are ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpPushback {
    limits: HeaderLimits,
}

impl HttpPushback {
    /// The standard fields with the default cap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps every server-requested wait with `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: HeaderLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl<B> Pushback<Response<B>> for HttpPushback {
    fn pushback(&self, response: &Response<B>, clock: &Clock) -> Option<ServerWait> {
        let headers = response.headers();
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                server_wait(headers, clock.wall(), self.limits)
            }
            _ if has_quota_fields(headers) => quota_exhausted(headers, clock.wall(), self.limits),
            _ => None,
        }
    }
}
