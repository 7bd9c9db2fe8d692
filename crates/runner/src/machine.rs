//! The task state machine, sans I/O: what a run's ending means for the task's state, its next
//! run and its alerts.
//!
//! ```text
//! Idle → Running → Succeeded | Degraded | Failed | Cooldown(retry at) | Disabled(reason)
//!          ↑           └──────────────── next run comes ─────────────────┘      │
//!          └──────────── `unattended reset` / `unattended auth` ─────────────────┘
//! Deferred(until): a run came due while its window was closed.
//! ```

use std::time::Duration;

use jiff::Timestamp;
use unattended_core::Disposition;
use unattended_core::clock::add_saturating;
use unattended_store::{RunEnd, RunOutcome, TaskState, TaskStatus};

use crate::context::Skipped;
use crate::engine::{RunSummary, TaskError};
use crate::schedule::Schedule;

/// Failed runs in a row that raise a "failing" alert.
pub const FAILING_ALERT_AFTER: u32 = 3;

/// How a run ended, as the runner saw it.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The engine returned its summary.
    Done(RunSummary, Vec<Skipped>),
    /// The engine returned an error.
    Failed(TaskError),
    /// The engine panicked.
    Panicked(String),
    /// It ran longer than `max_runtime`.
    TimedOut(Duration),
    /// The runner stopped it at shutdown.
    Interrupted,
}

/// An alert to raise or an incident to close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AlertAction {
    /// Open `incident` (once) with a title, a detail and what to do.
    Raise { incident: String, title: String, detail: String, help: Option<String> },
    /// Close `incident` if it is open.
    Recover { incident: String, detail: String },
}

/// What follows a run.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The task's new status.
    pub(crate) status: TaskStatus,
    /// The run's record.
    pub(crate) end: RunEnd,
    /// The slot of the next run, if it is scheduled (none: disabled).
    pub(crate) next_slot: Option<Timestamp>,
    /// The schedule slot the next run serves, when it is a regular one (not a retry).
    pub(crate) planned: Option<Timestamp>,
    /// Slots that passed while the run went on (skipped).
    pub(crate) overlapped: u64,
    /// Alerts to raise or close.
    pub(crate) alerts: Vec<AlertAction>,
}

/// Incident keys of a task.
pub(crate) fn incident(task: &str, what: &str) -> String {
    format!("task:{task}:{what}")
}

/// The shortest wait before a failed task runs again, after `failures` failures in a row: 10 s
/// doubling to an hour, so a task that fails at once cannot spin.
pub(crate) fn failure_floor(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    Duration::from_secs(10u64 << doublings).min(Duration::from_secs(3600))
}

