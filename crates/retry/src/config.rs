//! Settings of the retry layer, checked once when the layer is built.

use std::time::Duration;

use crate::budget::BudgetConfig;
use crate::schedule::{BackoffSchedule, Jitter};

/// Settings of a [`RetryLayer`](crate::RetryLayer).
///
/// Start from a preset and change what you need; [`RetryLayer::new`](crate::RetryLayer::new)
/// checks the result and says which field is wrong.
///
/// | setting | [`standard`](Self::standard) |
/// |---|---|
/// | attempts (first try included) | 4 |
/// | backoff | 250 ms × 2ⁿ, capped at 30 s, full jitter |
/// | overall deadline | 2 min from the first attempt |
/// | per-attempt timeout | 30 s |
/// | longest server-requested wait to sleep through | 60 s |
/// | spread after a server-requested wait | up to 1 s, at random |
/// | budget | half a retry earned per success, at most 10 saved up (a dead host gets 10 retries in all) |
///
/// ```
/// use std::time::Duration;
/// use unattended_retry::{Jitter, RetryConfig, RetryLayer};
///
/// let layer = RetryLayer::new(
///     RetryConfig::standard()
///         .max_attempts(6)
///         .backoff(Duration::from_millis(500), 2.0, Duration::from_secs(60))
///         .jitter(Jitter::Decorrelated),
/// )?;
/// # Ok::<(), unattended_retry::RetryConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: Jitter,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_server_wait: Duration,
    pub(crate) pushback_spread: Duration,
    pub(crate) budget: Option<BudgetConfig>,
    pub(crate) paced_throttles: bool,
    pub(crate) seed: Option<u64>,
}

impl RetryConfig {
    /// The recommended settings for unattended jobs (see the table above).
    pub const fn standard() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Full,
            deadline: Some(Duration::from_secs(120)),
            attempt_timeout: Some(Duration::from_secs(30)),
            max_server_wait: Duration::from_secs(60),
            pushback_spread: Duration::from_secs(1),
            budget: Some(BudgetConfig::new()),
            paced_throttles: false,
            seed: None,
        }
    }

    /// How many attempts a request gets in all, the first included (1 to 100).
    #[must_use]
    pub const fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The exponential schedule: the first delay, the growth factor and the largest delay.
    #[must_use]
    pub const fn backoff(mut self, base: Duration, multiplier: f64, max: Duration) -> Self {
        self.base_delay = base;
        self.multiplier = multiplier;
        self.max_delay = max;
        self
    }

    /// How delays are randomized ([`Jitter::Full`] unless you have measured otherwise).
    #[must_use]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// No retry starts later than this after the first attempt; `None` for no deadline.
    ///
    /// When the next wait would end past the deadline, the layer stops at once with an error
    /// that says when to try again, instead of sleeping. An attempt in flight is not cut short:
    /// that is the per-attempt timeout's job, or a `Timeout` layer's around this one.
    #[must_use]
    pub const fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Each attempt fails with a timeout after this long; `None` to wait for ever.
    ///
    /// A server that never answers must become an error, not a hang, so presets set one. The
    /// timeout wraps everything inside this layer: in a stack where inner layers may wait on
    /// purpose (a rate-limit pause), set `None` here and put a timeout next to the transport
    /// instead (`Retry → RateLimit → … → Timeout → transport`), so waiting out a pause is not
    /// mistaken for a hung server.
    #[must_use]
    pub const fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The longest `Retry-After` (or rate-limit reset) to wait out before retrying.
    ///
    /// A server asking for longer ends the retries at once with an error whose disposition is
    /// "retry at" the server's time: a job scheduler should come back then, rather than hold a
    /// task for hours.
    #[must_use]
    pub const fn max_server_wait(mut self, wait: Duration) -> Self {
        self.max_server_wait = wait;
        self
    }

    /// After a wait the server asked for (`Retry-After`, a rate-limit reset), each retry is sent
    /// at a random instant within this long after the server's time, never before it; zero to
    /// send at the server's instant.
    ///
    /// Every caller refused at once is told the same instant: sent then, they would all arrive
    /// together and be refused together again (the herd the server meant to spread). The
    /// rate-limit layer releases the callers it holds over the same kind of spread. Throttles
    /// paced below ([`paced_throttles`](Self::paced_throttles)) go at the server's instant: the
    /// pace spreads them, in the order they came.
    #[must_use]
    pub const fn pushback_spread(mut self, spread: Duration) -> Self {
        self.pushback_spread = spread;
        self
    }

    /// The retry budget shared by every clone of the layer; `None` for no budget.
    #[must_use]
    pub const fn budget(mut self, budget: Option<BudgetConfig>) -> Self {
        self.budget = budget;
        self
    }

    /// Whether a rate-limit layer inside this one paces every host that throttles, so that the
    /// retries of throttled attempts (a `429`, or a `503` or quota that says until when) do
    /// not draw on the budget, and go at the server's instant without the
    /// [`pushback_spread`](Self::pushback_spread) (they take their places in the host's paced
    /// line then). Off by default.
    ///
    /// The budget keeps retries from multiplying the load on a failing service. A host that
    /// throttles is not failing, and where it is paced each retry waits for a slot of its pace:
    /// the load stays the pace's however many retries there are. Charging them to the budget
    /// would only fail the callers of a burst the server refused at once (32 callers behind
    /// nginx's `burst=10` spend a budget of 10 in one round). The attempts and the deadline
    /// still bound each request. The client turns this on while its rate-limit layer paces
    /// (adaptive, or a configured pace).
    #[must_use]
    pub const fn paced_throttles(mut self, paced: bool) -> Self {
        self.paced_throttles = paced;
        self
    }

    /// Draw jitter from a generator seeded with `seed`, so a run can be replayed exactly.
    /// Without a seed, jitter comes from a per-thread generator seeded by the system.
    #[must_use]
    pub const fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every field, naming the first one that is wrong.
    pub(crate) fn validate(&self) -> Result<(), RetryConfigError> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(RetryConfigError::MaxAttempts(self.max_attempts));
        }
        if self.base_delay.is_zero() {
            return Err(RetryConfigError::BaseDelay(self.base_delay));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(RetryConfigError::Multiplier(self.multiplier));
        }
        if self.max_delay < self.base_delay {
            return Err(RetryConfigError::MaxDelay { max: self.max_delay, base: self.base_delay });
        }
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(RetryConfigError::Deadline(Duration::ZERO));
        }
        if self.attempt_timeout.is_some_and(|d| d.is_zero()) {
            return Err(RetryConfigError::AttemptTimeout(Duration::ZERO));
        }
        if let Some(budget) = &self.budget {
            if budget.max_retries > 10_000 {
                return Err(RetryConfigError::BudgetRetries(budget.max_retries));
            }
            if !budget.per_success.is_finite() || !(0.0..=10.0).contains(&budget.per_success) {
                return Err(RetryConfigError::BudgetShare(budget.per_success));
            }
        }
        Ok(())
    }

    pub(crate) fn schedule(&self) -> BackoffSchedule {
        BackoffSchedule::new(self.base_delay, self.multiplier, self.max_delay, self.jitter)
    }

    /// The backoff schedule of this config, for code that retries by hand (a
    /// `reqwest-middleware` adapter) with the same delays as the layer.
    ///
    /// # Errors
    ///
    /// The config is invalid, as [`RetryLayer::new`](crate::RetryLayer::new) would say.
    pub fn backoff_schedule(&self) -> Result<BackoffSchedule, RetryConfigError> {
        self.validate()?;
        Ok(self.schedule())
    }
}

