//! The sliding window of recent outcomes that decides when a breaker opens.
//!
//! # Why the window really slides
//!
//! A breaker that counts outcomes since it last closed (a cumulative window) lets history delay
//! it: after 10,000 successes, it takes thousands of failures to reach a 50% failure rate, all of
//! them sent to a dead server. Here old outcomes leave the window: the count window keeps the last
//! N calls, the time window the last T seconds (in ten buckets), so a burst of failures opens the
//! breaker within one window whatever came before.
//!
//! The window takes no lock: recording an outcome is two or three atomic operations, so the
//! closed-state path never waits for another thread. Under heavy concurrency the counts are
//! momentarily approximate (each operation is atomic, their sum converges); the decision to open
//! is taken under the breaker's transition lock.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When a breaker opens.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// After this many failures in a row (a success resets the run).
    Consecutive {
        /// Failures in a row that open the breaker.
        failures: u32,
    },
    /// Over the last `size` calls, once at least `min_calls` are in the window.
    CountWindow {
        /// How many recent calls the window holds (1 to 10,000).
        size: u32,
        /// Calls needed before the rates are judged.
        min_calls: u32,
        /// Failure rate (0 to 1) that opens the breaker.
        failure_rate: f64,
        /// Slow-call rate (0 to 1) that opens it, if slow calls are judged.
        slow_rate: Option<f64>,
        /// Also opens after this many failures in a row, whatever the rate.
        consecutive: Option<u32>,
    },
    /// Over the calls of the last `window`, once at least `min_calls` are in it.
    TimeWindow {
        /// How far back the window reaches (1 s to 1 h), in ten buckets.
        window: Duration,
        /// Calls needed before the rates are judged.
        min_calls: u32,
        /// Failure rate (0 to 1) that opens the breaker.
        failure_rate: f64,
        /// Slow-call rate (0 to 1) that opens it, if slow calls are judged.
        slow_rate: Option<f64>,
        /// Also opens after this many failures in a row, whatever the rate.
        consecutive: Option<u32>,
    },
}

impl FailurePolicy {
    /// Opens after `failures` failures in a row.
    pub const fn consecutive(failures: u32) -> Self {
        Self::Consecutive { failures }
    }

    /// Opens when at least `failure_rate` of the last `size` calls failed (once `size / 2` calls
    /// are in the window; change it with [`min_calls`](Self::min_calls)).
    pub const fn count_window(size: u32, failure_rate: f64) -> Self {
        Self::CountWindow {
            size,
            min_calls: size / 2,
            failure_rate,
            slow_rate: None,
            consecutive: None,
        }
    }

    /// Opens when at least `failure_rate` of the calls of the last `window` failed (once 5 calls
    /// are in the window; change it with [`min_calls`](Self::min_calls)).
    pub const fn time_window(window: Duration, failure_rate: f64) -> Self {
        Self::TimeWindow { window, min_calls: 5, failure_rate, slow_rate: None, consecutive: None }
    }

    /// Judges rates only once `min_calls` calls are in the window (no effect on `Consecutive`).
    #[must_use]
    pub const fn min_calls(mut self, calls: u32) -> Self {
        match &mut self {
            Self::CountWindow { min_calls, .. } | Self::TimeWindow { min_calls, .. } => {
                *min_calls = calls;
            }
            Self::Consecutive { .. } => {}
        }
        self
    }

    /// Also opens after `failures` failures in a row, whichever of the two trips first (no
    /// effect on `Consecutive`).
    ///
    /// A rate needs its share of the window: a service that answered thousands of calls in the
    /// last minute and then died takes thousands of failures to reach 50%. A run of failures
    /// says the same in a few calls, whatever came before.
    #[must_use]
    pub const fn or_consecutive(mut self, failures: u32) -> Self {
        match &mut self {
            Self::CountWindow { consecutive, .. } | Self::TimeWindow { consecutive, .. } => {
                *consecutive = Some(failures);
            }
            Self::Consecutive { .. } => {}
        }
        self
    }

