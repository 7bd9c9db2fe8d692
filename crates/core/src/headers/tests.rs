use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-28T10:00:00Z";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn wait(pairs: &[(&str, &str)]) -> Option<ServerWait> {
    server_wait(&headers(pairs), ts(NOW), HeaderLimits::default())
}

fn until(pairs: &[(&str, &str)]) -> Option<(String, WaitSource)> {
    wait(pairs).map(|w| (w.until.to_string(), w.source))
}

#[test]
fn retry_after_seconds_and_dates() {
    assert_eq!(
        until(&[("retry-after", "30")]),
        Some(("2026-11-28T10:00:30Z".into(), WaitSource::RetryAfter))
    );
    assert_eq!(
        until(&[("retry-after", "Sat, 28 Nov 2026 10:02:00 GMT")]),
        Some(("2026-11-28T10:02:00Z".into(), WaitSource::RetryAfter))
    );
}

#[test]
fn a_date_in_the_past_means_now() {
    let w = wait(&[("retry-after", "Fri, 31 Dec 1999 23:59:59 GMT")]).unwrap();
    assert_eq!(w.until, ts(NOW));
    assert!(!w.capped);
}

#[test]
fn retry_after_takes_precedence_over_ratelimit() {
    let got = until(&[("ratelimit", "\"default\";r=0;t=600"), ("retry-after", "5")]);
    assert_eq!(got, Some(("2026-11-28T10:00:05Z".into(), WaitSource::RetryAfter)));
}

#[test]
fn a_malformed_retry_after_falls_through_to_the_next_field() {
    let got = until(&[("retry-after", "soon"), ("ratelimit", "\"default\";r=0;t=7")]);
    assert_eq!(got, Some(("2026-11-28T10:00:07Z".into(), WaitSource::RateLimit)));
}

#[test]
fn ietf_ratelimit_uses_the_latest_exhausted_policy() {
    let got =
        until(&[("ratelimit", "\"burst\";r=0;t=30, \"daily\";r=0;t=3600, \"other\";r=5;t=9000")]);
    assert_eq!(got, Some(("2026-11-28T11:00:00Z".into(), WaitSource::RateLimit)));
    // Lines of a repeated field are one list.
    let got = until(&[("ratelimit", "\"burst\";r=3;t=30"), ("ratelimit", "\"daily\";r=0;t=60")]);
    assert_eq!(got, Some(("2026-11-28T10:01:00Z".into(), WaitSource::RateLimit)));
    // Quota left: no wait.
    assert_eq!(until(&[("ratelimit", "\"default\";r=50;t=30")]), None);
    // Malformed: ignored.
    assert_eq!(until(&[("ratelimit", "\"default\";r=0;t=30,,")]), None);
    assert_eq!(until(&[("ratelimit", "\"default\";r=-1;t=30")]), None);
}

#[test]
fn old_draft_and_legacy_fields() {
    let got = until(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "20")]);
    assert_eq!(got, Some(("2026-11-28T10:00:20Z".into(), WaitSource::RateLimitReset)));
    // GitHub style: epoch seconds.
    let epoch = ts("2026-11-28T10:05:00Z").as_second().to_string();
    let got = until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &epoch)]);
    assert_eq!(got, Some(("2026-11-28T10:05:00Z".into(), WaitSource::XRateLimitReset)));
    // Epoch milliseconds and fractional epoch seconds.
    let millis = ts("2026-11-28T10:05:00.5Z").as_millisecond().to_string();
    let got = until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &millis)]);
    assert_eq!(got, Some(("2026-11-28T10:05:00.5Z".into(), WaitSource::XRateLimitReset)));
    let got =
        until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &format!("{epoch}.25"))]);
    assert_eq!(got, Some(("2026-11-28T10:05:00.25Z".into(), WaitSource::XRateLimitReset)));
    // Delta seconds.
    let got = until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "90")]);
    assert_eq!(got, Some(("2026-11-28T10:01:30Z".into(), WaitSource::XRateLimitReset)));
    // Remaining quota, missing or garbage reset: no wait.
    assert_eq!(until(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "90")]), None);
    assert_eq!(until(&[("x-ratelimit-remaining", "0")]), None);
    assert_eq!(until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "-4")]), None);
    assert_eq!(until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "NaN")]), None);
    assert_eq!(until(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "inf")]), None);
}

