//! When a task runs: the sans-IO schedule arithmetic, given `now` and the last slot served.
//!
//! A schedule produces *slots*: the instants a task is meant to start. Intervals (`every =
//! "15m"`) count elapsed time from the last slot served, so daylight-saving changes never move
//! them; cron expressions are read in the task's zone ([`CronExpr`]). A run starts at its slot
//! plus a uniform random delay (systemd's `RandomizedDelaySec`), drawn anew each time.
//!
//! - **Catch-up** (systemd `Persistent=`): slots missed while the runner was down become *one*
//!   run at start-up, or none, by setting.
//! - **Overlap** (Temporal's default `Skip`): slots that pass while a run is still going are
//!   skipped and counted; the next run is the first slot after the run ends.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use unattended_core::clock::{add_saturating, duration_between};

use crate::cron::CronExpr;

/// Missed slots are counted up to this many; beyond it, "at least this many" (a cron searched
/// slot by slot over a long downtime costs time for nothing).
pub const MISSED_COUNT_CAP: u64 = 10_000;

/// How often a task's slots come.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Cadence {
    /// A fixed interval of elapsed time from the last slot.
    Every(Duration),
    /// A cron expression in the schedule's zone.
    Cron(CronExpr),
}

/// When a task runs.
#[derive(Clone, Debug)]
pub struct Schedule {
    cadence: Cadence,
    tz: TimeZone,
    jitter: Duration,
    catch_up: bool,
}

/// Where a task's next run stands, as [`Schedule::plan`] works it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The slot the run serves.
    pub slot: Timestamp,
    /// When it should start, before jitter: the slot, or now for a catch-up run.
    pub start: Timestamp,
    /// Slots that came and went unserved since the last one (capped at [`MISSED_COUNT_CAP`]).
    pub missed: u64,
}

impl Schedule {
    /// A schedule of `cadence` in zone `tz`, no jitter, catching up with one run.
    pub fn new(cadence: Cadence, tz: TimeZone) -> Self {
        Self { cadence, tz, jitter: Duration::ZERO, catch_up: true }
    }

    /// Starts each run up to `jitter` after its slot (uniformly at random).
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether slots missed while the runner was down give one run at start-up (default) or
    /// none.
    #[must_use]
    pub fn catch_up(mut self, catch_up: bool) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// The cadence.
    pub fn cadence(&self) -> &Cadence {
        &self.cadence
    }

    /// The zone cron expressions are read in.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// The largest start delay.
    pub fn max_jitter(&self) -> Duration {
        self.jitter
    }

    /// The first slot strictly after `t`, counting intervals from `last` (the last slot served).
    pub fn slot_after(&self, last: Timestamp, t: Timestamp) -> Option<Timestamp> {
        match &self.cadence {
            Cadence::Every(every) => {
                let passed = if t < last { 0 } else { intervals(last, t, *every) };
                Some(add_saturating(last, mul(*every, passed.saturating_add(1))))
            }
            Cadence::Cron(expr) => expr.next_after(t.max(last), &self.tz),
        }
    }

    /// The number of slots in `(last, t]` (capped at [`MISSED_COUNT_CAP`]).
    pub fn slots_between(&self, last: Timestamp, t: Timestamp) -> u64 {
        if t <= last {
            return 0;
        }
        match &self.cadence {
            Cadence::Every(every) => intervals(last, t, *every).min(MISSED_COUNT_CAP),
            Cadence::Cron(expr) => {
                let mut n = 0;
                let mut at = last;
                while n < MISSED_COUNT_CAP {
                    match expr.next_after(at, &self.tz) {
                        Some(next) if next <= t => (n, at) = (n + 1, next),
                        _ => break,
                    }
                }
                n
            }
        }
    }

    /// The last slot in `(last, t]`, if any.
    pub(crate) fn latest_slot(&self, last: Timestamp, t: Timestamp) -> Option<Timestamp> {
        if t <= last {
            return None;
        }
        match &self.cadence {
            Cadence::Every(every) => {
                let n = intervals(last, t, *every);
                (n > 0).then(|| add_saturating(last, mul(*every, n)))
            }
            Cadence::Cron(expr) => expr.last_at_or_before(t, &self.tz).filter(|s| *s > last),
        }
    }

