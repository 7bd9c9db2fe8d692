//! Learning a host's rate from its throttles: slow start, then a cubic probe counted in calls.
//!
//! # The rule
//!
//! The AWS SDKs' adaptive retry mode (`ClientRateLimiter` in `aws-smithy-runtime`) is the model:
//! nothing is paced until the first throttle; each throttle cuts the allowed rate to `β` times
//! what it was; while calls succeed the rate climbs back along a cubic curve that flattens out
//! near the rate of the last throttle, then probes beyond it.
//!
//! Two things differ, both measured against nginx's `limit_req` (a leaky bucket with a burst):
//!
//! - **The curve is counted in successful calls, not in seconds.** In seconds (AWS's
//!   `scale = 0.4`) the curve is back at the last rate after `∛(rate · 0.3 / 0.4)` seconds:
//!   3.4 s at 50 requests per second, which is about 170 calls per probe, but 1.1 s at 2 per
//!   second, two calls per probe, so a slow API would be throttled every other call. Counted in
//!   calls, every probe costs one throttle per [`PROBE_CALLS`] successes, at any rate.
//! - **Slow start.** AWS starts from the send rate it measured before the first throttle. The
//!   layer measures nothing on its happy path (it costs an atomic load), so after the first
//!   throttle it starts from a modest rate (or the one the server's quota fields give) and
//!   doubles it every [`SLOW_START_STEP`] while callers wait for it, until the next throttle.
//!
//! A throttle counts only for a request sent at least one interval after the last cut: the
//! answers to requests already in flight at the old rate say nothing about the new one (a burst
//! of 21 refusals is one cut, not 21). Two throttles within a quarter of a probe cut harder, so
//! a host whose limit fell a long way is followed down in a few steps.
//!
//! A sans-IO value: every method is given `now`.

use std::time::Duration;

use tokio::time::Instant;

/// The multiplicative cut on a throttle (AWS: `beta = 0.7`).
pub(crate) const BETA: f64 = 0.7;
/// The cut when throttled again before the rate recovered.
pub(crate) const HARD_BETA: f64 = 0.5;
/// Successful calls after a cut until the rate is back where it was cut.
pub(crate) const PROBE_CALLS: f64 = 200.0;
/// ... or this long, whichever comes first: a host cut far down (it refused everything for a
/// while) would otherwise need hundreds of calls at its lowest rate to recover.
pub(crate) const PROBE_TIME: Duration = Duration::from_secs(30);
/// How often slow start doubles the rate.
pub(crate) const SLOW_START_STEP: Duration = Duration::from_millis(250);
/// The rate to start from when nothing else is known, in requests per second.
pub(crate) const START_RATE: f64 = 10.0;
/// The lowest rate: one request every ten seconds.
pub(crate) const MIN_RATE: f64 = 0.1;
/// The highest rate the layer paces at, in requests per second.
pub(crate) const MAX_RATE: f64 = 1e6;

/// Where the rate stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Doubling every step while callers wait, until the next throttle.
    SlowStart { step_at: Instant },
    /// After a cut at `since`: back to `last` over [`PROBE_CALLS`] successes (or
    /// [`PROBE_TIME`]), then beyond.
    Probing { last: f64, successes: f64, since: Instant },
}

/// The learned rate of one host.
#[derive(Clone, Debug)]
pub(crate) struct Adaptive {
    rate: f64,
    /// Never above this: a configured pace, or the rate a server's quota allows.
    ceiling: f64,
    phase: Phase,
    /// Throttles of requests sent before this do not cut again.
    cut_at: Instant,
    /// A request waited for its slot since the last slow-start step.
    demand: bool,
}

impl Adaptive {
    /// Starts learning at `now`, from `rate` (capped by `ceiling`), in slow start.
    pub(crate) fn new(now: Instant, rate: f64, ceiling: f64) -> Self {
        let ceiling = clamp(ceiling);
        Self {
            rate: clamp(rate).min(ceiling),
            ceiling,
            phase: Phase::SlowStart { step_at: now + SLOW_START_STEP },
            cut_at: now,
            demand: false,
        }
    }

    /// Resumes at a rate learned before (a restart): probing from there, not slow start.
    pub(crate) fn resumed(now: Instant, rate: f64, ceiling: f64) -> Self {
        let ceiling = clamp(ceiling);
        let rate = clamp(rate).min(ceiling);
        Self {
            rate,
            ceiling,
            phase: Phase::Probing { last: rate, successes: PROBE_CALLS, since: now },
            cut_at: now,
            demand: false,
        }
    }

    /// Requests per second now.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// True while the rate is doubling.
    #[cfg(test)]
    fn in_slow_start(&self) -> bool {
        matches!(self.phase, Phase::SlowStart { .. })
    }

    /// A request was admitted; `waited` says whether it had to wait for its slot.
    pub(crate) fn admitted(&mut self, waited: bool) {
        self.demand |= waited;
    }

    /// The server took a request; `waited` says whether it waited for its slot (`None`: it was
    /// not paced). Returns `true` if the rate changed.
    pub(crate) fn accepted(&mut self, now: Instant, waited: Option<bool>) -> bool {
        let before = self.rate;
        match &mut self.phase {
            Phase::SlowStart { step_at } => {
                while now >= *step_at {
                    if self.demand {
                        self.rate = (self.rate * 2.0).min(self.ceiling);
                    }
                    self.demand = false;
                    *step_at += SLOW_START_STEP;
                }
            }
            Phase::Probing { last, successes, since } => {
                // Only calls that waited for the pace say it is too slow; a pace nobody waits
                // for would otherwise climb without limit.
                if waited == Some(true) {
                    *successes += 1.0;
                    let calls = *successes / PROBE_CALLS;
                    let time = now.saturating_duration_since(*since).as_secs_f64()
                        / PROBE_TIME.as_secs_f64();
                    let x = calls.max(time) - 1.0;
                    let curve = *last * (1.0 + (1.0 - BETA) * x * x * x);
                    self.rate = clamp(curve).min(self.ceiling);
                }
            }
        }
        self.rate != before
    }

