//! What in a response makes the layer pause or pace a host.

use std::time::Duration;

use http::{HeaderMap, Response, StatusCode};
use jiff::Timestamp;
use unattended_core::headers::{
    QuotaUnit, has_quota_fields, parse_ratelimit, parse_ratelimit_policy, quota_exhausted,
    server_wait,
};
use unattended_core::{Clock, HeaderLimits, ServerWait};

/// What a response says about the rate its host takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feedback {
    /// The server took the request: a paced host's rate may grow.
    Accepted,
    /// The server refused the request for its rate (`429`, `503` with a wait, an exhausted
    /// quota): the host's rate is cut, and if the server said until when to wait, the request
    /// waits until then and the host may be paused.
    Throttled(Option<ServerWait>),
    /// The answer says nothing about the rate (a server error).
    Neutral,
}

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

    /// What the response says about the host's rate. The default: a throttle exactly when
    /// [`pushback`](Self::pushback) asks to wait, else accepted.
    fn feedback(&self, response: &Res, clock: &Clock) -> Feedback {
        match self.pushback(response, clock) {
            Some(wait) => Feedback::Throttled(Some(wait)),
            None => Feedback::Accepted,
        }
    }

    /// The rate the server's quota fields allow, in requests per second, if they say. Called
    /// only for hosts the layer paces. The default: none.
    fn quota_rate(&self, response: &Res, clock: &Clock) -> Option<f64> {
        let _ = (response, clock);
        None
    }
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
/// A `429` is a throttle whether or not it says how long to wait; a `503` only when it does
/// (without a wait it is a server error, the circuit breaker's business); another `5xx` says
/// nothing about the rate; anything else was accepted. The rate a paced host may go at comes
/// from `RateLimit-Policy` (`q` per `w` seconds), else from the quota left until the reset
/// (`RateLimit` `r` and `t`, `RateLimit-Remaining` and `-Reset`, `X-RateLimit-Remaining` and
/// `-Reset`).
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

    /// [`Pushback::pushback`] from a status and headers (for clients with their own response
    /// type, such as `reqwest`).
    pub fn wait(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Option<ServerWait> {
        self.wait_at(status, headers, || now)
    }

    /// The rule of [`wait`](Self::wait), reading the time only when there is pushback.
    fn wait_at(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: impl FnOnce() -> Timestamp,
    ) -> Option<ServerWait> {
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                server_wait(headers, now(), self.limits)
            }
            _ if has_quota_fields(headers) => quota_exhausted(headers, now(), self.limits),
            _ => None,
        }
    }

    /// [`Pushback::feedback`] from a status and headers.
    pub fn read(&self, status: StatusCode, headers: &HeaderMap, clock: &Clock) -> Feedback {
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                Feedback::Throttled(server_wait(headers, clock.wall(), self.limits))
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                match server_wait(headers, clock.wall(), self.limits) {
                    Some(wait) => Feedback::Throttled(Some(wait)),
                    None => Feedback::Neutral,
                }
            }
            _ if status.is_server_error() => Feedback::Neutral,
            _ if has_quota_fields(headers) => {
                match quota_exhausted(headers, clock.wall(), self.limits) {
                    Some(wait) => Feedback::Throttled(Some(wait)),
                    None => Feedback::Accepted,
                }
            }
            _ => Feedback::Accepted,
        }
    }

    /// [`Pushback::quota_rate`] from headers.
    pub fn rate(&self, headers: &HeaderMap, now: Timestamp) -> Option<f64> {
        self.rate_at(headers, || now)
    }

    /// The rule of [`rate`](Self::rate), reading the time only when there are headers.
    pub(crate) fn rate_at(
        &self,
        headers: &HeaderMap,
        now: impl FnOnce() -> Timestamp,
    ) -> Option<f64> {
        if headers.is_empty() {
            return None;
        }
        quota_rate(headers, now())
    }
}

impl<B> Pushback<Response<B>> for HttpPushback {
    fn pushback(&self, response: &Response<B>, clock: &Clock) -> Option<ServerWait> {
        self.wait_at(response.status(), response.headers(), || clock.wall())
    }

    fn feedback(&self, response: &Response<B>, clock: &Clock) -> Feedback {
        self.read(response.status(), response.headers(), clock)
    }

    fn quota_rate(&self, response: &Response<B>, clock: &Clock) -> Option<f64> {
        self.rate_at(response.headers(), || clock.wall())
    }
}

