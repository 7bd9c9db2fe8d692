//! `Retry-After`, IETF `RateLimit`/`RateLimit-Policy`, `RateLimit-*` and `X-RateLimit-*`.

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use jiff::Timestamp;
use unattended_core::clock::add_saturating;
use unattended_core::headers::{
    RetryAfter, has_quota_fields, parse_ratelimit, parse_ratelimit_policy, quota_exhausted,
    server_wait,
};
use unattended_core::{HeaderLimits, ServerWait, WaitSource};

use crate::now;

/// The caps every wait is checked against: the default, and a short one.
const LIMITS: [HeaderLimits; 2] =
    [HeaderLimits::new(HeaderLimits::DEFAULT_MAX_WAIT), HeaderLimits::new(Duration::from_secs(60))];

/// A wait is never before now nor past the cap, and says it was capped only at the cap.
fn check_wait(wait: ServerWait, now: Timestamp, limits: HeaderLimits) {
    let cap = add_saturating(now, limits.max_wait());
    assert!(wait.until >= now, "a wait before now: {wait:?}");
    assert!(wait.until <= cap, "a wait past the cap {cap}: {wait:?}");
    if wait.capped {
        assert_eq!(wait.until, cap, "capped, but not at the cap: {wait:?}");
    }
}

/// `Retry-After`: parsed, rendered and parsed again to the same value; as a header, the wait
/// [`server_wait`] reads from it is the value's instant, clamped to `[now, now + cap]`.
pub fn retry_after(data: &[u8]) {
    let parsed = RetryAfter::parse(data);
    if let Some(value) = parsed {
        let again = RetryAfter::parse(value.to_string().as_bytes());
        // A date past the time library's range saturates to its last instant, which has a
        // fraction of a second an HTTP-date cannot carry.
        if value != RetryAfter::Date(Timestamp::MAX) {
            assert_eq!(again, Some(value), "{value} does not parse back");
        }
    }
    let Ok(header) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, header);
    let now = now();
    for limits in LIMITS {
        let wait = server_wait(&headers, now, limits);
        match parsed {
            Some(value) => {
                let wait = wait.expect("a valid Retry-After asks for a wait");
                assert_eq!(wait.source, WaitSource::RetryAfter);
                check_wait(wait, now, limits);
                let asked = value.until(now).max(now);
                assert_eq!(wait.until, asked.min(add_saturating(now, limits.max_wait())));
                assert_eq!(wait.capped, asked > wait.until);
            }
            None => assert_eq!(wait, None, "a malformed Retry-After is ignored"),
        }
    }
}

/// IETF `RateLimit` and `RateLimit-Policy` (the same input as both): every member parsed is
/// rendered and parsed back to itself; as a `RateLimit` header the wait is bounded, and there is
/// one exactly when a member has `r=0` with a `t`.
pub fn ratelimit(data: &[u8]) {
    let items = parse_ratelimit(data);
    for item in &items {
        let mut text = String::new();
        if write!(text, "{item}").is_ok() {
            assert_eq!(parse_ratelimit(text.as_bytes()), std::slice::from_ref(item), "{text}");
        }
    }
    for policy in parse_ratelimit_policy(data) {
        let mut text = String::new();
        if write!(text, "{policy}").is_ok() {
            assert_eq!(parse_ratelimit_policy(text.as_bytes()), [policy], "{text}");
        }
    }
    let Ok(header) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("ratelimit"), header);
    let now = now();
    let exhausted = items.iter().any(|i| i.remaining == 0 && i.reset.is_some());
    for limits in LIMITS {
        let wait = server_wait(&headers, now, limits);
        assert_eq!(wait.is_some(), exhausted, "{items:?} gave {wait:?}");
        if let Some(wait) = wait {
            assert_eq!(wait.source, WaitSource::RateLimit);
            check_wait(wait, now, limits);
        }
        assert_eq!(quota_exhausted(&headers, now, limits), wait);
    }
}

/// `X-RateLimit-Remaining`, `X-RateLimit-Reset`, `RateLimit-Remaining` and `RateLimit-Reset`:
/// the input's lines, in that order. Any wait is bounded, the quota fields alone give the same
/// answer as all fields (there is no `Retry-After`), and a wait comes only with quota fields.
pub fn x_ratelimit(data: &[u8]) {
    const NAMES: [&str; 4] =
        ["x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit-remaining", "ratelimit-reset"];
    let mut headers = HeaderMap::new();
    for (name, line) in NAMES.iter().zip(data.split(|b| *b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let now = now();
    for limits in LIMITS {
        let wait = server_wait(&headers, now, limits);
        assert_eq!(quota_exhausted(&headers, now, limits), wait);
        if let Some(wait) = wait {
            assert!(has_quota_fields(&headers));
            check_wait(wait, now, limits);
        }
    }
}