    /// The server refused a request for its rate (admitted at `sent`, if it was paced).
    /// Returns `true` if the rate was cut.
    pub(crate) fn throttled(&mut self, now: Instant, sent: Option<Instant>) -> bool {
        let Some(sent) = sent else { return false };
        if sent < self.cut_at + interval(self.rate) {
            return false;
        }
        let beta = match self.phase {
            Phase::Probing { successes, .. } if successes < PROBE_CALLS / 4.0 => HARD_BETA,
            _ => BETA,
        };
        let last = self.rate;
        self.rate = clamp(last * beta);
        self.phase = Phase::Probing { last, successes: 0.0, since: now };
        self.cut_at = now;
        self.demand = false;
        true
    }

    /// The server says how fast it lets us go (its quota fields): never above it, and out of
    /// slow start straight to it. Returns `true` if the rate changed.
    pub(crate) fn server_rate(&mut self, limit: f64, fixed_ceiling: f64) -> bool {
        let before = self.rate;
        self.ceiling = clamp(limit).min(clamp(fixed_ceiling));
        if let Phase::SlowStart { step_at } = self.phase {
            self.rate = self.ceiling;
            let since = step_at - SLOW_START_STEP;
            self.phase = Phase::Probing { last: self.ceiling, successes: PROBE_CALLS, since };
        }
        self.rate = self.rate.min(self.ceiling);
        self.rate != before
    }
}

/// The time between two requests at `rate`.
pub(crate) fn interval(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / clamp(rate))
}

fn clamp(rate: f64) -> f64 {
    if rate.is_nan() { MIN_RATE } else { rate.clamp(MIN_RATE, MAX_RATE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        unattended_core::Clock::system().now()
    }

    #[test]
    fn slow_start_doubles_only_while_callers_wait() {
        let t = t0();
        let mut a = Adaptive::new(t, 10.0, f64::INFINITY);
        a.admitted(true);
        a.accepted(t + Duration::from_millis(260), Some(true));
        assert_eq!(a.rate(), 20.0);
        // Nobody waited in the next step: no growth.
        a.accepted(t + Duration::from_millis(510), Some(false));
        assert_eq!(a.rate(), 20.0);
        a.admitted(true);
        a.accepted(t + Duration::from_millis(760), Some(true));
        assert_eq!(a.rate(), 40.0);
    }

    #[test]
    fn one_cut_per_episode_then_back_over_the_probe() {
        let t = t0();
        let mut a = Adaptive::new(t, 100.0, f64::INFINITY);
        let later = t + Duration::from_secs(1);
        assert!(!a.throttled(later, None), "not paced when sent: says nothing");
        assert!(a.throttled(later, Some(later)));
        assert!((a.rate() - 70.0).abs() < 1e-9);
        // In flight before the cut: no second cut.
        assert!(!a.throttled(later + Duration::from_millis(5), Some(later)));
        // Calls nobody had to wait for do not move it.
        a.accepted(later, Some(false));
        assert!((a.rate() - 70.0).abs() < 1e-9);
        for _ in 0..PROBE_CALLS as usize {
            a.accepted(later, Some(true));
        }
        assert!((a.rate() - 100.0).abs() < 1e-6, "{}", a.rate());
        for _ in 0..PROBE_CALLS as usize {
            a.accepted(later, Some(true));
        }
        assert!(a.rate() > 120.0, "probes beyond: {}", a.rate());
    }

    #[test]
    fn a_deep_cut_recovers_in_time_too() {
        let t = t0();
        let mut a = Adaptive::new(t, 10.0, f64::INFINITY);
        a.throttled(t, Some(t));
        let cut = a.rate();
        // A handful of calls, but half a minute: back where it was cut.
        a.accepted(t + PROBE_TIME, Some(true));
        assert!((a.rate() - 10.0).abs() < 1e-9, "{cut} → {}", a.rate());
    }

    #[test]
    fn throttled_again_soon_cuts_harder() {
        let t = t0();
        let mut a = Adaptive::new(t, 100.0, f64::INFINITY);
        let at = |ms| t + Duration::from_millis(ms);
        assert!(a.throttled(at(100), Some(at(100))));
        assert!(a.throttled(at(200), Some(at(200))));
        assert!((a.rate() - 35.0).abs() < 1e-9, "{}", a.rate());
    }

    #[test]
    fn the_ceiling_and_the_floor_hold() {
        let t = t0();
        let mut a = Adaptive::new(t, 10.0, 15.0);
        a.admitted(true);
        a.accepted(t + Duration::from_secs(2), Some(true));
        assert_eq!(a.rate(), 15.0);
        let mut a = Adaptive::new(t, 0.2, f64::INFINITY);
        for s in 1..20 {
            let at = t + Duration::from_secs(s * 20);
            a.throttled(at, Some(at));
        }
        assert_eq!(a.rate(), MIN_RATE);
        assert_eq!(interval(f64::NAN), Duration::from_secs(10));
    }

    #[test]
    fn a_server_rate_ends_slow_start() {
        let t = t0();
        let mut a = Adaptive::new(t, 10.0, f64::INFINITY);
        assert!(a.server_rate(50.0, f64::INFINITY));
        assert_eq!(a.rate(), 50.0);
        assert!(!a.in_slow_start());
    }
}
