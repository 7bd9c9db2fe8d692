//! What a run of the world measured, and the tables that show it: one column per setup
//! (layered, naive), side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use http::StatusCode;
use jiff::Timestamp;
use tokio::time::Instant;
use unattended_runner::AlertNote;
use unattended_store::{RunOutcome, RunRecord, Store, StoreError};
use unattended_testkit::log::{Recorded, RequestLog};

use crate::audit::Audit;
use crate::chaos::Target;
use crate::world::World;

/// The tasks the world runs.
pub(crate) const TASKS: [&str; 4] = ["uploads", "mail", "blog", "prices"];

/// A span of time a mock answered `429` with a wait that long: any second request in it is one
/// the client was told not to send.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throttle {
    pub(crate) target: Target,
    pub(crate) from: Instant,
    pub(crate) until: Instant,
}

/// The figures of one run of the world.
#[derive(Clone, Debug)]
pub(crate) struct Measures {
    pub(crate) label: &'static str,
    pub(crate) span: Duration,
    /// Runs per task, by outcome.
    pub(crate) runs: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// Each task's runs, for the timeline.
    pub(crate) history: BTreeMap<String, Vec<RunRecord>>,
    /// Faults answered by the mocks, by kind.
    pub(crate) faults: BTreeMap<&'static str, usize>,
    /// Requests that reached each mock.
    pub(crate) requests: BTreeMap<&'static str, usize>,
    /// Requests sent inside a throttle the client had been told about.
    pub(crate) violations: usize,
    /// Access tokens fetched.
    pub(crate) tokens: usize,
    /// API requests refused for an expired or unknown token.
    pub(crate) refused_tokens: usize,
    /// Upload status queries (resumptions after an interruption).
    pub(crate) resumed: usize,
    /// Alerts raised for a human.
    pub(crate) alerts: Vec<AlertNote>,
    /// Human causes injected.
    pub(crate) human_causes: usize,
    /// The share of the time each task's last run had gone well, averaged over the tasks.
    pub(crate) uptime: f64,
    pub(crate) audit: Audit,
}

impl Measures {
    /// Reads the store, the mocks and the alerts after a run that lasted `span`.
    pub(crate) async fn collect(
        label: &'static str,
        world: &World,
        store: &Store,
        alerts: Vec<AlertNote>,
        throttles: &[Throttle],
        human_causes: usize,
        span: (Timestamp, Timestamp),
    ) -> Result<Self, StoreError> {
        let mut runs = BTreeMap::new();
        let mut history = BTreeMap::new();
        let mut uptime = 0.0;
        for task in TASKS {
            let name = task.to_owned();
            let mut records = store.blocking(move |db| db.runs(&name, 1_000_000))?;
            records.sort_by_key(|r| (r.started_at, r.id));
            let mut by = BTreeMap::new();
            for r in &records {
                *by.entry(outcome(r)).or_insert(0) += 1;
            }
            uptime += healthy_share(&records, span);
            runs.insert(task.to_owned(), by);
            history.insert(task.to_owned(), records);
        }
        let m = &world.mocks;
        let logs: [(&'static str, &RequestLog); 6] = [
            ("youtube", m.youtube.log()),
            ("gmail", m.gmail.log()),
            ("dev", m.dev.log()),
            ("hashnode", m.hashnode.log()),
            ("shop", m.shop.log()),
            ("oauth", m.oauth.log()),
        ];
        let mut faults = BTreeMap::new();
        let mut requests = BTreeMap::new();
        for (name, log) in logs {
            let all = log.all();
            for r in &all {
                if let Some(f) = r.fault {
                    *faults.entry(f).or_insert(0) += 1;
                }
            }
            requests.insert(name, all.len());
        }
        let violations =
            throttles.iter().map(|t| violations(world.mocks.log_of(t.target), t)).sum();
        let refused_tokens = [m.youtube.log(), m.gmail.log()]
            .iter()
            .flat_map(|l| l.all())
            .filter(|r| r.status == Some(StatusCode::UNAUTHORIZED))
            .count();
        let resumed = m
            .youtube
            .log()
            .all()
            .iter()
            .filter(|r| {
                RequestLog::header(r, "content-range").is_some_and(|v| v.starts_with("bytes */"))
            })
            .count();
        let span_length = unattended_core::clock::duration_between(span.0, span.1);
        Ok(Self {
            label,
            span: span_length,
            runs,
            history,
            faults,
            requests,
            violations,
            tokens: m.oauth.token_calls().len(),
            refused_tokens,
            resumed,
            alerts: alerts.into_iter().filter(|a| a.raised).collect(),
            human_causes,
            uptime: uptime / TASKS.len() as f64,
            audit: Audit::of(world),
        })
    }

    fn total_requests(&self) -> usize {
        self.requests.values().sum()
    }

    fn weeks(&self) -> f64 {
        (self.span.as_secs_f64() / (7.0 * 86_400.0)).max(1.0 / 7.0)
    }
}

/// Requests inside the throttle after the first one it answered.
fn violations(log: &RequestLog, t: &Throttle) -> usize {
    let inside =
        |r: &&Recorded| t.from <= r.at && r.at < t.until && r.fault == Some("rate_limited");
    log.all().iter().filter(inside).count().saturating_sub(1)
}

fn outcome(r: &RunRecord) -> &'static str {
    r.end.as_ref().map_or("running", |e| e.outcome.as_str())
}

