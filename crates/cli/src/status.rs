//! `unattended status`: what every task is doing, read from the store (read-only).

use std::io::IsTerminal;
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use unattended_core::Clock;
use unattended_runner::{EngineKinds, RunnerConfig};
use unattended_store::{RunRecord, StateStore, Store, StoreConfig, StoreError, TaskState};

use crate::logging::{self, LogFormat, Sink};
use crate::{CliError, Code};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Prints JSON (the shape is stable: see the crate docs of `unattended-cli`).
    #[arg(long)]
    json: bool,
}

/// The report `status --json` prints.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// When it was read.
    pub(crate) at: Timestamp,
    /// The state file.
    pub(crate) state: String,
    /// Every configured task.
    pub(crate) tasks: Vec<TaskReport>,
    /// Services whose breaker is open (`until` in the future).
    pub(crate) open_breakers: Vec<Held>,
    /// Hosts paused by rate limits.
    pub(crate) paused_hosts: Vec<Held>,
    /// Incidents open now (each alerted once).
    pub(crate) open_incidents: Vec<IncidentReport>,
    /// Alert deliveries not made yet (a sink that is down).
    pub(crate) undelivered_alerts: Vec<UndeliveredReport>,
    /// The latest alerts, raised or recovered, newest first (at most [`RECENT_ALERTS`]).
    pub(crate) recent_alerts: Vec<AlertReport>,
}

/// How many alerts [`Report::recent_alerts`] keeps.
pub(crate) const RECENT_ALERTS: usize = 20;
/// How far back [`TaskReport::recent_runs`] goes.
pub(crate) const RECENT_RUNS: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The most runs [`TaskReport::recent_runs`] holds (a task every minute has 1440 a day).
const RECENT_RUNS_MAX: usize = 1500;

/// An alert in the report.
#[derive(Debug, Serialize)]
pub(crate) struct AlertReport {
    pub(crate) incident: String,
    /// `raised` or `recovered`.
    pub(crate) kind: String,
    pub(crate) task: Option<String>,
    pub(crate) at: Timestamp,
    pub(crate) title: String,
    pub(crate) help: Option<String>,
}

/// An open incident in the report.
#[derive(Debug, Serialize)]
pub(crate) struct IncidentReport {
    pub(crate) incident: String,
    pub(crate) task: Option<String>,
    pub(crate) since: Timestamp,
    pub(crate) title: String,
    pub(crate) help: Option<String>,
}

/// An undelivered alert in the report.
#[derive(Debug, Serialize)]
pub(crate) struct UndeliveredReport {
    pub(crate) incident: String,
    pub(crate) title: String,
    pub(crate) sink: String,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Timestamp,
    pub(crate) last_error: Option<String>,
}

/// One task in the report.
#[derive(Debug, Serialize)]
pub(crate) struct TaskReport {
    pub(crate) name: String,
    pub(crate) engine: String,
    pub(crate) enabled: bool,
    /// `idle`, `running`, `succeeded`, `degraded`, `failed`, `cooldown`, `deferred`,
    /// `disabled`, or `new` when the store has nothing yet.
    pub(crate) state: String,
    pub(crate) since: Option<Timestamp>,
    pub(crate) next_run: Option<Timestamp>,
    pub(crate) last_success: Option<Timestamp>,
    pub(crate) reason: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_disposition: Option<String>,
    pub(crate) failures: u32,
    pub(crate) last_run: Option<RunReport>,
    /// The runs started in the last 24 hours, newest first.
    pub(crate) recent_runs: Vec<RunReport>,
    /// How far a running task has come (only the running process knows: `null` in `status`).
    pub(crate) progress: Option<ProgressReport>,
    /// The runner that holds the task now (its claim is live), if any.
    pub(crate) runner: Option<RunnerReport>,
}

/// The runner holding a task.
#[derive(Debug, Serialize)]
pub(crate) struct RunnerReport {
    /// Its `[runner] name` (the host's name by default).
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// When its claim ends unless renewed.
    pub(crate) until: Timestamp,
}

/// A running task's last progress report.
#[derive(Debug, Serialize)]
pub(crate) struct ProgressReport {
    pub(crate) at: Timestamp,
    pub(crate) done: u64,
    pub(crate) total: Option<u64>,
    pub(crate) note: String,
}