    /// Also opens when at least `rate` of the calls in the window were slow (see
    /// [`BreakerConfig::slow_call`](crate::BreakerConfig::slow_call); no effect on
    /// `Consecutive`, where a slow call counts as a failure).
    #[must_use]
    pub const fn slow_rate(mut self, rate: f64) -> Self {
        match &mut self {
            Self::CountWindow { slow_rate, .. } | Self::TimeWindow { slow_rate, .. } => {
                *slow_rate = Some(rate);
            }
            Self::Consecutive { .. } => {}
        }
        self
    }
}

/// What one call came to, as far as the breaker cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// It failed in a way that says the service is unwell (a transient failure or a timeout).
    pub failed: bool,
    /// It took longer than the slow-call threshold.
    pub slow: bool,
}

const BUCKETS: usize = 10;
const PRESENT: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

/// Recent outcomes of one service. A sans-IO value: it is given `now` and reads no clock.
#[derive(Debug)]
pub struct BreakerWindow {
    kind: Kind,
}

// One per service, made once: the size of the time window's buckets does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Kind {
    Consecutive {
        streak: Streak,
    },
    Count {
        thresholds: Thresholds,
        streak: Streak,
        cursor: AtomicU64,
        slots: Box<[AtomicU8]>,
        calls: AtomicU32,
        failures: AtomicU32,
        slow: AtomicU32,
    },
    Time {
        thresholds: Thresholds,
        streak: Streak,
        origin: Instant,
        bucket_nanos: u64,
        calls: [AtomicU64; BUCKETS],
        failures: [AtomicU64; BUCKETS],
        slow: [AtomicU64; BUCKETS],
    },
}

/// The current run of failures, and how long a run opens the breaker (0: never).
#[derive(Debug)]
struct Streak {
    limit: u32,
    run: AtomicU32,
}

impl Streak {
    fn new(limit: Option<u32>) -> Self {
        Self { limit: limit.unwrap_or(0), run: AtomicU32::new(0) }
    }

    /// Counts a failure or ends the run; `true` when the run reached the limit.
    fn record(&self, failed: bool) -> bool {
        if self.limit == 0 {
            return false;
        }
        if failed {
            self.run.fetch_add(1, Ordering::AcqRel).saturating_add(1) >= self.limit
        } else {
            // Skip the write when the run is already zero: no cache-line traffic on the common
            // path.
            if self.run.load(Ordering::Relaxed) != 0 {
                self.run.store(0, Ordering::Release);
            }
            false
        }
    }

    fn reset(&self) {
        self.run.store(0, Ordering::Release);
    }

    fn run(&self) -> u64 {
        u64::from(self.run.load(Ordering::Acquire))
    }
}

/// Rates in thousandths, so judging needs no floating point.
#[derive(Clone, Copy, Debug)]
struct Thresholds {
    min_calls: u64,
    failure_permille: u64,
    slow_permille: Option<u64>,
}

impl Thresholds {
    fn exceeded(self, calls: u64, failures: u64, slow: u64) -> bool {
        calls > 0
            && calls >= self.min_calls
            && (failures * 1000 >= self.failure_permille * calls
                || self.slow_permille.is_some_and(|p| slow * 1000 >= p * calls))
    }
}

fn permille(rate: f64) -> u64 {
    (rate.clamp(0.0, 1.0) * 1000.0).round() as u64
}