    /// Where a task stands at start-up: `last` is the last slot it served (none for a new task).
    ///
    /// A new interval task runs at once; a new cron task waits for its first slot. A task whose
    /// next slot is still to come waits for it. A task that missed slots while the runner was
    /// down runs once now (serving the latest missed slot, so its interval grid goes on) when it
    /// catches up, else waits for the first slot after now.
    pub fn plan(&self, last: Option<Timestamp>, now: Timestamp) -> Option<Planned> {
        let Some(last) = last else {
            return match &self.cadence {
                Cadence::Every(_) => Some(Planned { slot: now, start: now, missed: 0 }),
                Cadence::Cron(expr) => {
                    let slot = match expr.last_at_or_before(now, &self.tz) {
                        Some(s) if s == now => now,
                        _ => expr.next_after(now, &self.tz)?,
                    };
                    Some(Planned { slot, start: slot, missed: 0 })
                }
            };
        };
        let first = self.slot_after(last, last)?;
        if first > now {
            return Some(Planned { slot: first, start: first, missed: 0 });
        }
        let missed = self.slots_between(last, now);
        if self.catch_up {
            let slot = self.latest_slot(last, now).unwrap_or(first);
            // The run serves one slot; the others are the ones it makes up for.
            Some(Planned { slot, start: now, missed: missed.saturating_sub(1) })
        } else {
            let slot = self.slot_after(last, now)?;
            Some(Planned { slot, start: slot, missed })
        }
    }

    /// The next slot after a run that served `last` ended at `ended`, and how many slots passed
    /// while it ran (skipped: runs never overlap).
    pub fn after_run(&self, last: Timestamp, ended: Timestamp) -> Option<Planned> {
        let slot = self.slot_after(last, ended)?;
        Some(Planned { slot, start: slot, missed: self.slots_between(last, ended) })
    }

    /// The next `n` slots after `now`, for `check` to show; `last` as for [`plan`](Self::plan).
    pub fn upcoming(&self, last: Option<Timestamp>, now: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let Some(first) = self.plan(last, now) else { return out };
        let mut slot = first.start.max(first.slot);
        let mut anchor = first.slot;
        while out.len() < n {
            out.push(slot);
            match self.slot_after(anchor, slot) {
                Some(next) => (anchor, slot) = (next, next),
                None => break,
            }
        }
        out
    }

    /// The longest gap between the next few slots after `now`: what "late" is measured
    /// against when no `stale_after` is set (twice this).
    pub fn longest_gap(&self, now: Timestamp) -> Duration {
        match &self.cadence {
            Cadence::Every(every) => *every,
            Cadence::Cron(_) => {
                let slots = self.upcoming(Some(now), now, 9);
                slots
                    .windows(2)
                    .map(|w| duration_between(w[0], w[1]))
                    .max()
                    .unwrap_or(Duration::ZERO)
            }
        }
    }
}

/// Whole `every`s from `from` to `to` (`to >= from`).
fn intervals(from: Timestamp, to: Timestamp, every: Duration) -> u64 {
    let elapsed = duration_between(from, to).as_nanos();
    let every = every.as_nanos().max(1);
    u64::try_from(elapsed / every).unwrap_or(u64::MAX)
}