/// A run in the report.
#[derive(Debug, Serialize)]
pub(crate) struct RunReport {
    pub(crate) started_at: Timestamp,
    pub(crate) finished_at: Option<Timestamp>,
    pub(crate) outcome: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) error: Option<String>,
    /// The runner that ran it.
    pub(crate) runner: Option<String>,
}

/// A held service.
#[derive(Debug, Serialize)]
pub(crate) struct Held {
    pub(crate) service: String,
    pub(crate) key: String,
    pub(crate) until: Timestamp,
}

fn run_report(r: &RunRecord) -> RunReport {
    RunReport {
        started_at: r.started_at,
        finished_at: r.end.as_ref().map(|e| e.finished_at),
        outcome: r.end.as_ref().map(|e| e.outcome.as_str().to_owned()),
        summary: r.end.as_ref().and_then(|e| e.summary.clone()),
        error: r.end.as_ref().and_then(|e| e.error.clone()),
        runner: r.runner.clone(),
    }
}

pub(crate) async fn run(
    config: &Path,
    format: LogFormat,
    kinds: &EngineKinds,
    args: Args,
) -> Result<Code, CliError> {
    logging::init(format, Sink::Stderr, "warn");
    let config = crate::load(config, kinds)?;
    let path = &config.state.path;
    let on_server = config.state.url.is_some() || config.state.url_env.is_some();
    if !on_server && !path.exists() {
        return Err(CliError::new(format!("no state yet at {}", path.display()), Code::Usage)
            .help("the runner has not run with this config: start it with `unattended run`"));
    }
    let clock = Clock::system();
    let store = crate::open_store(&config, StoreConfig::new().read_only(true), clock).await?;
    let report = report(&config, &store, clock.wall()).await?;
    if args.json {
        println!("{}", json(&report)?);
    } else {
        print!("{}", table(&report, std::io::stdout().is_terminal()));
    }
    let needs_human = report.tasks.iter().any(|t| t.state == TaskState::Disabled.as_str());
    Ok(if needs_human { Code::NeedsHuman } else { Code::Ok })
}

fn json(report: &Report) -> Result<String, CliError> {
    serde_json::to_string_pretty(report)
        .map_err(|e| CliError::new(format!("cannot write JSON: {e}"), Code::Usage))
}

/// What `unattended status --json` prints for `config` from `store` at `now` (the shape is in
/// the crate's docs).
///
/// # Errors
///
/// The store cannot be read.
pub async fn status_json(
    config: &RunnerConfig,
    store: &Store,
    now: Timestamp,
) -> Result<String, CliError> {
    json(&report(config, store, now).await?)
}

/// What the store says of every task of `config` at `now`: `status`, `status --json` and the
/// status page show this.
pub(crate) async fn report(
    config: &RunnerConfig,
    store: &Store,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let states = store.task_states().await?;
    let leases = store.leases().await?;
    let day_ago = now.checked_sub(RECENT_RUNS).unwrap_or(Timestamp::MIN);
    let mut tasks = Vec::new();
    for spec in &config.tasks {
        let status = states.iter().find(|(n, _)| *n == spec.name).map(|(_, s)| s);
        let runs = store.runs(&spec.name, RECENT_RUNS_MAX).await?;
        let last_run = runs.first().map(run_report);
        let recent_runs =
            runs.iter().take_while(|r| r.started_at >= day_ago).map(run_report).collect();
        tasks.push(TaskReport {
            name: spec.name.clone(),
            engine: spec.engine_name.clone(),
            enabled: spec.enabled,
            state: status.map_or_else(|| "new".to_owned(), |s| s.state.as_str().to_owned()),
            since: status.map(|s| s.since),
            next_run: status.and_then(|s| s.next_run),
            last_success: status.and_then(|s| s.last_success),
            reason: status.and_then(|s| s.reason.clone()),
            last_error: status.and_then(|s| s.last_error.clone()),
            last_disposition: status.and_then(|s| s.last_disposition.clone()),
            failures: status.map_or(0, |s| s.failures),
            last_run,
            recent_runs,
            progress: None,
            runner: leases
                .iter()
                .find(|l| l.task == spec.name && !l.released && l.expires_at > now)
                .map(|l| RunnerReport {
                    name: l.holder.name.clone(),
                    host: l.holder.host.clone(),
                    pid: l.holder.pid,
                    until: l.expires_at,
                }),
        });
    }
    let (mut open_breakers, mut paused_hosts) = (Vec::new(), Vec::new());
    for service in config.services.keys() {
        for (kind, out) in [("breaker", &mut open_breakers), ("pause", &mut paused_hosts)] {
            for held in store.held(&format!("{kind}:{service}")).await? {
                if held.until > now {
                    out.push(Held { service: service.clone(), key: held.key, until: held.until });
                }
            }
        }
    }
    let open_incidents = store
        .open_incidents()
        .await?
        .into_iter()
        .map(|i| IncidentReport {
            incident: i.key,
            task: i.alert.task,
            since: i.opened_at,
            title: i.alert.title,
            help: i.alert.help,
        })
        .collect();
    let undelivered_alerts = store
        .pending_deliveries()
        .await?
        .into_iter()
        .map(|p| UndeliveredReport {
            incident: p.alert.incident,
            title: p.alert.title,
            sink: p.delivery.sink,
            attempts: p.delivery.attempts,
            next_attempt_at: p.delivery.next_attempt_at,
            last_error: p.delivery.last_error,
        })
        .collect();
    let recent_alerts = store
        .alerts(RECENT_ALERTS)
        .await?
        .into_iter()
        .map(|a| AlertReport {
            incident: a.incident,
            kind: a.kind.as_str().to_owned(),
            task: a.task,
            at: a.created_at,
            title: a.title,
            help: a.help,
        })
        .collect();
    Ok(Report {
        at: now,
        state: config.state.describe(),
        tasks,
        open_breakers,
        paused_hosts,
        open_incidents,
        undelivered_alerts,
        recent_alerts,
    })
}