/// The decision after the run of `task` that served `slot` ended at `now`; `refused` names the
/// task's OAuth credentials whose refresh token was refused for good.
pub(crate) fn after_run(
    task: &str,
    prev: &TaskStatus,
    schedule: &Schedule,
    slot: Timestamp,
    ending: Ending,
    now: Timestamp,
    refused: &[String],
) -> Decision {
    let regular = schedule.after_run(slot, now);
    let overlapped = regular.map_or(0, |p| p.missed);
    let regular_slot = regular.map(|p| p.slot);
    let mut status = prev.clone();
    status.since = now;
    status.run = None;
    status.last_slot = Some(slot);
    let mut alerts = Vec::new();
    let mut end = RunEnd::new(RunOutcome::Succeeded, now);

    let mut fail = |status: &mut TaskStatus, message: String, disposition: Option<&Disposition>| {
        status.failures = status.failures.saturating_add(1);
        status.last_error = Some(message.clone());
        status.last_disposition = disposition.map(ToString::to_string);
        end.outcome = RunOutcome::Failed;
        end.error = Some(message);
        end.disposition = status.last_disposition.clone();
    };

    let next_slot = match ending {
        Ending::Done(summary, skipped) => {
            let degraded = !skipped.is_empty();
            status.state = if degraded { TaskState::Degraded } else { TaskState::Succeeded };
            status.reason = degraded.then(|| skipped_reason(&skipped));
            status.failures = 0;
            status.last_error = None;
            status.last_disposition = None;
            status.last_success = Some(now);
            end.outcome = if degraded { RunOutcome::Degraded } else { RunOutcome::Succeeded };
            end.summary = Some(summary.to_string());
            end.attempts = 1;
            if prev.failures >= FAILING_ALERT_AFTER {
                alerts.push(AlertAction::Recover {
                    incident: incident(task, "failing"),
                    detail: format!("{task} succeeded again: {summary}"),
                });
            }
            regular_slot
        }
        Ending::Failed(err) => {
            let disposition = err.disposition().clone();
            let message = err.chain();
            fail(&mut status, message.clone(), Some(&disposition));
            match disposition {
                Disposition::RetryAt(at) => {
                    status.state = TaskState::Cooldown;
                    status.reason = Some(format!("waiting until {at}: {message}"));
                    let floor = add_saturating(now, failure_floor(status.failures));
                    let soonest = regular_slot.map_or(floor, |r| r.min(floor));
                    Some(at.max(soonest))
                }
                Disposition::Skip(service) => {
                    // A service being down is not the task's failure: the run is degraded.
                    status.failures = prev.failures;
                    status.state = TaskState::Degraded;
                    status.reason = Some(format!("{service} unavailable: {message}"));
                    end.outcome = RunOutcome::Degraded;
                    regular_slot
                }
                Disposition::Reauthorize => {
                    status.state = TaskState::Disabled;
                    // Which credential is known when its token endpoint refused it: the human
                    // is told the exact command, in `status` and in the alert.
                    let renew = refused
                        .iter()
                        .map(|c| format!("`unattended auth {c}`"))
                        .collect::<Vec<_>>()
                        .join(" and ");
                    let (reason, help) = if renew.is_empty() {
                        let help = err.help().map_or_else(
                            || format!("renew the credentials (`unattended auth CREDENTIAL` makes the task runnable again), or fix them and `unattended reset {task}`"),
                            str::to_owned,
                        );
                        (format!("needs re-authorization: {message}"), help)
                    } else {
                        (
                            format!("needs re-authorization: run {renew}; {message}"),
                            format!(
                                "run {renew}: a consent in a browser saves a new refresh token and makes {task} runnable again, while the runner runs"
                            ),
                        )
                    };
                    status.reason = Some(reason);
                    alerts.push(AlertAction::Raise {
                        incident: incident(task, "credentials"),
                        title: format!("{task} needs re-authorization"),
                        detail: message,
                        help: Some(help),
                    });
                    None
                }
                _ => {
                    status.state = TaskState::Disabled;
                    status.reason = Some(format!("stopped: {message}"));
                    alerts.push(AlertAction::Raise {
                        incident: incident(task, "stopped"),
                        title: format!("{task} stopped: a human must look"),
                        detail: message,
                        help: Some(err.help().map_or_else(
                            || format!("fix the cause, then `unattended reset {task}`"),
                            str::to_owned,
                        )),
                    });
                    None
                }
            }
        }
        Ending::Panicked(message) => {
            fail(&mut status, format!("the engine panicked: {message}"), None);
            status.state = TaskState::Failed;
            status.reason = status.last_error.clone();
            Some(retry_slot(regular_slot, now, status.failures))
        }
        Ending::TimedOut(max) => {
            let max = jiff::SignedDuration::try_from(max).unwrap_or(jiff::SignedDuration::MAX);
            fail(
                &mut status,
                format!("the run took longer than max_runtime ({max:#}) and was stopped"),
                None,
            );
            status.state = TaskState::Failed;
            status.reason = status.last_error.clone();
            Some(retry_slot(regular_slot, now, status.failures))
        }
        Ending::Interrupted => {
            // Not the task's failure: it resumes from its checkpoint at the next start.
            end.outcome = RunOutcome::Abandoned;
            end.error = Some("stopped by the runner's shutdown".to_owned());
            status.state = TaskState::Idle;
            status.reason = Some("interrupted by a shutdown; resumes at the next start".to_owned());
            status.last_slot = prev.last_slot;
            Some(now)
        }
    };
    if matches!(end.outcome, RunOutcome::Failed)
        && matches!(status.state, TaskState::Failed | TaskState::Cooldown)
        && status.failures == FAILING_ALERT_AFTER
    {
        alerts.push(AlertAction::Raise {
            incident: incident(task, "failing"),
            title: format!("{task} failed {FAILING_ALERT_AFTER} runs in a row"),
            detail: status.last_error.clone().unwrap_or_default(),
            help: None,
        });
    }
    status.next_run = next_slot;
    let planned = next_slot.filter(|n| Some(*n) == regular_slot);
    Decision { status, end, next_slot, planned, overlapped, alerts }
}