impl BreakerWindow {
    /// An empty window for `policy` (checked by the config), with time measured from `origin`.
    pub fn new(policy: &FailurePolicy, origin: Instant) -> Self {
        let kind = match *policy {
            FailurePolicy::Consecutive { failures } => {
                Kind::Consecutive { streak: Streak::new(Some(failures.max(1))) }
            }
            FailurePolicy::CountWindow {
                size,
                min_calls,
                failure_rate,
                slow_rate,
                consecutive,
            } => Kind::Count {
                thresholds: Thresholds {
                    min_calls: u64::from(min_calls),
                    failure_permille: permille(failure_rate),
                    slow_permille: slow_rate.map(permille),
                },
                streak: Streak::new(consecutive),
                cursor: AtomicU64::new(0),
                slots: (0..size.max(1)).map(|_| AtomicU8::new(0)).collect(),
                calls: AtomicU32::new(0),
                failures: AtomicU32::new(0),
                slow: AtomicU32::new(0),
            },
            FailurePolicy::TimeWindow {
                window,
                min_calls,
                failure_rate,
                slow_rate,
                consecutive,
            } => Kind::Time {
                thresholds: Thresholds {
                    min_calls: u64::from(min_calls),
                    failure_permille: permille(failure_rate),
                    slow_permille: slow_rate.map(permille),
                },
                streak: Streak::new(consecutive),
                origin,
                bucket_nanos: u64::try_from(window.as_nanos() / BUCKETS as u128)
                    .unwrap_or(u64::MAX)
                    .max(1),
                calls: Default::default(),
                failures: Default::default(),
                slow: Default::default(),
            },
        };
        Self { kind }
    }

    /// Records `outcome` at `now`. Returns `true` when the window now calls for opening.
    pub fn record(&self, outcome: Outcome, now: Instant) -> bool {
        match &self.kind {
            Kind::Consecutive { streak } => streak.record(outcome.failed || outcome.slow),
            Kind::Count { thresholds, streak, cursor, slots, calls, failures, slow } => {
                let in_a_row = streak.record(outcome.failed);
                let code = PRESENT
                    | if outcome.failed { FAILED } else { 0 }
                    | if outcome.slow { SLOW } else { 0 };
                let slot = (cursor.fetch_add(1, Ordering::Relaxed) % slots.len() as u64) as usize;
                let old = slots[slot].swap(code, Ordering::AcqRel);
                if old & PRESENT == 0 {
                    calls.fetch_add(1, Ordering::AcqRel);
                }
                adjust(failures, old & FAILED != 0, code & FAILED != 0);
                adjust(slow, old & SLOW != 0, code & SLOW != 0);
                in_a_row
                    || (outcome.failed || outcome.slow)
                        && thresholds.exceeded(
                            u64::from(calls.load(Ordering::Acquire)),
                            u64::from(failures.load(Ordering::Acquire)),
                            u64::from(slow.load(Ordering::Acquire)),
                        )
            }
            Kind::Time { thresholds, streak, origin, bucket_nanos, calls, failures, slow } => {
                let in_a_row = streak.record(outcome.failed);
                let slot = slot_of(*origin, *bucket_nanos, now);
                add(calls, slot);
                if outcome.failed {
                    add(failures, slot);
                }
                if outcome.slow {
                    add(slow, slot);
                }
                in_a_row
                    || (outcome.failed || outcome.slow)
                        && thresholds.exceeded(
                            sum(calls, slot),
                            sum(failures, slot),
                            sum(slow, slot),
                        )
            }
        }
    }

    /// Forgets every outcome (when the breaker closes or opens).
    pub fn reset(&self) {
        match &self.kind {
            Kind::Consecutive { streak } => streak.reset(),
            Kind::Count { streak, cursor, slots, calls, failures, slow, .. } => {
                streak.reset();
                for slot in slots.iter() {
                    slot.store(0, Ordering::Release);
                }
                cursor.store(0, Ordering::Release);
                for counter in [calls, failures, slow] {
                    counter.store(0, Ordering::Release);
                }
            }
            Kind::Time { streak, calls, failures, slow, .. } => {
                streak.reset();
                for bucket in calls.iter().chain(failures.iter()).chain(slow.iter()) {
                    bucket.store(0, Ordering::Release);
                }
            }
        }
    }

    /// Calls, failures and slow calls in the window at `now` (for the consecutive policy: the
    /// current run of failures, as both calls and failures).
    pub fn counts(&self, now: Instant) -> (u64, u64, u64) {
        match &self.kind {
            Kind::Consecutive { streak } => {
                let run = streak.run();
                (run, run, 0)
            }
            Kind::Count { calls, failures, slow, .. } => (
                u64::from(calls.load(Ordering::Acquire)),
                u64::from(failures.load(Ordering::Acquire)),
                u64::from(slow.load(Ordering::Acquire)),
            ),
            Kind::Time { origin, bucket_nanos, calls, failures, slow, .. } => {
                let slot = slot_of(*origin, *bucket_nanos, now);
                (sum(calls, slot), sum(failures, slot), sum(slow, slot))
            }
        }
    }
}