/// The share of `span` after which the task's last run had gone well (before its first run, it
/// counts as well).
fn healthy_share(records: &[RunRecord], (from, to): (Timestamp, Timestamp)) -> f64 {
    let total = unattended_core::clock::duration_between(from, to).as_secs_f64();
    if total <= 0.0 {
        return 1.0;
    }
    let mut bad = 0.0;
    let mut bad_since: Option<Timestamp> = None;
    for r in records {
        let Some(end) = &r.end else { continue };
        let good = matches!(
            end.outcome,
            RunOutcome::Succeeded | RunOutcome::Degraded | RunOutcome::Skipped
        );
        match (good, bad_since) {
            (false, None) => bad_since = Some(end.finished_at),
            (true, Some(since)) => {
                bad +=
                    unattended_core::clock::duration_between(since, end.finished_at).as_secs_f64();
                bad_since = None;
            }
            _ => {}
        }
    }
    if let Some(since) = bad_since {
        bad += unattended_core::clock::duration_between(since, to).as_secs_f64();
    }
    (1.0 - bad / total).clamp(0.0, 1.0)
}

/// The side-by-side table of the simulation's headline figures.
pub(crate) fn headline(columns: &[&Measures]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "uptime without manual intervention".into(),
            cells(columns, |m| format!("{:.2}%", m.uptime * 100.0)),
        ),
        (
            "manual fixes needed (alerts for a human)".into(),
            cells(columns, |m| format!("{} (human causes: {})", m.alerts.len(), m.human_causes)),
        ),
        (
            "lost tasks".into(),
            cells(columns, |m| {
                let fed = m.audit.fed().max(1);
                format!(
                    "{:.2}% ({} of {})",
                    100.0 * m.audit.lost() as f64 / fed as f64,
                    m.audit.lost(),
                    m.audit.fed()
                )
            }),
        ),
        (
            "rate-limit violations per week".into(),
            cells(columns, |m| format!("{:.1}", m.violations as f64 / m.weeks())),
        ),
        ("duplicated effects".into(), cells(columns, |m| m.audit.duplicated().to_string())),
        ("requests sent".into(), cells(columns, |m| m.total_requests().to_string())),
    ];
    rows.push(("access tokens fetched".into(), cells(columns, |m| m.tokens.to_string())));
    table(columns, &rows)
}

