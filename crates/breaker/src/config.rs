//! Settings of the breaker, checked once when the layer is built.

use std::time::Duration;

use crate::window::FailurePolicy;

/// How long a breaker stays open: `base` after the first trip, times `multiplier` for each trip
/// in a row after that (a close resets the count), capped at `max`, with jitter so that many
/// clients do not probe a recovering service in the same instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpenDuration {
    pub(crate) base: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
    pub(crate) jitter: bool,
}

impl OpenDuration {
    /// Always `duration`, without jitter.
    pub const fn fixed(duration: Duration) -> Self {
        Self { base: duration, multiplier: 1.0, max: duration, jitter: false }
    }

    /// `base`, then times `multiplier` per trip in a row, up to `max`, with equal jitter (between
    /// half and all of each duration).
    pub const fn growing(base: Duration, multiplier: f64, max: Duration) -> Self {
        Self { base, multiplier, max, jitter: true }
    }

    /// The open duration after trip number `trip` (from 1), given a uniform draw in `[0, 1)`.
    pub fn for_trip(&self, trip: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(trip.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        let full = if secs.is_finite() && secs < self.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max
        };
        if self.jitter {
            let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
            full / 2 + (full / 2).mul_f64(unit)
        } else {
            full
        }
    }
}

/// Settings of a [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// | setting | [`standard`](Self::standard) |
/// |---|---|
/// | opens when | ≥ 50% of the calls of the last 60 s failed (once 5 calls are in the window), or 10 failed in a row |
/// | open for | 30 s, ×2 per trip in a row, up to 10 min, with jitter |
/// | half-open | 1 probe at a time; 1 success closes |
/// | slow calls | not judged |
///
/// A *failure* is what the shared classifier calls transient: 5xx (but 501), 408, resets,
/// timeouts. A 404, a 401 or a 429 (with or without `Retry-After`) says nothing about the
/// service's health and does not count; rate limiting is the rate-limit layer's business.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    pub(crate) policy: FailurePolicy,
    pub(crate) open: OpenDuration,
    pub(crate) probes: u32,
    pub(crate) successes_to_close: u32,
    pub(crate) slow_call: Option<Duration>,
    pub(crate) seed: Option<u64>,
}

impl BreakerConfig {
    /// The recommended settings for automation jobs, which call each service a few times a
    /// minute at most (see the table above).
    pub const fn standard() -> Self {
        Self {
            policy: FailurePolicy::time_window(Duration::from_secs(60), 0.5).or_consecutive(10),
            open: OpenDuration::growing(Duration::from_secs(30), 2.0, Duration::from_secs(600)),
            probes: 1,
            successes_to_close: 1,
            slow_call: None,
            seed: None,
        }
    }

    /// When the breaker opens.
    #[must_use]
    pub const fn policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long it stays open.
    #[must_use]
    pub const fn open_duration(mut self, open: OpenDuration) -> Self {
        self.open = open;
        self
    }

    /// How many probe calls may be in flight while half-open (others fail fast), and how many
    /// must succeed to close.
    #[must_use]
    pub const fn half_open(mut self, probes: u32, successes_to_close: u32) -> Self {
        self.probes = probes;
        self.successes_to_close = successes_to_close;
        self
    }

    /// Calls slower than `threshold` count as slow (see [`FailurePolicy::slow_rate`]).
    #[must_use]
    pub const fn slow_call(mut self, threshold: Option<Duration>) -> Self {
        self.slow_call = threshold;
        self
    }

    /// Draws the open-duration jitter from a generator seeded with `seed`.
    #[must_use]
    pub const fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BreakerConfigError> {
        let rate_ok = |r: f64| r.is_finite() && r > 0.0 && r <= 1.0;
        match self.policy {
            FailurePolicy::Consecutive { failures } => {
                if failures == 0 {
                    return Err(BreakerConfigError::ConsecutiveFailures(failures));
                }
            }
            FailurePolicy::CountWindow { consecutive: Some(0), .. }
            | FailurePolicy::TimeWindow { consecutive: Some(0), .. } => {
                return Err(BreakerConfigError::ConsecutiveFailures(0));
            }
            FailurePolicy::CountWindow { size, failure_rate, slow_rate, .. } => {
                if !(1..=10_000).contains(&size) {
                    return Err(BreakerConfigError::WindowSize(size));
                }
                if !rate_ok(failure_rate) {
                    return Err(BreakerConfigError::FailureRate(failure_rate));
                }
                if let Some(rate) = slow_rate.filter(|r| !rate_ok(*r)) {
                    return Err(BreakerConfigError::SlowRate(rate));
                }
            }
            FailurePolicy::TimeWindow { window, failure_rate, slow_rate, .. } => {
                if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
                    return Err(BreakerConfigError::WindowLength(window));
                }
                if !rate_ok(failure_rate) {
                    return Err(BreakerConfigError::FailureRate(failure_rate));
                }
                if let Some(rate) = slow_rate.filter(|r| !rate_ok(*r)) {
                    return Err(BreakerConfigError::SlowRate(rate));
                }
            }
        }
        let OpenDuration { base, multiplier, max, .. } = self.open;
        if base.is_zero() || max < base {
            return Err(BreakerConfigError::OpenDuration { base, max });
        }
        if !multiplier.is_finite() || multiplier < 1.0 {
            return Err(BreakerConfigError::OpenMultiplier(multiplier));
        }
        if self.probes == 0 {
            return Err(BreakerConfigError::Probes(self.probes));
        }
        if self.successes_to_close == 0 {
            return Err(BreakerConfigError::SuccessesToClose(self.successes_to_close));
        }
        if self.slow_call.is_some_and(|d| d.is_zero()) {
            return Err(BreakerConfigError::SlowCall(Duration::ZERO));
        }
        Ok(())
    }
}

