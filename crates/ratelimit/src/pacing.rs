//! A pace: so many requests per period to each key, evenly spaced, with an optional burst.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A rate: one request every `interval` to each key, and up to `burst` at once after a quiet
/// spell.
///
/// `Pace::per_second(50)` sends one request every 20 ms; `.with_burst(10)` also lets ten go at
/// once after the key was quiet for 200 ms (the bucket of nginx's `limit_req ... burst=10
/// nodelay`, less the one request that is never in excess). A pace can also be read from text:
/// `"50/s"`, `"100/min"`, `"3600/h"`, `"1/2s"`.
///
/// ```
/// use std::time::Duration;
/// use unattended_ratelimit::Pace;
///
/// let one_write_per_second = Pace::every(Duration::from_secs(1))?;
/// let hundred_per_minute = Pace::per_minute(100)?.with_burst(10)?;
/// assert_eq!("50/s".parse::<Pace>()?, Pace::per_second(50)?);
/// assert_eq!(Pace::per_second(50)?.interval(), Duration::from_millis(20));
/// # Ok::<(), unattended_ratelimit::PaceError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    interval: Duration,
    burst: NonZeroU32,
}

/// A [`Pace`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaceError {
    /// A pace of zero requests would never send anything.
    #[error("a pace needs at least one request per period")]
    ZeroRequests,
    /// The period between requests must be positive.
    #[error("the period between paced requests must be positive")]
    ZeroPeriod,
    /// A burst of zero requests would never send anything.
    #[error("a burst must allow at least one request")]
    ZeroBurst,
    /// The text is not a pace.
    #[error("{0:?} is not a pace like \"50/s\", \"100/min\" or \"1/2s\"")]
    Malformed(String),
}

impl Pace {
    /// One request every `interval`, no burst.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroPeriod`] for a zero interval.
    pub fn every(interval: Duration) -> Result<Self, PaceError> {
        if interval.is_zero() {
            return Err(PaceError::ZeroPeriod);
        }
        Ok(Self { interval, burst: NonZeroU32::MIN })
    }

    /// `n` requests per `period`, evenly spaced (one every `period / n`), no burst.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroRequests`] for zero requests, [`PaceError::ZeroPeriod`] for a period
    /// too short to divide.
    pub fn per(n: u32, period: Duration) -> Result<Self, PaceError> {
        if n == 0 {
            return Err(PaceError::ZeroRequests);
        }
        Self::every(period / n)
    }

    /// `n` requests per second, evenly spaced, no burst.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroRequests`] for zero.
    pub fn per_second(n: u32) -> Result<Self, PaceError> {
        Self::per(n, Duration::from_secs(1))
    }

    /// `n` requests per minute, evenly spaced, no burst.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroRequests`] for zero.
    pub fn per_minute(n: u32) -> Result<Self, PaceError> {
        Self::per(n, Duration::from_secs(60))
    }

    /// Allows up to `burst` requests at once after a quiet spell (1 by default: none).
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroBurst`] for zero.
    pub fn with_burst(self, burst: u32) -> Result<Self, PaceError> {
        let burst = NonZeroU32::new(burst).ok_or(PaceError::ZeroBurst)?;
        Ok(Self { burst, ..self })
    }

    /// The time between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many requests may go at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }
}

impl FromStr for Pace {
    type Err = PaceError;

    /// `"<n>/<period>"`: the period is `s`, `min` (or `m`), `h`, or a duration such as `2s` or
    /// `500ms`.
    fn from_str(text: &str) -> Result<Self, PaceError> {
        let malformed = || PaceError::Malformed(text.to_owned());
        let (n, period) = text.split_once('/').ok_or_else(malformed)?;
        let n: u32 = n.trim().parse().map_err(|_| malformed())?;
        let period = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                let signed: jiff::SignedDuration = other.parse().map_err(|_| malformed())?;
                Duration::try_from(signed).map_err(|_| malformed())?
            }
        };
        Self::per(n, period)
    }
}

impl fmt::Display for Pace {
    /// As requests per second when that is a whole number (`50/s`), else as one per interval
    /// (`1/2s`); a burst is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.interval.as_nanos();
        if nanos > 0 && 1_000_000_000 % nanos == 0 {
            return write!(f, "{}/s", 1_000_000_000 / nanos);
        }
        let signed = jiff::SignedDuration::try_from(self.interval).map_err(|_| fmt::Error)?;
        write!(f, "1/{signed:#}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_paces_are_refused() {
        assert_eq!(Pace::every(Duration::ZERO), Err(PaceError::ZeroPeriod));
        assert_eq!(Pace::per_second(0), Err(PaceError::ZeroRequests));
        assert_eq!(Pace::per_minute(0), Err(PaceError::ZeroRequests));
        assert_eq!(Pace::per_second(1).unwrap().with_burst(0), Err(PaceError::ZeroBurst));
    }

    #[test]
    fn per_second_is_evenly_spaced_without_a_burst() {
        let pace = Pace::per_second(50).unwrap();
        assert_eq!((pace.interval(), pace.burst()), (Duration::from_millis(20), 1));
        assert_eq!(pace.with_burst(10).unwrap().burst(), 10);
        assert!((pace.rate() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn paces_read_and_print_as_text() {
        let read = |s: &str| s.parse::<Pace>();
        assert_eq!(read("50/s"), Pace::per_second(50));
        assert_eq!(read(" 100 / min"), Pace::per_minute(100));
        assert_eq!(read("3600/h"), Pace::per_second(1));
        assert_eq!(read("1/2s"), Pace::every(Duration::from_secs(2)));
        assert_eq!(read("4/500ms"), Pace::every(Duration::from_millis(125)));
        assert_eq!(read("0/s"), Err(PaceError::ZeroRequests));
        assert!(matches!(read("fast"), Err(PaceError::Malformed(_))));
        assert!(matches!(read("5/fortnight"), Err(PaceError::Malformed(_))));
        assert!(matches!(read("-1/s"), Err(PaceError::Malformed(_))));
        assert_eq!(Pace::per_second(50).unwrap().to_string(), "50/s");
        assert_eq!(Pace::every(Duration::from_secs(2)).unwrap().to_string(), "1/2s");
        let odd = Pace::per_minute(7).unwrap();
        assert_eq!(odd.to_string().parse::<Pace>().unwrap().interval(), odd.interval());
    }
}