/// "5m ago", "in 2h 3m".
fn relative(t: Timestamp, now: Timestamp) -> String {
    let d = t.duration_since(now);
    let secs = d.as_secs().unsigned_abs();
    let text = match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    };
    if d.is_negative() { format!("{text} ago") } else { format!("in {text}") }
}

pub(crate) fn table(r: &Report, terminal: bool) -> String {
    let tz = TimeZone::system();
    let when = |t: Option<Timestamp>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| format!("{} ({})", crate::show_time(t, &tz), relative(t, r.at)),
        )
    };
    let mut rows = vec![[
        "TASK".to_owned(),
        "STATE".into(),
        "LAST SUCCESS".into(),
        "NEXT RUN".into(),
        "LAST ERROR".into(),
    ]];
    for t in &r.tasks {
        let state = match (&t.runner, t.enabled) {
            (_, false) => "off (config)".to_owned(),
            (Some(runner), true) => format!("{} @ {}", t.state, runner.name),
            (None, true) => t.state.clone(),
        };
        let error = match (&t.reason, &t.last_error) {
            (Some(reason), _) if t.state == "disabled" || t.state == "deferred" => reason.clone(),
            (_, Some(e)) => match &t.last_disposition {
                Some(d) => format!("{e} [{d}]"),
                None => e.clone(),
            },
            _ => "-".to_owned(),
        };
        let error = if terminal && error.chars().count() > 70 {
            format!("{}…", error.chars().take(69).collect::<String>())
        } else {
            error
        };
        rows.push([
            format!("{} ({})", t.name, t.engine),
            state,
            when(t.last_success),
            when(t.next_run),
            error,
        ]);
    }
    let widths: Vec<usize> =
        (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| if i == 4 { cell.clone() } else { format!("{cell:<w$}") })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if !r.open_incidents.is_empty() {
        out.push_str("\nopen incidents (alerted once; each closes by itself when fixed):\n");
        for i in &r.open_incidents {
            out.push_str(&format!("  {} since {}: {}\n", i.incident, when(Some(i.since)), i.title));
            if let Some(help) = &i.help {
                out.push_str(&format!("    help: {help}\n"));
            }
        }
    }
    if !r.undelivered_alerts.is_empty() {
        out.push_str("\nundelivered alerts (kept in the store, tried again):\n");
        for u in &r.undelivered_alerts {
            let error = u.last_error.as_deref().unwrap_or("not tried yet");
            out.push_str(&format!(
                "  {} to {}: {} attempt(s), next {}; {error}\n",
                u.incident,
                u.sink,
                u.attempts,
                when(Some(u.next_attempt_at))
            ));
        }
    }
    for (title, held) in [("open breakers", &r.open_breakers), ("paused hosts", &r.paused_hosts)] {
        if !held.is_empty() {
            out.push_str(&format!("\n{title}:\n"));
            for h in held {
                out.push_str(&format!(
                    "  {} ({}) until {}\n",
                    h.key,
                    h.service,
                    when(Some(h.until))
                ));
            }
        }
    }
    out
}
