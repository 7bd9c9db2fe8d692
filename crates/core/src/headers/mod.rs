//! What a server says about when to come back: `Retry-After`, IETF `RateLimit`, and the legacy
//! `X-RateLimit-*` fields.
//!
//! [`server_wait`] reads them all, in precedence order, and answers one question: until when has
//! the server asked us to wait? Malformed values are ignored (the RFCs require it), and absurd
//! ones are capped by [`HeaderLimits`] so that a `Retry-After` of ten years cannot park a job
//! forever. Both produce a `WARN` event, since a server sending them deserves a look.

mod ratelimit;
mod retry_after;

use std::fmt;
use std::time::Duration;

use http::HeaderMap;
use http::header::RETRY_AFTER;
use jiff::Timestamp;

pub use self::ratelimit::{
    QuotaPolicy, QuotaUnit, RateLimitItem, parse_ratelimit, parse_ratelimit_policy,
};
pub use self::retry_after::RetryAfter;
use crate::clock::{add_saturating, duration_between};

/// Bounds on the waits servers may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderLimits {
    max_wait: Duration,
}

impl HeaderLimits {
    /// The default cap: 25 hours, a daily quota plus a daylight-saving hour.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(25 * 3600);

    /// Limits with the given cap on any single server-requested wait.
    pub const fn new(max_wait: Duration) -> Self {
        Self { max_wait }
    }

    /// The cap on any single server-requested wait.
    pub const fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_WAIT)
    }
}

/// Which field a [`ServerWait`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitSource {
    /// `Retry-After` (RFC 9110).
    RetryAfter,
    /// IETF `RateLimit` with `r=0` (draft-11).
    RateLimit,
    /// `RateLimit-Remaining: 0` with `RateLimit-Reset` (drafts up to -06).
    RateLimitReset,
    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (legacy, epoch or delta).
    XRateLimitReset,
}

impl fmt::Display for WaitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RetryAfter => "Retry-After",
            Self::RateLimit => "RateLimit",
            Self::RateLimitReset => "RateLimit-Reset",
            Self::XRateLimitReset => "X-RateLimit-Reset",
        })
    }
}

/// A server's request to wait, as read by [`server_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerWait {
    /// Do not send to this server before this instant.
    pub until: Timestamp,
    /// The field that said so.
    pub source: WaitSource,
    /// True when the server asked for more than [`HeaderLimits::max_wait`] and was cut down.
    pub capped: bool,
}

/// Until when the server has asked us to wait, judging by `headers` received at `now`.
///
/// Precedence: `Retry-After` wins over everything (the draft says so); then IETF `RateLimit`
/// members with `r=0` (the latest `t` among them); then `RateLimit-Remaining: 0` with
/// `RateLimit-Reset`; then `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, read as Unix
/// seconds when it looks like one (≥ 10⁹), Unix milliseconds (≥ 10¹²), else seconds from now.
/// A field that is malformed is skipped and the next one is tried. An instant in the past means
/// "no wait" and gives `until == now`.
///
/// The answer does not depend on the status code: a `200` with `RateLimit: "d";r=0;t=5` asks for a
/// wait just as a `429` does. Whether to honour it is the caller's choice.
pub fn server_wait(
    headers: &HeaderMap,
    now: Timestamp,
    limits: HeaderLimits,
) -> Option<ServerWait> {
    let (until, source) = retry_after(headers, now)
        .map(|until| (until, WaitSource::RetryAfter))
        .or_else(|| quota_reset(headers, now))?;
    Some(bounded(until, source, now, limits))
}

/// Until when the quota fields alone (IETF `RateLimit` with `r=0`, `RateLimit-Remaining: 0`,
/// `X-RateLimit-Remaining: 0`) ask us to wait, ignoring `Retry-After`.
///
/// Use it for responses whose status does not make `Retry-After` a request to slow down (on a
/// `200` or a `3xx` it means something else), to pause *before* the server starts refusing.
pub fn quota_exhausted(
    headers: &HeaderMap,
    now: Timestamp,
    limits: HeaderLimits,
) -> Option<ServerWait> {
    let (until, source) = quota_reset(headers, now)?;
    Some(bounded(until, source, now, limits))
}