fn retry_slot(regular: Option<Timestamp>, now: Timestamp, failures: u32) -> Timestamp {
    let floor = add_saturating(now, failure_floor(failures));
    regular.map_or(floor, |r| r.max(floor))
}

fn skipped_reason(skipped: &[Skipped]) -> String {
    let mut services: Vec<&str> = skipped.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    format!("skipped steps: {} unavailable", services.join(", "))
}

/// Whether a task is late: no success for longer than `stale_after`, counted from its last
/// success or from when the runner started watching it, whichever is later (a runner that
/// was down gives its tasks their full time after it starts again).
pub(crate) fn is_late(
    status: &TaskStatus,
    watched_since: Timestamp,
    stale_after: Duration,
    now: Timestamp,
) -> bool {
    if matches!(status.state, TaskState::Disabled) {
        return false;
    }
    let since = status.last_success.map_or(watched_since, |s| s.max(watched_since));
    add_saturating(since, stale_after) < now
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::schedule::Cadence;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn every_15m() -> Schedule {
        Schedule::new(Cadence::Every(Duration::from_secs(900)), TimeZone::UTC)
    }

    fn idle() -> TaskStatus {
        TaskStatus::new(TaskState::Idle, at("2026-12-01T10:00:00Z"))
    }

    #[test]
    fn a_success_schedules_the_next_slot_and_clears_failures() {
        let mut prev = idle();
        prev.failures = 3;
        let d = after_run(
            "t",
            &prev,
            &every_15m(),
            at("2026-12-01T10:00:00Z"),
            Ending::Done(RunSummary::new().items(2), vec![]),
            at("2026-12-01T10:01:00Z"),
            &[],
        );
        assert_eq!(d.status.state, TaskState::Succeeded);
        assert_eq!(d.next_slot, Some(at("2026-12-01T10:15:00Z")));
        assert_eq!(
            (d.status.failures, d.status.last_success),
            (0, Some(at("2026-12-01T10:01:00Z")))
        );
        assert_eq!(
            d.alerts,
            [AlertAction::Recover {
                incident: "task:t:failing".into(),
                detail: "t succeeded again: 2 item(s)".into()
            }]
        );
    }

    #[test]
    fn retry_at_is_honoured_never_before_and_not_sooner_than_the_floor() {
        let s = every_15m();
        let later = at("2026-12-01T10:40:00Z");
        let d = after_run(
            "t",
            &idle(),
            &s,
            at("2026-12-01T10:00:00Z"),
            Ending::Failed(TaskError::retry_at(later, "429")),
            at("2026-12-01T10:01:00Z"),
            &[],
        );
        assert_eq!(
            (d.status.state, d.next_slot),
            (TaskState::Cooldown, Some(later)),
            "after the regular slot: at t"
        );
        let soon = at("2026-12-01T10:01:01Z");
        let d = after_run(
            "t",
            &idle(),
            &s,
            at("2026-12-01T10:00:00Z"),
            Ending::Failed(TaskError::retry_at(soon, "503")),
            at("2026-12-01T10:01:00Z"),
            &[],
        );
        assert_eq!(
            d.next_slot,
            Some(at("2026-12-01T10:01:10Z")),
            "the 10 s floor of a first failure"
        );
    }

    #[test]
    fn reauthorize_and_stop_disable_with_one_alert_each() {
        let d = after_run(
            "up",
            &idle(),
            &every_15m(),
            at("2026-12-01T10:00:00Z"),
            Ending::Failed(TaskError::reauthorize("invalid_grant")),
            at("2026-12-01T10:00:05Z"),
            &[],
        );
        assert_eq!((d.status.state, d.next_slot), (TaskState::Disabled, None));
        assert!(
            matches!(&d.alerts[..], [AlertAction::Raise { incident, .. }] if incident == "task:up:credentials")
        );
        let d = after_run(
            "up",
            &idle(),
            &every_15m(),
            at("2026-12-01T10:00:00Z"),
            Ending::Failed(TaskError::stop("disk full")),
            at("2026-12-01T10:00:05Z"),
            &[],
        );
        assert_eq!(d.status.state, TaskState::Disabled);
        assert!(
            matches!(&d.alerts[..], [AlertAction::Raise { incident, .. }] if incident == "task:up:stopped")
        );
    }

    #[test]
    fn a_refused_credential_is_named_with_the_command_that_renews_it() {
        let end = |refused: &[String]| {
            let err = TaskError::reauthorize("invalid_grant").with_help("the engine's advice");
            after_run(
                "up",
                &idle(),
                &every_15m(),
                at("2026-12-01T10:00:00Z"),
                Ending::Failed(err),
                at("2026-12-01T10:00:05Z"),
                refused,
            )
        };
        let d = end(&["google".to_owned()]);
        assert_eq!(
            d.status.reason.as_deref(),
            Some("needs re-authorization: run `unattended auth google`; invalid_grant")
        );
        let [AlertAction::Raise { help: Some(help), .. }] = &d.alerts[..] else { panic!() };
        assert!(help.starts_with("run `unattended auth google`: "), "{help}");
        let d = end(&["google".to_owned(), "work".to_owned()]);
        assert!(
            d.status
                .reason
                .unwrap()
                .contains("run `unattended auth google` and `unattended auth work`;")
        );
        // Not known which: the engine's advice.
        let d = end(&[]);
        assert_eq!(d.status.reason.as_deref(), Some("needs re-authorization: invalid_grant"));
        let [AlertAction::Raise { help: Some(help), .. }] = &d.alerts[..] else { panic!() };
        assert_eq!(help, "the engine's advice");
    }

    #[test]
    fn a_skipped_service_degrades_without_counting_a_failure() {
        let key =
            unattended_core::ServiceKey::from_uri(&"https://dev.to/".parse().unwrap()).unwrap();
        let d = after_run(
            "b",
            &idle(),
            &every_15m(),
            at("2026-12-01T10:00:00Z"),
            Ending::Failed(TaskError::skip(key, "breaker open")),
            at("2026-12-01T10:00:05Z"),
            &[],
        );
        assert_eq!(
            (d.status.state, d.status.failures, d.end.outcome),
            (TaskState::Degraded, 0, RunOutcome::Degraded)
        );
        assert_eq!(d.next_slot, Some(at("2026-12-01T10:15:00Z")));
    }

    #[test]
    fn the_third_failure_in_a_row_alerts_once() {
        let s = every_15m();
        let mut status = idle();
        let mut raised = 0;
        for n in 0..5 {
            let d = after_run(
                "p",
                &status,
                &s,
                at("2026-12-01T10:00:00Z"),
                Ending::Panicked(format!("boom {n}")),
                at("2026-12-01T10:00:01Z"),
                &[],
            );
            raised += d.alerts.len();
            status = d.status;
        }
        assert_eq!((raised, status.failures, status.state), (1, 5, TaskState::Failed));
    }

    #[test]
    fn floors_grow_and_cap() {
        assert_eq!(failure_floor(1), Duration::from_secs(10));
        assert_eq!(failure_floor(4), Duration::from_secs(80));
        assert_eq!(failure_floor(400), Duration::from_secs(3600));
    }

    #[test]
    fn late_is_measured_from_the_last_success_or_the_watch() {
        let s = idle();
        let since = at("2026-12-01T10:00:00Z");
        let stale = Duration::from_secs(1800);
        assert!(!is_late(&s, since, stale, at("2026-12-01T10:30:00Z")));
        assert!(is_late(&s, since, stale, at("2026-12-01T10:30:01Z")));
        let mut ok = s;
        ok.last_success = Some(at("2026-12-01T10:20:00Z"));
        assert!(!is_late(&ok, since, stale, at("2026-12-01T10:45:00Z")));
        ok.state = TaskState::Disabled;
        assert!(
            !is_late(&ok, since, stale, at("2026-12-02T10:45:00Z")),
            "disabled tasks have their own alert"
        );
    }
}
