//! Proactive pacing per key: at most so many requests per period, before the server complains.
//!
//! Some APIs publish a rate instead of (or before) answering `429`: DEV allows one write per
//! second per key. Pacing spaces requests to a key by the generic cell rate algorithm of the
//! `governor` crate, driven by our [`Clock`] so paused tests control it too.

use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::Reference;
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};
use unattended_core::{Clock, ServiceKey};

/// A rate: so many requests per period, per key, with an optional burst.
///
/// ```
/// use std::time::Duration;
/// use unattended_ratelimit::Pace;
///
/// let one_write_per_second = Pace::every(Duration::from_secs(1))?;
/// let hundred_per_minute = Pace::per_minute(100)?.with_burst(10)?;
/// # Ok::<(), unattended_ratelimit::PaceError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    quota: Quota,
}

/// A [`Pace`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
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
}

impl Pace {
    /// One request every `interval`.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroPeriod`] for a zero interval.
    pub fn every(interval: Duration) -> Result<Self, PaceError> {
        Quota::with_period(interval).map(|quota| Self { quota }).ok_or(PaceError::ZeroPeriod)
    }

    /// `n` requests per second, evenly spaced.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroRequests`] for zero.
    pub fn per_second(n: u32) -> Result<Self, PaceError> {
        NonZeroU32::new(n)
            .map(|n| Self { quota: Quota::per_second(n) })
            .ok_or(PaceError::ZeroRequests)
    }

    /// `n` requests per minute, evenly spaced.
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroRequests`] for zero.
    pub fn per_minute(n: u32) -> Result<Self, PaceError> {
        NonZeroU32::new(n)
            .map(|n| Self { quota: Quota::per_minute(n) })
            .ok_or(PaceError::ZeroRequests)
    }

    /// Allows up to `burst` requests at once after a quiet spell (1 by default).
    ///
    /// # Errors
    ///
    /// [`PaceError::ZeroBurst`] for zero.
    pub fn with_burst(self, burst: u32) -> Result<Self, PaceError> {
        let burst = NonZeroU32::new(burst).ok_or(PaceError::ZeroBurst)?;
        Ok(Self { quota: self.quota.allow_burst(burst) })
    }
}

/// The keyed limiter, reading time from our clock.
pub(crate) struct Pacer {
    limiter: RateLimiter<
        ServiceKey,
        governor::state::keyed::DashMapStateStore<ServiceKey>,
        PaceClock,
        governor::middleware::NoOpMiddleware<PaceInstant>,
    >,
    clock: PaceClock,
}

impl Pacer {
    pub(crate) fn new(pace: Pace, clock: Clock) -> Self {
        let clock = PaceClock(clock);
        Self { limiter: RateLimiter::dashmap_with_clock(pace.quota, clock.clone()), clock }
    }

    /// Takes a slot for `key` now, or says how long until one is free.
    pub(crate) fn check(&self, key: &ServiceKey) -> Result<(), Duration> {
        use governor::clock::Clock as _;
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

/// Our [`Clock`] as a governor clock.
#[derive(Clone, Debug)]
pub(crate) struct PaceClock(Clock);

impl governor::clock::Clock for PaceClock {
    type Instant = PaceInstant;

    fn now(&self) -> PaceInstant {
        PaceInstant(self.0.now())
    }
}

/// tokio's `Instant` as a governor reference point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PaceInstant(tokio::time::Instant);

impl Add<Nanos> for PaceInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        let d = Duration::from(other);
        Self(self.0.checked_add(d).unwrap_or(self.0))
    }
}

impl Reference for PaceInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_duration_since(earlier.0))
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.checked_sub(Duration::from(duration)).unwrap_or(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_per_second_per_key() {
        let clock = Clock::system();
        let pacer = Pacer::new(Pace::every(Duration::from_secs(1)).unwrap(), clock);
        let (a, b) = (ServiceKey::new("a"), ServiceKey::new("b"));
        assert_eq!(pacer.check(&a), Ok(()));
        assert_eq!(pacer.check(&a), Err(Duration::from_secs(1)));
        assert_eq!(pacer.check(&b), Ok(()));
        clock.sleep(Duration::from_millis(400)).await;
        assert_eq!(pacer.check(&a), Err(Duration::from_millis(600)));
        clock.sleep(Duration::from_millis(600)).await;
        assert_eq!(pacer.check(&a), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_spacing() {
        let clock = Clock::system();
        let pacer = Pacer::new(Pace::per_second(2).unwrap().with_burst(3).unwrap(), clock);
        let a = ServiceKey::new("a");
        assert_eq!((0..5).filter(|_| pacer.check(&a).is_ok()).count(), 3);
        assert_eq!(pacer.check(&a), Err(Duration::from_millis(500)));
    }

    #[test]
    fn zero_paces_are_refused() {
        assert_eq!(Pace::every(Duration::ZERO), Err(PaceError::ZeroPeriod));
        assert_eq!(Pace::per_second(0), Err(PaceError::ZeroRequests));
        assert_eq!(Pace::per_minute(0), Err(PaceError::ZeroRequests));
        assert_eq!(Pace::per_second(1).unwrap().with_burst(0), Err(PaceError::ZeroBurst));
    }
}