/// The rate the quota fields allow, in requests per second: the tightest `RateLimit-Policy`
/// counted in requests (`q / w`), else the tightest quota left until its reset.
pub(crate) fn quota_rate(headers: &HeaderMap, now: Timestamp) -> Option<f64> {
    let rate = |quota: u64, window: Duration| {
        (!window.is_zero()).then(|| quota as f64 / window.as_secs_f64())
    };
    let tightest = |rates: &mut dyn Iterator<Item = f64>| {
        rates.fold(None, |low: Option<f64>, r| Some(low.map_or(r, |low| low.min(r))))
    };
    if let Some(policy) = joined(headers, "ratelimit-policy") {
        let mut rates = parse_ratelimit_policy(&policy)
            .into_iter()
            .filter(|p| p.unit == QuotaUnit::Requests)
            .filter_map(|p| rate(p.quota, p.window?));
        if let Some(low) = tightest(&mut rates) {
            return Some(low);
        }
    }
    if let Some(state) = joined(headers, "ratelimit") {
        let mut rates = parse_ratelimit(&state)
            .into_iter()
            .filter(|item| item.remaining > 0)
            .filter_map(|item| rate(item.remaining, item.reset?));
        if let Some(low) = tightest(&mut rates) {
            return Some(low);
        }
    }
    left_until_reset(headers, "ratelimit-remaining", "ratelimit-reset", now, false).or_else(|| {
        left_until_reset(headers, "x-ratelimit-remaining", "x-ratelimit-reset", now, true)
    })
}

/// `remaining / (reset - now)` from a legacy pair of fields; the reset may be an epoch (in
/// seconds, or milliseconds) where `epoch_allowed`.
fn left_until_reset(
    headers: &HeaderMap,
    remaining: &str,
    reset: &str,
    now: Timestamp,
    epoch_allowed: bool,
) -> Option<f64> {
    let left: u64 = headers.get(remaining)?.to_str().ok()?.trim().parse().ok()?;
    let reset: f64 = headers.get(reset)?.to_str().ok()?.trim().parse().ok()?;
    if left == 0 || !reset.is_finite() || reset < 0.0 {
        return None;
    }
    let now_secs = now.as_millisecond() as f64 / 1000.0;
    let seconds = match reset {
        r if epoch_allowed && r >= 1e12 => r / 1000.0 - now_secs,
        r if epoch_allowed && r >= 1e9 => r - now_secs,
        r => r,
    };
    (seconds > 0.0).then(|| left as f64 / seconds)
}

/// The lines of a repeated field joined with `,`.
fn joined(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let mut out = values.next()?.as_bytes().to_vec();
    for value in values {
        out.push(b',');
        out.extend_from_slice(value.as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    fn now() -> Timestamp {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_quota_fields_give_a_rate() {
        let rate = |pairs: &[(&'static str, &str)]| quota_rate(&headers(pairs), now());
        assert_eq!(rate(&[("ratelimit-policy", "\"d\";q=50;w=1")]), Some(50.0));
        // The tightest policy counted in requests wins.
        let two = [(
            "ratelimit-policy",
            "\"burst\";q=100;w=10, \"day\";q=86400;w=86400, \"b\";q=1;w=1;qu=\"content-bytes\"",
        )];
        assert_eq!(rate(&two), Some(1.0));
        assert_eq!(rate(&[("ratelimit", "\"d\";r=30;t=60")]), Some(0.5));
        assert_eq!(rate(&[("ratelimit", "\"d\";r=0;t=60")]), None, "exhausted: a wait, not a rate");
        assert_eq!(
            rate(&[("x-ratelimit-remaining", "100"), ("x-ratelimit-reset", "50")]),
            Some(2.0)
        );
        let epoch = (now().as_second() + 200).to_string();
        assert_eq!(
            rate(&[("x-ratelimit-remaining", "100"), ("x-ratelimit-reset", epoch.as_str())]),
            Some(0.5)
        );
        assert_eq!(rate(&[("ratelimit-remaining", "10"), ("ratelimit-reset", "5")]), Some(2.0));
        assert_eq!(rate(&[("ratelimit-policy", "garbage;;"), ("x-ratelimit-reset", "5")]), None);
        assert_eq!(rate(&[]), None);
    }

    #[test]
    fn what_is_a_throttle() {
        let clock = Clock::starting_at(now());
        let read = |status: u16, pairs: &[(&'static str, &str)]| {
            HttpPushback::new().read(StatusCode::from_u16(status).unwrap(), &headers(pairs), &clock)
        };
        assert_eq!(read(429, &[]), Feedback::Throttled(None));
        assert!(matches!(read(429, &[("retry-after", "1")]), Feedback::Throttled(Some(_))));
        assert!(matches!(read(503, &[("retry-after", "1")]), Feedback::Throttled(Some(_))));
        assert_eq!(read(503, &[]), Feedback::Neutral);
        assert_eq!(read(500, &[("retry-after", "1")]), Feedback::Neutral);
        assert_eq!(read(200, &[]), Feedback::Accepted);
        assert_eq!(read(404, &[]), Feedback::Accepted);
        assert!(matches!(
            read(200, &[("ratelimit", "\"d\";r=0;t=5")]),
            Feedback::Throttled(Some(_))
        ));
        assert_eq!(read(200, &[("ratelimit", "\"d\";r=3;t=5")]), Feedback::Accepted);
    }
}
