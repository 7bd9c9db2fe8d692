//! The WARN events of header parsing. Alone in its test binary: tracing caches whether a
//! callsite is enabled process-wide, so a scoped subscriber races with other tests' threads.

use http::{HeaderMap, HeaderValue};
use unattended_core::HeaderLimits;
use unattended_core::headers::server_wait;
use unattended_testkit::capture::logs_of;

/// Capping and ignoring are logged at WARN, so an operator can see a misbehaving server.
#[test]
fn implausible_and_malformed_values_are_logged() {
    let wait = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static(value));
        server_wait(&headers, "2026-11-28T10:00:00Z".parse().unwrap(), HeaderLimits::default())
    };
    let ((), lines) = logs_of(|| {
        wait("315360000");
        wait("tomorrow-ish");
        wait("30");
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("WARN") && lines[0].contains("capping"), "{lines:?}");
    assert!(lines[1].contains("WARN") && lines[1].contains("malformed Retry-After"), "{lines:?}");
}