impl Default for BreakerConfig {
    /// [`BreakerConfig::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

/// A [`BreakerConfig`] field with a value that cannot work.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// The consecutive-failure limit must be at least 1.
    #[error("the consecutive-failure limit must be at least 1, got {0}")]
    ConsecutiveFailures(u32),
    /// A count window holds 1 to 10,000 calls.
    #[error("a count window must hold 1 to 10000 calls, got {0}")]
    WindowSize(u32),
    /// A time window spans 1 s to 1 h.
    #[error("a time window must span 1 s to 1 h, got {0:?}")]
    WindowLength(Duration),
    /// The failure rate must be in (0, 1].
    #[error("the failure rate must be above 0 and at most 1, got {0}")]
    FailureRate(f64),
    /// The slow-call rate must be in (0, 1].
    #[error("the slow-call rate must be above 0 and at most 1, got {0}")]
    SlowRate(f64),
    /// The open duration must be positive, and its maximum at least its base.
    #[error(
        "the open duration must be positive and its maximum ({max:?}) at least its base ({base:?})"
    )]
    OpenDuration {
        /// The base given.
        base: Duration,
        /// The maximum given.
        max: Duration,
    },
    /// The open-duration multiplier must be a finite number of at least 1.
    #[error("the open-duration multiplier must be a finite number >= 1, got {0}")]
    OpenMultiplier(f64),
    /// At least one probe must be allowed while half-open.
    #[error("at least one half-open probe must be allowed, got {0}")]
    Probes(u32),
    /// At least one success must be needed to close.
    #[error("closing must need at least one successful probe, got {0}")]
    SuccessesToClose(u32),
    /// The slow-call threshold must be positive (use `None` not to judge slow calls).
    #[error(
        "the slow-call threshold must be positive (use None to not judge slow calls), got {0:?}"
    )]
    SlowCall(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_preset_is_valid() {
        assert_eq!(BreakerConfig::standard().validate(), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        let s = BreakerConfig::standard;
        let secs = Duration::from_secs;
        let cases = [
            (s().policy(FailurePolicy::consecutive(0)), BreakerConfigError::ConsecutiveFailures(0)),
            (
                s().policy(FailurePolicy::count_window(10, 0.5).or_consecutive(0)),
                BreakerConfigError::ConsecutiveFailures(0),
            ),
            (s().policy(FailurePolicy::count_window(0, 0.5)), BreakerConfigError::WindowSize(0)),
            (
                s().policy(FailurePolicy::time_window(secs(0), 0.5)),
                BreakerConfigError::WindowLength(secs(0)),
            ),
            (
                s().policy(FailurePolicy::count_window(10, 0.0)),
                BreakerConfigError::FailureRate(0.0),
            ),
            (
                s().policy(FailurePolicy::count_window(10, 1.5)),
                BreakerConfigError::FailureRate(1.5),
            ),
            (
                s().policy(FailurePolicy::count_window(10, 0.5).slow_rate(2.0)),
                BreakerConfigError::SlowRate(2.0),
            ),
            (
                s().open_duration(OpenDuration::growing(secs(10), 2.0, secs(5))),
                BreakerConfigError::OpenDuration { base: secs(10), max: secs(5) },
            ),
            (
                s().open_duration(OpenDuration::growing(secs(1), 0.5, secs(5))),
                BreakerConfigError::OpenMultiplier(0.5),
            ),
            (s().half_open(0, 1), BreakerConfigError::Probes(0)),
            (s().half_open(1, 0), BreakerConfigError::SuccessesToClose(0)),
            (s().slow_call(Some(secs(0))), BreakerConfigError::SlowCall(secs(0))),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
    }

    #[test]
    fn open_durations_grow_cap_and_jitter() {
        let secs = Duration::from_secs;
        let fixed = OpenDuration::fixed(secs(30));
        assert_eq!((fixed.for_trip(1, 0.3), fixed.for_trip(9, 0.9)), (secs(30), secs(30)));
        let growing = OpenDuration::growing(secs(10), 2.0, secs(60));
        assert_eq!(growing.for_trip(1, 0.0), secs(5));
        assert_eq!(growing.for_trip(1, 0.999_999), secs(10) - Duration::from_micros(5));
        assert_eq!(growing.for_trip(3, 0.0), secs(20));
        assert_eq!(growing.for_trip(30, 0.0), secs(30));
        assert!(growing.for_trip(u32::MAX, 1.0) <= secs(60));
    }
}