impl Default for RetryConfig {
    /// [`RetryConfig::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

/// A [`RetryConfig`] field with a value that cannot work.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// `max_attempts` must be between 1 and 100.
    #[error("max_attempts must be between 1 and 100, got {0}")]
    MaxAttempts(u32),
    /// The base delay must be positive.
    #[error("the base delay must be positive, got {0:?}")]
    BaseDelay(Duration),
    /// The multiplier must be a finite number of at least 1.
    #[error("the backoff multiplier must be a finite number >= 1, got {0}")]
    Multiplier(f64),
    /// The largest delay must be at least the base delay.
    #[error("the largest delay ({max:?}) must be at least the base delay ({base:?})")]
    MaxDelay {
        /// The largest delay given.
        max: Duration,
        /// The base delay given.
        base: Duration,
    },
    /// The deadline must be positive (use `None` for no deadline).
    #[error("the deadline must be positive (use None for no deadline), got {0:?}")]
    Deadline(Duration),
    /// The per-attempt timeout must be positive (use `None` for no timeout).
    #[error("the attempt timeout must be positive (use None for no timeout), got {0:?}")]
    AttemptTimeout(Duration),
    /// The budget holds at most 10,000 retries.
    #[error("the budget may save up 0 to 10000 retries, got {0}")]
    BudgetRetries(u32),
    /// The share of a retry a success earns must be between 0 and 10.
    #[error("the share of a retry a success earns must be between 0 and 10, got {0}")]
    BudgetShare(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_preset_is_valid() {
        assert_eq!(RetryConfig::standard().validate(), Ok(()));
        assert_eq!(RetryConfig::default(), RetryConfig::standard());
    }

    #[test]
    fn each_bad_field_is_named() {
        let s = RetryConfig::standard;
        let ms = Duration::from_millis;
        let cases = [
            (s().max_attempts(0), RetryConfigError::MaxAttempts(0)),
            (s().max_attempts(101), RetryConfigError::MaxAttempts(101)),
            (s().backoff(ms(0), 2.0, ms(10)), RetryConfigError::BaseDelay(ms(0))),
            (s().backoff(ms(1), 0.5, ms(10)), RetryConfigError::Multiplier(0.5)),
            (
                s().backoff(ms(1), f64::INFINITY, ms(10)),
                RetryConfigError::Multiplier(f64::INFINITY),
            ),
            (
                s().backoff(ms(10), 2.0, ms(1)),
                RetryConfigError::MaxDelay { max: ms(1), base: ms(10) },
            ),
            (s().deadline(Some(ms(0))), RetryConfigError::Deadline(ms(0))),
            (s().attempt_timeout(Some(ms(0))), RetryConfigError::AttemptTimeout(ms(0))),
            (
                s().budget(Some(BudgetConfig::new().max_retries(10_001))),
                RetryConfigError::BudgetRetries(10_001),
            ),
            (
                s().budget(Some(BudgetConfig::new().per_success(-0.1))),
                RetryConfigError::BudgetShare(-0.1),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
        // NaN is rejected too (and is not equal to itself, so match the variant).
        let nan = s().backoff(ms(1), f64::NAN, ms(10)).validate();
        assert!(matches!(nan, Err(RetryConfigError::Multiplier(m)) if m.is_nan()));
        assert_eq!(
            RetryConfigError::MaxAttempts(0).to_string(),
            "max_attempts must be between 1 and 100, got 0"
        );
    }
}