#[test]
fn absurd_waits_are_capped() {
    let w = wait(&[("retry-after", "315360000")]).unwrap(); // ten years
    assert!(w.capped);
    assert_eq!(w.until, ts("2026-11-29T11:00:00Z"));
    let limits = HeaderLimits::new(Duration::from_secs(60));
    let w = server_wait(&headers(&[("retry-after", "61")]), ts(NOW), limits).unwrap();
    assert_eq!((w.until, w.capped), (ts("2026-11-28T10:01:00Z"), true));
    let w = server_wait(&headers(&[("retry-after", "60")]), ts(NOW), limits).unwrap();
    assert_eq!((w.until, w.capped), (ts("2026-11-28T10:01:00Z"), false));
    let w = wait(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1e300")]).unwrap();
    assert!(w.capped);
}

#[test]
fn ratelimit_fields_parse_the_draft_examples() {
    let items = parse_ratelimit(b"\"default\";r=50;t=30");
    assert_eq!(
        items,
        vec![RateLimitItem {
            policy: "default".into(),
            remaining: 50,
            reset: Some(Duration::from_secs(30)),
            partition_key: None,
        }]
    );
    let policies = parse_ratelimit_policy(
        b"\"burst\";q=100;w=60,\"daily\";q=1000;w=86400, \"bytes\";q=10;qu=\"content-bytes\";pk=:AQID:",
    );
    assert_eq!(policies.len(), 3);
    assert_eq!(policies[1].name, "daily");
    assert_eq!(policies[1].quota, 1000);
    assert_eq!(policies[1].window, Some(Duration::from_secs(86400)));
    assert_eq!(policies[0].unit, QuotaUnit::Requests);
    assert_eq!(policies[2].unit, QuotaUnit::ContentBytes);
    assert_eq!(policies[2].partition_key.as_deref(), Some(&[1u8, 2, 3][..]));
    // Members missing their required parameter are skipped; the rest are kept.
    assert_eq!(parse_ratelimit_policy(b"\"a\";w=60, \"b\";q=1").len(), 1);
    assert!(parse_ratelimit(b"not a list ((").is_empty());
}

fn header_value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,48}".prop_map(String::into_bytes),
        "[0-9]{1,30}".prop_map(String::into_bytes),
        r#""[a-z]{1,8}";r=-?[0-9]{1,25};t=-?[0-9]{1,25}"#.prop_map(String::into_bytes),
    ]
}

fn policy_name() -> impl Strategy<Value = String> {
    r#"[ -~]{0,16}"#
}

proptest! {
    #[test]
    fn no_input_panics(value in header_value_bytes(), epoch in 0i64..4_000_000_000) {
        let now = Timestamp::from_second(epoch).unwrap();
        let _ = RetryAfter::parse(&value);
        let _ = parse_ratelimit(&value);
        let _ = parse_ratelimit_policy(&value);
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            for name in ["retry-after", "ratelimit", "ratelimit-reset", "x-ratelimit-reset"] {
                let mut map = HeaderMap::new();
                map.insert(HeaderName::from_static(name), v.clone());
                map.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
                map.insert("ratelimit-remaining", HeaderValue::from_static("0"));
                if let Some(w) = server_wait(&map, now, HeaderLimits::default()) {
                    prop_assert!(w.until >= now);
                    prop_assert!(w.until <= now + HeaderLimits::DEFAULT_MAX_WAIT);
                }
            }
        }
    }

    #[test]
    fn retry_after_round_trips(secs in any::<u32>(), date in 0i64..=Timestamp::MAX.as_second()) {
        let delay = RetryAfter::Delay(Duration::from_secs(u64::from(secs)));
        prop_assert_eq!(RetryAfter::parse(delay.to_string().as_bytes()), Some(delay));
        let date = RetryAfter::Date(Timestamp::from_second(date).unwrap());
        prop_assert_eq!(RetryAfter::parse(date.to_string().as_bytes()), Some(date));
    }

    #[test]
    fn any_date_displays(date in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()) {
        let shown = RetryAfter::Date(Timestamp::from_second(date).unwrap()).to_string();
        prop_assert!(shown.ends_with(" GMT"), "{}", shown);
    }

    #[test]
    fn ratelimit_items_round_trip(
        policy in policy_name(),
        remaining in 0u64..=999_999_999_999_999, // the largest structured-field integer
        reset in proptest::option::of(0u64..1_000_000_000),
        pk in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let item = RateLimitItem { policy, remaining, reset: reset.map(Duration::from_secs), partition_key: pk };
        let parsed = parse_ratelimit(item.to_string().as_bytes());
        prop_assert_eq!(parsed, vec![item]);
    }

    #[test]
    fn quota_policies_round_trip(
        name in policy_name(),
        quota in 0u64..1_000_000_000_000,
        unit in prop_oneof![Just(QuotaUnit::Requests), Just(QuotaUnit::ContentBytes), Just(QuotaUnit::ConcurrentRequests), "[a-z]{1,8}".prop_map(QuotaUnit::Other)],
        window in proptest::option::of(0u64..1_000_000),
    ) {
        let unit = match unit { QuotaUnit::Other(s) if s == "requests" => QuotaUnit::Requests, u => u };
        let policy = QuotaPolicy { name, quota, unit, window: window.map(Duration::from_secs), partition_key: None };
        let parsed = parse_ratelimit_policy(policy.to_string().as_bytes());
        prop_assert_eq!(parsed, vec![policy]);
    }
}

#[test]
fn quota_fields_alone_ignore_retry_after() {
    let map = headers(&[("retry-after", "5"), ("ratelimit", "\"d\";r=0;t=9")]);
    let w = quota_exhausted(&map, ts(NOW), HeaderLimits::default()).unwrap();
    assert_eq!((w.until, w.source), (ts("2026-11-28T10:00:09Z"), WaitSource::RateLimit));
    assert!(has_quota_fields(&map));
    let map = headers(&[("retry-after", "5")]);
    assert_eq!(quota_exhausted(&map, ts(NOW), HeaderLimits::default()), None);
    assert!(!has_quota_fields(&map));
    assert!(!has_quota_fields(&HeaderMap::new()));
    assert!(has_quota_fields(&headers(&[("x-ratelimit-remaining", "10")])));
}

#[test]
fn a_date_past_the_time_library_is_capped_not_ignored() {
    for never in ["Fri, 31 Dec 9999 23:59:59 GMT", "Fri Dec 31 23:59:59 9999"] {
        let w = wait(&[("retry-after", never)]).unwrap();
        assert_eq!(
            (w.until, w.source, w.capped),
            (ts("2026-11-29T11:00:00Z"), WaitSource::RetryAfter, true)
        );
    }
}