fn adjust(counter: &AtomicU32, was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            counter.fetch_add(1, Ordering::AcqRel);
        }
        (true, false) => {
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        }
        _ => {}
    }
}

fn slot_of(origin: Instant, bucket_nanos: u64, now: Instant) -> u32 {
    unattended_core::clock::bucket_index(origin, now, bucket_nanos)
}

/// Adds one to the bucket of `slot` (bucket number in the high half, count in the low half),
/// resetting it first if it holds an older slot.
fn add(buckets: &[AtomicU64; BUCKETS], slot: u32) {
    let bucket = &buckets[slot as usize % BUCKETS];
    let mut current = bucket.load(Ordering::Relaxed);
    loop {
        let next = if (current >> 32) as u32 == slot && current != 0 {
            (current & !u64::from(u32::MAX)) | u64::from((current as u32).saturating_add(1))
        } else {
            (u64::from(slot) << 32) | 1
        };
        match bucket.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// The counts of the buckets within the window that ends at `slot`.
fn sum(buckets: &[AtomicU64; BUCKETS], slot: u32) -> u64 {
    buckets
        .iter()
        .map(|bucket| bucket.load(Ordering::Acquire))
        .filter(|packed| *packed != 0 && slot.wrapping_sub((packed >> 32) as u32) < BUCKETS as u32)
        .map(|packed| u64::from(packed as u32))
        .sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const OK: Outcome = Outcome { failed: false, slow: false };
    const FAIL: Outcome = Outcome { failed: true, slow: false };
    const SLOW: Outcome = Outcome { failed: false, slow: true };

    fn t0() -> Instant {
        unattended_core::Clock::system().now()
    }

    #[test]
    fn consecutive_failures_open_and_a_success_resets_the_run() {
        let t = t0();
        let w = BreakerWindow::new(&FailurePolicy::consecutive(3), t);
        assert!(!w.record(FAIL, t) && !w.record(FAIL, t));
        assert!(!w.record(OK, t));
        assert!(!w.record(FAIL, t) && !w.record(FAIL, t));
        assert!(w.record(FAIL, t));
        assert!(w.record(SLOW, t), "a slow call counts as a failure here");
    }

    /// tower-resilience's "sliding" window is cumulative: 2,064 past successes let 2,064
    /// requests reach a dead server. Here a long history changes nothing.
    #[test]
    fn history_never_delays_opening() {
        let t = t0();
        for policy in [
            FailurePolicy::count_window(20, 0.5).min_calls(10),
            FailurePolicy::time_window(Duration::from_secs(10), 0.5).min_calls(10),
        ] {
            let w = BreakerWindow::new(&policy, t);
            for _ in 0..10_000 {
                assert!(!w.record(OK, t));
            }
            // For the time window, the history is 11 s old.
            let later = t + Duration::from_secs(11);
            let now = if matches!(policy, FailurePolicy::TimeWindow { .. }) { later } else { t };
            let opened_after = (1..=100).find(|_| w.record(FAIL, now)).unwrap();
            assert_eq!(opened_after, 10, "{policy:?}");
        }
    }

    /// A rate over a window full of successes takes as many failures as there were successes;
    /// a run of failures opens whatever the history.
    #[test]
    fn a_run_of_failures_opens_a_rate_window_whatever_its_history() {
        let t = t0();
        for policy in [
            FailurePolicy::count_window(10_000, 0.5).min_calls(10),
            FailurePolicy::time_window(Duration::from_secs(60), 0.5),
        ] {
            let w = BreakerWindow::new(&policy.or_consecutive(5), t);
            for _ in 0..2_000 {
                assert!(!w.record(OK, t));
            }
            // A success ends the run; slow successes are not failures here.
            for o in [FAIL, FAIL, FAIL, FAIL, OK, SLOW, FAIL, FAIL, FAIL, FAIL] {
                assert!(!w.record(o, t), "{policy:?}");
            }
            assert!(w.record(FAIL, t), "{policy:?}: the fifth in a row opens");
            w.reset();
            assert!((0..4).all(|_| !w.record(FAIL, t)), "{policy:?}: reset ends the run");
            // Without it, the history holds the window shut.
            let w = BreakerWindow::new(&policy, t);
            (0..2_000).for_each(|_| assert!(!w.record(OK, t)));
            assert!((0..100).all(|_| !w.record(FAIL, t)), "{policy:?}");
        }
    }

    #[test]
    fn min_calls_holds_judgement_back() {
        let t = t0();
        let w = BreakerWindow::new(&FailurePolicy::count_window(100, 0.5).min_calls(5), t);
        assert!((0..4).all(|_| !w.record(FAIL, t)));
        assert!(w.record(FAIL, t));
    }

    #[test]
    fn old_outcomes_leave_the_count_window() {
        let t = t0();
        let w = BreakerWindow::new(&FailurePolicy::count_window(4, 0.75).min_calls(4), t);
        for o in [FAIL, FAIL, OK, OK, OK, OK] {
            w.record(o, t);
        }
        assert_eq!(w.counts(t), (4, 0, 0));
        assert!(!w.record(FAIL, t));
        assert!(!w.record(FAIL, t));
        assert!(w.record(FAIL, t));
    }

    #[test]
    fn the_time_window_slides_by_buckets() {
        let t = t0();
        let w = BreakerWindow::new(
            &FailurePolicy::time_window(Duration::from_secs(10), 0.5).min_calls(4),
            t,
        );
        for _ in 0..3 {
            w.record(FAIL, t);
        }
        assert_eq!(w.counts(t + Duration::from_secs(9)), (3, 3, 0));
        assert_eq!(w.counts(t + Duration::from_secs(10)), (0, 0, 0));
        // Three fresh failures: not yet enough calls; the old ones are gone.
        let later = t + Duration::from_secs(10);
        assert!(!w.record(FAIL, later) && !w.record(FAIL, later) && !w.record(FAIL, later));
        assert!(w.record(FAIL, later));
    }

    #[test]
    fn slow_calls_open_on_their_own_rate() {
        let t = t0();
        let policy = FailurePolicy::count_window(10, 0.5).min_calls(4).slow_rate(0.5);
        let w = BreakerWindow::new(&policy, t);
        w.record(OK, t);
        w.record(OK, t);
        assert!(!w.record(SLOW, t));
        assert!(w.record(SLOW, t));
        // Without a slow rate, slow successes never open.
        let w = BreakerWindow::new(&FailurePolicy::count_window(10, 0.5).min_calls(4), t);
        assert!((0..20).all(|_| !w.record(SLOW, t)));
    }

    #[test]
    fn reset_forgets_everything() {
        let t = t0();
        let w = BreakerWindow::new(&FailurePolicy::count_window(10, 0.5).min_calls(2), t);
        w.record(FAIL, t);
        w.reset();
        assert_eq!(w.counts(t), (0, 0, 0));
        assert!(!w.record(FAIL, t));
    }

    proptest! {
        /// The count window always reports what a plain list of the last N outcomes would.
        #[test]
        fn count_window_matches_a_model(size in 1u32..40, outcomes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..200)) {
            let t = t0();
            let w = BreakerWindow::new(&FailurePolicy::count_window(size, 1.0).min_calls(1), t);
            for (failed, slow) in &outcomes {
                w.record(Outcome { failed: *failed, slow: *slow }, t);
            }
            let last: Vec<_> = outcomes.iter().rev().take(size as usize).collect();
            let failures = last.iter().filter(|(f, _)| *f).count() as u64;
            let slow = last.iter().filter(|(_, s)| *s).count() as u64;
            prop_assert_eq!(w.counts(t), (last.len() as u64, failures, slow));
        }
    }
}
