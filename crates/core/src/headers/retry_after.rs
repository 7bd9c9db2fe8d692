//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::fmt;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::Offset;

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
    /// A delay too large for a `u64` of seconds saturates, and so does a date past
    /// [`Timestamp::MAX`] (the "never" some servers send, `Fri, 31 Dec 9999 23:59:59 GMT`, lies
    /// a day beyond it); capping implausible waits is the caller's job (see
    /// [`HeaderLimits`](super::HeaderLimits)).
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
        // httpdate reads years 1970 to 9999, so the only date jiff cannot hold is a later one.
        Some(Self::Date(Timestamp::try_from(date).unwrap_or(Timestamp::MAX)))
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
    /// Formats the value as a server would send it: seconds, or an IMF-fixdate. Any date can be
    /// formatted, one before 1970 too (httpdate's formatter would panic on it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        match self {
            Self::Delay(delay) => write!(f, "{}", delay.as_secs()),
            Self::Date(date) => {
                let dt = Offset::UTC.to_datetime(*date);
                let day = DAYS[usize::from(dt.weekday().to_monday_zero_offset().unsigned_abs())];
                let month = MONTHS[usize::from(dt.month().unsigned_abs()).clamp(1, 12) - 1];
                write!(
                    f,
                    "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
                    dt.day(),
                    dt.year(),
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                )
            }
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
    fn dates_past_the_time_library_saturate() {
        // The "never" sentinel, as an IMF-fixdate and in asctime form (RFC 850 has two-digit
        // years), is a day past `Timestamp::MAX`.
        for never in [&b"Fri, 31 Dec 9999 23:59:59 GMT"[..], b"Fri Dec 31 23:59:59 9999"] {
            let parsed = RetryAfter::parse(never);
            assert_eq!(
                parsed,
                Some(RetryAfter::Date(Timestamp::MAX)),
                "{:?}",
                String::from_utf8_lossy(never)
            );
        }
        let now = ts("2026-11-28T10:00:00Z");
        assert_eq!(
            RetryAfter::parse(b"Thu, 30 Dec 9999 23:00:00 GMT").unwrap().until(now),
            Timestamp::MAX
        );
    }

    #[test]
    fn any_date_can_be_displayed() {
        let old = RetryAfter::Date(ts("1969-07-20T20:17:40Z"));
        assert_eq!(old.to_string(), "Sun, 20 Jul 1969 20:17:40 GMT");
        for date in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
            assert!(!RetryAfter::Date(date).to_string().is_empty());
        }
        assert_eq!(RetryAfter::Date(Timestamp::MAX).to_string(), "Thu, 30 Dec 9999 22:00:00 GMT");
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