fn mul(d: Duration, n: u64) -> Duration {
    d.checked_mul(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn every(mins: u64) -> Schedule {
        Schedule::new(Cadence::Every(Duration::from_secs(mins * 60)), TimeZone::UTC)
    }

    fn cron(expr: &str, tz: &str) -> Schedule {
        Schedule::new(Cadence::Cron(expr.parse().unwrap()), TimeZone::get(tz).unwrap())
    }

    #[test]
    fn a_new_interval_task_runs_at_once_and_a_new_cron_task_waits() {
        let now = at("2026-12-01T10:07:00Z");
        assert_eq!(every(15).plan(None, now), Some(Planned { slot: now, start: now, missed: 0 }));
        let p = cron("0 * * * *", "UTC").plan(None, now).unwrap();
        assert_eq!((p.slot, p.start, p.missed), (at("2026-12-01T11:00:00Z"), p.slot, 0));
        let on_slot = at("2026-12-01T11:00:00Z");
        assert_eq!(cron("0 * * * *", "UTC").plan(None, on_slot).unwrap().slot, on_slot);
    }

    #[test]
    fn a_restart_before_the_next_slot_waits_for_it() {
        let s = every(15);
        let p = s.plan(Some(at("2026-12-01T10:00:00Z")), at("2026-12-01T10:07:00Z")).unwrap();
        assert_eq!(p, Planned { slot: at("2026-12-01T10:15:00Z"), start: p.slot, missed: 0 });
    }

    #[test]
    fn six_hours_down_gives_one_run_that_keeps_the_grid() {
        let s = every(15);
        let last = at("2026-12-01T04:00:00Z");
        let now = at("2026-12-01T10:07:00Z");
        let p = s.plan(Some(last), now).unwrap();
        // 24 slots from 04:15 to 10:00; one run serves 10:00 and makes up for 23.
        assert_eq!(p, Planned { slot: at("2026-12-01T10:00:00Z"), start: now, missed: 23 });
        assert_eq!(
            s.after_run(p.slot, at("2026-12-01T10:08:00Z")).unwrap().slot,
            at("2026-12-01T10:15:00Z")
        );
        let none = s.catch_up(false).plan(Some(last), now).unwrap();
        assert_eq!(
            none,
            Planned { slot: at("2026-12-01T10:15:00Z"), start: none.slot, missed: 24 }
        );
    }

    #[test]
    fn cron_catch_up_serves_the_latest_missed_slot() {
        let s = cron("30 2 * * *", "UTC");
        let p = s.plan(Some(at("2026-11-28T02:30:00Z")), at("2026-12-01T12:00:00Z")).unwrap();
        assert_eq!((p.slot, p.missed), (at("2026-12-01T02:30:00Z"), 2));
    }

    #[test]
    fn slots_that_pass_during_a_run_are_skipped_and_counted() {
        let s = every(10);
        let p = s.after_run(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:35:00Z")).unwrap();
        assert_eq!((p.slot, p.missed), (at("2026-12-01T10:40:00Z"), 3));
    }

    #[test]
    fn intervals_ignore_daylight_saving() {
        let s = Schedule::new(
            Cadence::Every(Duration::from_secs(3600)),
            TimeZone::get("America/Los_Angeles").unwrap(),
        );
        let last = at("2026-03-08T09:00:00Z"); // 01:00 PST
        assert_eq!(s.slot_after(last, last), Some(at("2026-03-08T10:00:00Z"))); // 03:00 PDT
    }

    #[test]
    fn upcoming_and_the_longest_gap() {
        let s = cron("0 9 * * mon-fri", "Europe/London");
        let now = at("2026-12-04T12:00:00Z"); // a Friday
        let next = s.upcoming(None, now, 2);
        assert_eq!(next, [at("2026-12-07T09:00:00Z"), at("2026-12-08T09:00:00Z")]);
        assert_eq!(s.longest_gap(now), Duration::from_secs(3 * 86_400), "over the weekend");
        assert_eq!(every(15).longest_gap(now), Duration::from_secs(900));
        let from_last = every(15).upcoming(Some(at("2026-12-04T11:50:00Z")), now, 3);
        assert_eq!(
            from_last,
            [at("2026-12-04T12:05:00Z"), at("2026-12-04T12:20:00Z"), at("2026-12-04T12:35:00Z")]
        );
    }

    #[test]
    fn a_huge_downtime_counts_up_to_the_cap() {
        let s = cron("* * * * *", "UTC");
        let p = s.plan(Some(at("2016-01-01T00:00:00Z")), at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(p.missed, MISSED_COUNT_CAP - 1);
        assert_eq!(p.slot, at("2026-01-01T00:00:00Z"));
    }
}