/// The demo's full report: runs, faults, savings, tokens, uploads, alerts, audit.
pub(crate) fn full(columns: &[&Measures]) -> String {
    let mut out = String::new();
    let mut rows = Vec::new();
    for task in TASKS {
        rows.push((
            format!("runs of {task}"),
            cells(columns, |m| {
                let by = &m.runs[task];
                by.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
            }),
        ));
    }
    let mut kinds: Vec<&'static str> =
        columns.iter().flat_map(|m| m.faults.keys().copied()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        rows.push((
            format!("fault answered: {kind}"),
            cells(columns, |m| m.faults.get(kind).copied().unwrap_or(0).to_string()),
        ));
    }
    rows.push(("requests sent".into(), cells(columns, |m| m.total_requests().to_string())));
    rows.push((
        "requests inside a known rate limit".into(),
        cells(columns, |m| m.violations.to_string()),
    ));
    rows.push((
        "access tokens fetched / requests refused for a stale token".into(),
        cells(columns, |m| format!("{} / {}", m.tokens, m.refused_tokens)),
    ));
    rows.push((
        "uploads resumed (status queries)".into(),
        cells(columns, |m| m.resumed.to_string()),
    ));
    rows.push(("alerts raised".into(), cells(columns, |m| m.alerts.len().to_string())));
    for (name, _) in columns[0].audit.rows() {
        rows.push((
            format!("audit: {name}"),
            cells(columns, |m| {
                let t =
                    m.audit.rows().into_iter().find(|(n, _)| *n == name).map(|(_, t)| t.clone());
                let t = t.unwrap_or_default();
                format!(
                    "{} of {} once, {} waiting, {} lost, {} twice",
                    t.once, t.fed, t.waiting, t.lost, t.duplicated
                )
            }),
        ));
    }
    out.push_str(&table(columns, &rows));
    for m in columns {
        for a in &m.alerts {
            let _ = writeln!(out, "alert ({}): {} — {}", m.label, a.title, a.detail);
            if let Some(help) = &a.help {
                let _ = writeln!(out, "    what to do: {help}");
            }
        }
    }
    out
}

fn cells(columns: &[&Measures], f: impl Fn(&Measures) -> String) -> Vec<String> {
    columns.iter().map(|m| f(m)).collect()
}

fn table(columns: &[&Measures], rows: &[(String, Vec<String>)]) -> String {
    let first = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            let head = columns[i].label.len();
            rows.iter().map(|(_, c)| c[i].chars().count()).max().unwrap_or(0).max(head)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:first$}", "");
    for (m, w) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {:<w$}", m.label);
    }
    out.push('\n');
    for (name, values) in rows {
        let _ = write!(out, "{name:first$}");
        for (v, w) in values.iter().zip(&widths) {
            let _ = write!(out, "  {v:<w$}");
        }
        out.push('\n');
    }
    out
}

/// The table and a timeline of every task's runs as one self-contained HTML page.
pub(crate) fn html(title: &str, columns: &[&Measures], span: (Timestamp, Timestamp)) -> String {
    let total = unattended_core::clock::duration_between(span.0, span.1).as_secs_f64().max(1.0);
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}pre{{background:#f6f6f6;padding:1em}}\
         .lane{{position:relative;height:18px;background:#eee;margin:2px 0 8px}}\
         .run{{position:absolute;top:0;height:18px;min-width:1px}}\
         .succeeded{{background:#2a9d4b}}.degraded{{background:#e9c46a}}.skipped{{background:#aab}}\
         .failed{{background:#d62828}}.abandoned{{background:#6a4c93}}.running{{background:#333}}\
         </style></head><body><h1>{t}</h1><pre>{table}</pre>",
        t = escape(title),
        table = escape(&headline(columns)),
    );
    for m in columns {
        let _ = write!(out, "<h2>{}</h2>", escape(m.label));
        for (task, runs) in &m.history {
            let _ = write!(out, "<div>{}</div><div class=\"lane\">", escape(task));
            for r in runs {
                let left =
                    unattended_core::clock::duration_between(span.0, r.started_at).as_secs_f64();
                let end = r.end.as_ref().map_or(span.1, |e| e.finished_at);
                let width =
                    unattended_core::clock::duration_between(r.started_at, end).as_secs_f64();
                let _ = write!(
                    out,
                    "<span class=\"run {}\" style=\"left:{:.3}%;width:{:.3}%\" title=\"{} {}\"></span>",
                    outcome(r),
                    100.0 * left / total,
                    100.0 * width / total,
                    r.started_at,
                    outcome(r),
                );
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
