//! The retry decision itself, sans I/O: shared by the layer and by code that retries by hand.

use std::time::Duration;

use http::StatusCode;
use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::clock::add_saturating;
use unattended_core::{Clock, FailureClass, Random, TransientCause};

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
    /// more backoff from now). The backoff's jitter and the spread after a server's wait are
    /// drawn from `random`; a retry withdraws from `budget` (successes pay into it: see
    /// [`RetryBudget::record_success`]).
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
        random: &Random,
    ) -> Result<Duration, (GiveUpReason, Timestamp)> {
        let now = clock.now();
        let unit = random.unit();
        let backoff = self.schedule().delay(state.attempts.saturating_sub(1), state.previous, unit);
        let server_wait = class.not_before().map(|until| clock.until(until));
        // A throttle's retry waits for the host's pace below: the pace spreads it and bounds
        // it, not the pushback spread and the budget.
        let paced = self.paced_throttles && throttled(class);
        let delay = match server_wait {
            Some(wait) if !self.pushback_spread.is_zero() && !paced => {
                // A draw of its own: the backoff's draw is biased low whenever the server's
                // wait is the longer one.
                let spread = self.pushback_spread.mul_f64(random.unit());
                // The spread never pushes a retry that fits past the deadline.
                let slack = self.deadline.map_or(Duration::MAX, |deadline| {
                    match (state.started.checked_add(deadline), now.checked_add(wait)) {
                        (Some(end), Some(at)) => end.saturating_duration_since(at),
                        _ => Duration::ZERO,
                    }
                });
                backoff.max(wait.saturating_add(spread.min(slack)))
            }
            wait => backoff.max(wait.unwrap_or_default()),
        };
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
        } else if budget.is_some_and(|budget| !paced && !budget.try_withdraw()) {
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

/// The server refused the attempt for its rate: a `429`, or an answer that says until when (a
/// `503` with `Retry-After`, an exhausted quota). A pause of our own (no status) is not one.
fn throttled(class: &FailureClass) -> bool {
    match class {
        FailureClass::RateLimited { status, .. } => status.is_some(),
        FailureClass::Transient(TransientCause::Status(status)) => {
            *status == StatusCode::TOO_MANY_REQUESTS
        }
        _ => false,
    }
}
