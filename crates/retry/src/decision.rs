//! The retry decision itself, sans I/O: shared by the layer and by code that retries by hand.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::clock::add_saturating;
use unattended_core::{Clock, FailureClass};

use crate::budget::RetryBudget;
use crate::config::RetryConfig;
use crate::error::GiveUpReason;

/// Where one request stands in its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryState {
    /// Attempts made so far, the one that just failed included.
    pub attempts: u32,
    /// The delay before the last retry (the base delay before the first).
    pub previous: Duration,
    /// When the first attempt started.
    pub started: Instant,
    /// Whether sending the request twice has the effect of sending it once.
    pub idempotent: bool,
    /// Whether a copy of the request is at hand to send again.
    pub replayable: bool,
}

impl RetryConfig {
    /// What to do after an attempt failed with `class`: wait the returned delay and send again,
    /// or stop for the given reason and come back at the given time (the server's time, or one
    /// more backoff from now). `unit` is the jitter draw in `[0, 1)`; a retry withdraws from
    /// `budget` (successes pay into it: see [`RetryBudget::record_success`]).
    ///
    /// This is the retry layer's rule, in its order; a `reqwest-middleware` adapter or a
    /// hand-written loop calls it to decide alike.
    ///
    /// # Errors
    ///
    /// The reason to stop, and when to try again.
    pub fn decide(
        &self,
        state: &RetryState,
        class: &FailureClass,
        budget: Option<&RetryBudget>,
        clock: &Clock,
        unit: f64,
    ) -> Result<Duration, (GiveUpReason, Timestamp)> {
        let now = clock.now();
        let backoff = self.schedule().delay(state.attempts.saturating_sub(1), state.previous, unit);
        let server_wait = class.not_before().map(|until| clock.until(until));
        let delay = backoff.max(server_wait.unwrap_or_default());
        let reason = if !state.idempotent && !class.not_processed() {
            Some(GiveUpReason::NotIdempotent)
        } else if state.attempts >= self.max_attempts {
            Some(GiveUpReason::MaxAttempts)
        } else if !state.replayable {
            Some(GiveUpReason::NotReplayable)
        } else if server_wait.is_some_and(|wait| wait > self.max_server_wait) {
            Some(GiveUpReason::ServerWaitTooLong)
        } else if self.deadline.is_some_and(|deadline| now + delay > state.started + deadline) {
            Some(GiveUpReason::Deadline)
        } else if budget.is_some_and(|budget| !budget.try_withdraw()) {
            Some(GiveUpReason::Budget)
        } else {
            None
        };
        match reason {
            Some(reason) => Err((reason, add_saturating(clock.wall(), delay))),
            None => Ok(delay),
        }
    }
}
