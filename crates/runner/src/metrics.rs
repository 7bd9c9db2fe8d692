//! The runner's metrics, in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use unattended_store::{RunOutcome, TaskState};

use crate::runner::{HeldView, TaskView};

/// Counters the runner adds to as runs end.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    runs: BTreeMap<(String, &'static str), u64>,
    seconds: BTreeMap<String, (f64, u64)>,
    skipped: BTreeMap<String, u64>,
}

const STATES: [TaskState; 8] = [
    TaskState::Idle,
    TaskState::Running,
    TaskState::Succeeded,
    TaskState::Degraded,
    TaskState::Failed,
    TaskState::Cooldown,
    TaskState::Deferred,
    TaskState::Disabled,
];

/// A label value, escaped as the format says.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub(crate) fn run_ended(
        &mut self,
        task: &str,
        outcome: RunOutcome,
        took: Duration,
        skipped: u64,
    ) {
        *self.runs.entry((task.to_owned(), outcome.as_str())).or_default() += 1;
        let s = self.seconds.entry(task.to_owned()).or_default();
        s.0 += took.as_secs_f64();
        s.1 += 1;
        if skipped > 0 {
            *self.skipped.entry(task.to_owned()).or_default() += skipped;
        }
    }

    pub(crate) fn render(
        &self,
        tasks: &[TaskView],
        held: &[HeldView],
        alerts: usize,
        now: Timestamp,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP unattended_runs_total Runs ended, by task and outcome.\n# TYPE unattended_runs_total counter"
        );
        for ((task, outcome), n) in &self.runs {
            let _ = writeln!(
                out,
                "unattended_runs_total{{task=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(task)
            );
        }
        let _ = writeln!(
            out,
            "# HELP unattended_run_duration_seconds Time runs took, by task.\n# TYPE unattended_run_duration_seconds summary"
        );
        for (task, (sum, count)) in &self.seconds {
            let t = label(task);
            let _ = writeln!(out, "unattended_run_duration_seconds_sum{{task=\"{t}\"}} {sum}");
            let _ = writeln!(out, "unattended_run_duration_seconds_count{{task=\"{t}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP unattended_slots_skipped_total Schedule slots skipped because the previous run was still going.\n# TYPE unattended_slots_skipped_total counter"
        );
        for (task, n) in &self.skipped {
            let _ = writeln!(out, "unattended_slots_skipped_total{{task=\"{}\"}} {n}", label(task));
        }
        let _ = writeln!(
            out,
            "# HELP unattended_task_state 1 for the state each task is in.\n# TYPE unattended_task_state gauge"
        );
        for t in tasks {
            for state in STATES {
                let v = u8::from(t.status.state == state);
                let _ = writeln!(
                    out,
                    "unattended_task_state{{task=\"{}\",state=\"{state}\"}} {v}",
                    label(&t.name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP unattended_task_last_success_seconds Seconds since each task's last success (absent before its first).\n# TYPE unattended_task_last_success_seconds gauge"
        );
        for t in tasks {
            if let Some(ok) = t.status.last_success {
                let age = unattended_core::clock::duration_between(ok, now).as_secs_f64();
                let _ = writeln!(
                    out,
                    "unattended_task_last_success_seconds{{task=\"{}\"}} {age}",
                    label(&t.name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP unattended_task_failures Failed runs in a row, by task.\n# TYPE unattended_task_failures gauge"
        );
        for t in tasks {
            let _ = writeln!(
                out,
                "unattended_task_failures{{task=\"{}\"}} {}",
                label(&t.name),
                t.status.failures
            );
        }
        let _ = writeln!(
            out,
            "# HELP unattended_held_services Services held back now: open breakers and paused hosts.\n# TYPE unattended_held_services gauge"
        );
        for kind in ["breaker", "pause"] {
            let n = held.iter().filter(|h| h.kind == kind).count();
            let _ = writeln!(out, "unattended_held_services{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP unattended_alerts_total Alerts raised and recoveries reported by this process.\n# TYPE unattended_alerts_total counter\nunattended_alerts_total {alerts}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