/// True if `headers` hold any field [`quota_exhausted`] reads: a cheap test before parsing.
pub fn has_quota_fields(headers: &HeaderMap) -> bool {
    !headers.is_empty()
        && (headers.contains_key("ratelimit")
            || headers.contains_key("x-ratelimit-remaining")
            || headers.contains_key("ratelimit-remaining"))
}

fn quota_reset(headers: &HeaderMap, now: Timestamp) -> Option<(Timestamp, WaitSource)> {
    ietf_ratelimit(headers, now)
        .map(|u| (u, WaitSource::RateLimit))
        .or_else(|| {
            remaining_reset(headers, "ratelimit-remaining", "ratelimit-reset", now, false)
                .map(|u| (u, WaitSource::RateLimitReset))
        })
        .or_else(|| {
            remaining_reset(headers, "x-ratelimit-remaining", "x-ratelimit-reset", now, true)
                .map(|u| (u, WaitSource::XRateLimitReset))
        })
}

/// Clamps `until` to `[now, now + max_wait]`, warning when the server asked for more.
fn bounded(
    until: Timestamp,
    source: WaitSource,
    now: Timestamp,
    limits: HeaderLimits,
) -> ServerWait {
    let until = until.max(now);
    let cap = add_saturating(now, limits.max_wait);
    if until > cap {
        tracing::warn!(
            %source,
            asked = ?duration_between(now, until),
            cap = ?limits.max_wait,
            "server asked for an implausibly long wait; capping it"
        );
        return ServerWait { until: cap, source, capped: true };
    }
    ServerWait { until, source, capped: false }
}

fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Timestamp> {
    let value = headers.get(RETRY_AFTER)?;
    let parsed = RetryAfter::parse(value.as_bytes());
    if parsed.is_none() {
        tracing::warn!(value = ?value, "ignoring a malformed Retry-After");
    }
    parsed.map(|ra| ra.until(now))
}

fn ietf_ratelimit(headers: &HeaderMap, now: Timestamp) -> Option<Timestamp> {
    let joined = join_field(headers, "ratelimit")?;
    parse_ratelimit(&joined)
        .into_iter()
        .filter(|item| item.remaining == 0)
        .filter_map(|item| item.reset)
        .max()
        .map(|reset| add_saturating(now, reset))
}

/// The lines of a repeated field joined with `,` (RFC 9110 §5.3), or `None` if absent.
fn join_field(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for value in values {
        joined.push(b',');
        joined.extend_from_slice(value.as_bytes());
    }
    Some(joined)
}

fn remaining_reset(
    headers: &HeaderMap,
    remaining: &str,
    reset: &str,
    now: Timestamp,
    epoch_allowed: bool,
) -> Option<Timestamp> {
    let remaining = headers.get(remaining)?.to_str().ok()?.trim();
    if remaining.parse::<u64>().ok()? != 0 {
        return None;
    }
    let reset = headers.get(reset)?.to_str().ok()?.trim().parse::<f64>().ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    // An epoch beyond the representable range is "forever", which the cap then cuts down.
    if epoch_allowed && reset >= 1e12 {
        return Some(Timestamp::from_millisecond(reset as i64).unwrap_or(Timestamp::MAX));
    }
    if epoch_allowed && reset >= 1e9 {
        return Some(
            Timestamp::from_millisecond((reset * 1000.0) as i64).unwrap_or(Timestamp::MAX),
        );
    }
    Some(add_saturating(now, Duration::from_secs_f64(reset.min(u64::MAX as f64 / 2.0))))
}

#[cfg(test)]
mod tests;
