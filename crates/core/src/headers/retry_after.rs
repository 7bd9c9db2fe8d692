//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::fmt;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;

use crate::clock::add_saturating;

/// A parsed `Retry-After` value.
///
/// RFC 9110 allows two forms: a number of seconds (`Retry-After: 120`) and an HTTP-date
/// (`Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`); recipients must accept the three date formats
/// the RFC names (IMF-fixdate, the obsolete RFC 850 form and asctime), and this parser does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this long after the response was received.
    Delay(Duration),
    /// Wait until this instant.
    Date(Timestamp),
}

impl RetryAfter {
    /// Parses a field value; `None` when it is neither form (such values must be ignored).
    ///
    /// A delay too large for a `u64` of seconds saturates; capping implausible waits is the
    /// caller's job (see [`HeaderLimits`](super::HeaderLimits)).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let value = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
        if value.is_empty() {
            return None;
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(Self::Delay(Duration::from_secs(seconds)));
        }
        let date: SystemTime = httpdate::parse_http_date(value).ok()?;
        Timestamp::try_from(date).ok().map(Self::Date)
    }

    /// The instant this value points at, for a response received at `now`.
    pub fn until(self, now: Timestamp) -> Timestamp {
        match self {
            Self::Delay(delay) => add_saturating(now, delay),
            Self::Date(date) => date,
        }
    }
}

impl fmt::Display for RetryAfter {
    /// Formats the value as a server would send it: seconds, or an IMF-fixdate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delay(delay) => write!(f, "{}", delay.as_secs()),
            Self::Date(date) => match SystemTime::try_from(*date) {
                Ok(time) => f.write_str(&httpdate::fmt_http_date(time)),
                Err(_) => f.write_str("Thu, 01 Jan 1970 00:00:00 GMT"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn rfc_9110_examples() {
        assert_eq!(
            RetryAfter::parse(b"Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(RetryAfter::Date(ts("1999-12-31T23:59:59Z")))
        );
        assert_eq!(RetryAfter::parse(b"120"), Some(RetryAfter::Delay(Duration::from_secs(120))));
    }

    #[test]
    fn obsolete_date_forms_are_accepted() {
        let expected = Some(RetryAfter::Date(ts("1994-11-06T08:49:37Z")));
        assert_eq!(RetryAfter::parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(RetryAfter::parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(RetryAfter::parse(b"Sun Nov  6 08:49:37 1994"), expected);
    }

    #[test]
    fn garbage_is_ignored() {
        for bad in [
            &b""[..],
            b" ",
            b"-5",
            b"+5",
            b"1.5",
            b"5s",
            b"soon",
            b"Fri, 32 Dec 1999 23:59:59 GMT",
            b"\xff\xfe",
            b"0x10",
        ] {
            assert_eq!(RetryAfter::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn whitespace_and_huge_values() {
        assert_eq!(RetryAfter::parse(b" 7\t"), Some(RetryAfter::Delay(Duration::from_secs(7))));
        let huge = RetryAfter::parse(b"99999999999999999999999999").unwrap();
        assert_eq!(huge, RetryAfter::Delay(Duration::from_secs(u64::MAX)));
        assert_eq!(huge.until(ts("2026-01-01T00:00:00Z")), Timestamp::MAX);
    }

    #[test]
    fn until_adds_delays_and_keeps_dates() {
        let now = ts("2026-11-28T10:00:00Z");
        assert_eq!(
            RetryAfter::Delay(Duration::from_secs(30)).until(now),
            ts("2026-11-28T10:00:30Z")
        );
        let date = ts("2026-11-28T09:00:00Z");
        assert_eq!(RetryAfter::Date(date).until(now), date);
    }

    #[test]
    fn display_round_trips() {
        let date = RetryAfter::Date(ts("2026-11-28T10:00:00Z"));
        assert_eq!(date.to_string(), "Sat, 28 Nov 2026 10:00:00 GMT");
        assert_eq!(RetryAfter::parse(date.to_string().as_bytes()), Some(date));
        let delay = RetryAfter::Delay(Duration::from_secs(42));
        assert_eq!(RetryAfter::parse(delay.to_string().as_bytes()), Some(delay));
    }
}
