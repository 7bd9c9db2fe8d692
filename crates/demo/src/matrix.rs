//! The fault matrix: every fault of the testkit's catalogue against every engine, one cell at a
//! time, through the real runner and the engine's own task, in-process under a paused clock.
//!
//! A cell strikes one service with one fault, then lets the runner go on for a while. It reads
//! what the engine's run made of the fault (the run's outcome and the runner's disposition),
//! whether a human was alerted, and audits what reached the services: by the end every item fed
//! (videos, posts, mails, price changes) must be done exactly once, none lost, none twice.
//!
//! The README's table is [`Matrix::markdown`]; a test runs the whole matrix and compares
//! (`UNATTENDED_BLESS=1` writes what it found instead). To look at one cell: `UNATTENDED_CELL=
//! "503 for|1" cargo test -p unattended-demo --lib one_cell -- --ignored --nocapture` prints its
//! event log, and `UNATTENDED_CELL_LOG=1` adds every request the struck mock received.

use std::collections::BTreeSet;
use std::time::Duration;

use http::Method;
use unattended_core::Clock;
use unattended_runner::EngineKinds;
use unattended_store::{RunOutcome, RunRecord};
use unattended_testkit::fault::{Fault, RetryAfter, Route};
use unattended_testkit::log::Recorded;

use crate::audit::Tally;
use crate::chaos::{Action, Event, Span, Target};
use crate::play::{self, PlayError, Setup};
use crate::world::Cadences;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// When every cell starts: 22:00 in California, so YouTube's quota (reset at midnight Pacific)
/// comes back within the cell's hours.
const START: &str = "2026-03-02T06:00:00Z";

/// When new work arrives, and when Google's and the blogs' credentials are struck: after the
/// first runs, so the runner holds tokens that can go bad.
const LATER: Duration = Duration::from_secs(30);

/// How often every task runs, as a user's `every = "5m"` would have it: the `late` alert comes
/// after twice that without a success (the default `stale_after`).
const PERIOD: Duration = Duration::from_secs(300);

/// How long a cell runs.
const LENGTH: Duration = Duration::from_secs(3 * 3600);

/// The largest body the clients read (`[services.*.limits] max_response_bytes`' default).
const MAX_BODY: usize = 16 << 20;

/// The engines, as columns: the mock their faults go to, the task talking to it, a title.
pub(crate) const COLUMNS: [(Target, &str, &str); 5] = [
    (Target::YouTube, "uploads", "YouTube upload"),
    (Target::Gmail, "mail", "Gmail rules"),
    (Target::Dev, "blog", "DEV publish"),
    (Target::Hashnode, "blog", "Hashnode publish"),
    (Target::Shop, "prices", "scrape"),
];

/// How a row strikes its service.
#[derive(Clone, Debug)]
pub(crate) enum Strike {
    /// The fault answers one request: the engine's first write (for the scraper, its first
    /// page; for YouTube, the second chunk of the first upload, or the start of the first upload
    /// for the faults that answer it).
    Once(Fault),
    /// The fault answers every request to the service for this long.
    For(Fault, Duration),
    /// Google stops accepting the access tokens it issued, long before they expire.
    TokensRefused,
    /// The same, while Google's token endpoint answers with this fault for this long: the
    /// token cannot be renewed until it recovers.
    TokenEndpoint(Fault, Duration),
    /// The credential is revoked (Google's refresh token, a blog's API key); a human renews it
    /// an hour later and resets the task.
    Revoked,
}

/// One row of the matrix.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// Its name in the table (Markdown).
    pub(crate) name: &'static str,
    pub(crate) strike: Strike,
}

fn once(name: &'static str, fault: Fault) -> Row {
    Row { name, strike: Strike::Once(fault) }
}

/// Every row: each fault of the catalogue, some of them both once and as an outage.
pub(crate) fn rows() -> Vec<Row> {
    let s = RetryAfter::Seconds;
    vec![
        once("`429` with `Retry-After: 30`", Fault::RateLimited(Some(s(30)))),
        Row {
            name: "`429` with `Retry-After` as a date, for 5 min",
            strike: Strike::For(Fault::RateLimited(Some(RetryAfter::Date(60))), 5 * MINUTE),
        },
        once("`429` without `Retry-After`", Fault::RateLimited(None)),
        once("`429` with `RateLimit` headers (reset in 60 s)", Fault::QuotaHeaders { reset: 60 }),
        once("`503`", Fault::Unavailable),
        once("`503` with `Retry-After: 120`", Fault::UnavailableFor(s(120))),
        Row { name: "`503` for 30 min", strike: Strike::For(Fault::Unavailable, 30 * MINUTE) },
        once("connection reset", Fault::Transport),
        Row {
            name: "connection reset for 30 min",
            strike: Strike::For(Fault::Transport, 30 * MINUTE),
        },
        once("no answer", Fault::Hang),
        once("body trickling, 10 s a piece", Fault::SlowBody { every: Duration::from_secs(10) }),
        once("write applied, answer lost", Fault::CommitThenDrop),
        once("write applied, no answer", Fault::CommitThenHang),
        once("write applied, then `500`", Fault::CommitThenStatus(500)),
        once("`200` with malformed JSON", Fault::MalformedJson),
        once("`200` with a body over 16 MiB", Fault::Oversized(MAX_BODY + 1)),
        once("`308` with a short `Range`", Fault::ShortRange),
        once("`308` without `Range`", Fault::NoRange),
        once("connection reset mid-chunk", Fault::ResetMidChunk),
        once("upload session expired (`404`)", Fault::SessionExpired),
        once("`403 quotaExceeded`", Fault::QuotaExceeded),
        once("`400 uploadLimitExceeded`", Fault::UploadLimitExceeded),
        once("GraphQL `INTERNAL_SERVER_ERROR`", Fault::GraphQlError("INTERNAL_SERVER_ERROR")),
        once("GraphQL `TOO_MANY_REQUESTS`", Fault::GraphQlError("TOO_MANY_REQUESTS")),
        Row { name: "access token refused before expiry", strike: Strike::TokensRefused },
        Row {
            name: "the same, token endpoint `503` for 30 min",
            strike: Strike::TokenEndpoint(Fault::Unavailable, 30 * MINUTE),
        },
        Row {
            name: "the same, token endpoint not answering for 30 min",
            strike: Strike::TokenEndpoint(Fault::Hang, 30 * MINUTE),
        },
        Row { name: "credential revoked, renewed 1 h later", strike: Strike::Revoked },
    ]
}

/// Whether `strike` can happen to `target` at all (a `Range` is YouTube's, a GraphQL error
/// Hashnode's, a token Google's).
pub(crate) fn applies(strike: &Strike, target: Target) -> bool {
    match strike {
        Strike::Once(fault) | Strike::For(fault, _) => match fault {
            Fault::ShortRange
            | Fault::NoRange
            | Fault::QuotaExceeded
            | Fault::SessionExpired
            | Fault::ResetMidChunk
            | Fault::UploadLimitExceeded => target == Target::YouTube,
            Fault::GraphQlError(_) => target == Target::Hashnode,
            _ => true,
        },
        Strike::TokensRefused | Strike::TokenEndpoint(..) => {
            matches!(target, Target::YouTube | Target::Gmail)
        }
        Strike::Revoked => target != Target::Shop,
    }
}

/// The request a `Once` strike answers: a route and which of its requests.
fn first_write(target: Target, fault: &Fault) -> (Route, u64) {
    match target {
        Target::YouTube if matches!(fault, Fault::QuotaExceeded | Fault::UploadLimitExceeded) => {
            (Route::of(Method::POST, "/upload"), 1)
        }
        Target::YouTube => (Route::of(Method::PUT, "/upload"), 2),
        Target::Gmail => (Route::of(Method::POST, "/gmail/v1/users/me/messages/"), 1),
        Target::Dev => (Route::of(Method::POST, "/api/articles"), 1),
        Target::Hashnode => (Route::of(Method::POST, "/").holding("publishPost"), 1),
        Target::Shop => (Route::of(Method::GET, "/item"), 1),
    }
}

/// The cell's chaos plan: the strike, and new work for every engine after the first runs.
fn plan(strike: &Strike, target: Target) -> Vec<Event> {
    let at = |at, action| Event { at, action };
    let mut plan = match strike {
        Strike::Once(fault) => {
            let (route, n) = first_write(target, fault);
            let action = Action::Fault { target, route, fault: fault.clone(), span: Span::Nth(n) };
            vec![at(Duration::ZERO, action)]
        }
        Strike::For(fault, d) => {
            let route = crate::chaos::routes(target);
            let action = Action::Fault { target, route, fault: fault.clone(), span: Span::For(*d) };
            vec![at(Duration::ZERO, action)]
        }
        Strike::TokensRefused => vec![at(LATER, Action::ExpireTokens)],
        Strike::TokenEndpoint(fault, d) => vec![
            at(LATER, Action::TokenEndpoint(Some(fault.clone()))),
            at(LATER, Action::ExpireTokens),
            at(LATER + *d, Action::TokenEndpoint(None)),
        ],
        Strike::Revoked if matches!(target, Target::YouTube | Target::Gmail) => {
            vec![at(LATER, Action::Revoke), at(LATER + HOUR, Action::Reauthorize)]
        }
        Strike::Revoked => {
            vec![at(LATER, Action::RevokeKey(target)), at(LATER + HOUR, Action::RenewKey(target))]
        }
    };
    for action in
        [Action::NewMail, Action::NewMail, Action::NewVideo, Action::NewPost, Action::NewPrice]
    {
        plan.push(at(LATER, action));
    }
    plan.sort_by_key(|e| e.at);
    plan
}

/// What one cell found.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    /// The run that met the fault: how it ended, and the runner's disposition (`retry`,
    /// `skip`, `re-authorize`, `stop`) if it did not succeed.
    pub(crate) outcome: RunOutcome,
    pub(crate) disposition: Option<&'static str>,
    /// Alerts raised for the task, by kind (`late`, `failing`, `credentials`, `stopped`).
    pub(crate) alerts: Vec<String>,
    /// The play's event log, for a failure's message.
    pub(crate) events: String,
    /// The engine's items, by the end.
    pub(crate) tallies: Vec<(&'static str, Tally)>,
}

impl Cell {
    /// What went wrong with what reached the services: items lost, done twice, or not done by
    /// the end.
    pub(crate) fn defects(&self) -> Vec<String> {
        if self.tallies.iter().all(|(_, t)| t.fed == 0) {
            return vec![format!("nothing was fed to audit\n{}", self.events)];
        }
        self.tallies
            .iter()
            .filter(|(_, t)| t.lost + t.duplicated + t.waiting > 0 || t.once != t.fed)
            .map(|(name, t)| format!("{name}: {t:?}\n{}", self.events))
            .collect()
    }

    /// The cell as the table shows it.
    pub(crate) fn text(&self) -> String {
        let mut text = self.outcome.as_str().to_owned();
        if let Some(d) = self.disposition {
            text.push_str(" · ");
            text.push_str(d);
        }
        if !self.alerts.is_empty() {
            text.push_str(&format!(" · alert: {}", self.alerts.join(", ")));
        }
        text
    }
}

/// Why a cell could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CellError {
    #[error(transparent)]
    Play(#[from] PlayError),
    #[error("the fault never struck: no request to {0} met it")]
    NotStruck(&'static str),
    #[error("no run of {task} was going when the fault struck at {at}")]
    NoRun { task: &'static str, at: jiff::Timestamp },
}

/// Runs one cell, on its own paused clock and in its own directory.
pub(crate) async fn cell(
    strike: &Strike,
    target: Target,
    task: &'static str,
    kinds: &EngineKinds,
) -> Result<Cell, CellError> {
    let dir = tempfile::tempdir().map_err(PlayError::from)?;
    let start = START.parse().map_err(|e| PlayError::Io(std::io::Error::other(e)))?;
    let clock = Clock::starting_at(start);
    let cadences = Cadences {
        uploads: PERIOD,
        mail: PERIOD,
        blog: PERIOD,
        prices: PERIOD,
        jitter: Duration::from_secs(20),
        attempt: Duration::from_secs(10),
    };
    let setup = Setup {
        label: "matrix",
        dir: dir.path(),
        clock,
        seed: 1,
        plan: plan(strike, target),
        cadences,
        token_lifetime: HOUR,
        length: LENGTH,
        naive: false,
        sockets: false,
        only: Some(task),
        config_tail: String::new(),
        transports: Vec::new(),
    };
    let played = play::play(setup, kinds, None).await?;
    let log = played.mocks.log_of(target).all();
    let hit: Vec<&Recorded> = match strike {
        Strike::Once(fault) | Strike::For(fault, _) => {
            log.iter().filter(|r| r.fault == Some(fault.name())).collect()
        }
        Strike::TokensRefused | Strike::TokenEndpoint(..) => {
            let refused = Some(http::StatusCode::UNAUTHORIZED);
            log.iter().filter(|r| r.status == refused).collect()
        }
        // The first request after the credential went bad meets it (Hashnode refuses a token
        // with a `200` and an error in the body).
        Strike::Revoked => {
            let since = played.started + LATER;
            log.iter().filter(|r| r.at >= since).take(1).collect()
        }
    };
    if std::env::var_os("UNATTENDED_CELL_LOG").is_some() {
        for r in &log {
            eprintln!(
                "{} {} {} {:?} {:?}",
                clock.wall_at(r.at),
                r.method,
                r.path,
                r.status,
                r.fault
            );
        }
    }
    let first = hit.first().ok_or(CellError::NotStruck(target.name()))?;
    let at = clock.wall_at(first.at);
    let runs = &played.measures.history[task];
    let run = run_at(runs, at).ok_or(CellError::NoRun { task, at })?;
    let end = run.end.as_ref().ok_or(CellError::NoRun { task, at })?;
    let prefix = format!("task:{task}:");
    let mut alerts: Vec<String> = played
        .measures
        .alerts
        .iter()
        .filter_map(|a| a.incident.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    alerts.dedup();
    let a = &played.measures.audit;
    Ok(Cell {
        outcome: end.outcome,
        disposition: end.disposition.as_deref().map(disposition_kind),
        alerts,
        events: played.events.clone(),
        tallies: a
            .rows()
            .iter()
            .filter(|(name, _)| tallied(target).contains(name))
            .map(|(name, t)| (*name, (*t).clone()))
            .collect(),
    })
}

/// The audit's rows of the engine talking to `target`.
fn tallied(target: Target) -> &'static [&'static str] {
    match target {
        Target::YouTube => &["videos uploaded (YouTube)"],
        Target::Gmail => &["mails labelled (Gmail)"],
        Target::Dev | Target::Hashnode => &["posts published (DEV)", "posts published (Hashnode)"],
        Target::Shop => &["page changes recorded"],
    }
}

/// The run going at `at`.
fn run_at(runs: &[RunRecord], at: jiff::Timestamp) -> Option<&RunRecord> {
    runs.iter()
        .rev()
        .find(|r| r.started_at <= at && r.end.as_ref().is_none_or(|e| e.finished_at >= at))
}

/// The kind of a disposition, as stored (`"retry at …"`, `"skip work that needs …"`).
fn disposition_kind(text: &str) -> &'static str {
    if text.starts_with("retry") {
        "retry"
    } else if text.starts_with("skip") {
        "skip"
    } else if text.starts_with("re-authorize") {
        "re-authorize"
    } else {
        "stop"
    }
}

/// The whole matrix: a cell per row and engine where the fault applies.
#[derive(Debug, Default)]
pub(crate) struct Matrix {
    /// Row by row, a cell per column (`None`: the fault cannot happen there).
    pub(crate) rows: Vec<(&'static str, Vec<Option<Result<Cell, String>>>)>,
}

impl Matrix {
    /// The table, in Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::from("| fault |");
        for (_, _, title) in COLUMNS {
            out.push_str(&format!(" {title} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(COLUMNS.len()));
        out.push('\n');
        for (name, cells) in &self.rows {
            out.push_str(&format!("| {name} |"));
            for cell in cells {
                let text = match cell {
                    None => "".to_owned(),
                    Some(Ok(cell)) => cell.text(),
                    Some(Err(e)) => format!("**error:** {e}"),
                };
                out.push_str(&format!(" {text} |"));
            }
            out.push('\n');
        }
        out
    }

    /// Every cell that failed or found a defect, with why.
    pub(crate) fn defects(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (name, cells) in &self.rows {
            for (cell, (_, _, title)) in cells.iter().zip(COLUMNS) {
                match cell {
                    Some(Err(e)) => found.push(format!("{name} × {title}: {e}")),
                    Some(Ok(cell)) => {
                        for d in cell.defects() {
                            found.push(format!("{name} × {title}: {d}"));
                        }
                    }
                    None => {}
                }
            }
        }
        found
    }

    /// The faults the matrix struck with, by name.
    pub(crate) fn faults(&self) -> BTreeSet<&'static str> {
        rows()
            .iter()
            .filter_map(|r| match &r.strike {
                Strike::Once(f) | Strike::For(f, _) => Some(f.name()),
                _ => None,
            })
            .collect()
    }
}

/// Runs every cell, on `threads` threads, each cell on its own paused clock.
pub(crate) fn run(threads: usize) -> Matrix {
    let rows = rows();
    let mut jobs = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, (target, task, _)) in COLUMNS.into_iter().enumerate() {
            if applies(&row.strike, target) {
                jobs.push((r, c, row.strike.clone(), target, task));
            }
        }
    }
    let jobs = std::sync::Mutex::new(jobs.into_iter());
    let found = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("a runtime");
                let kinds = crate::world::kinds();
                loop {
                    let job = jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
                    let Some((r, c, strike, target, task)) = job else { break };
                    let cell =
                        rt.block_on(cell(&strike, target, task, &kinds)).map_err(|e| e.to_string());
                    found
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((r, c, cell));
                }
            });
        }
    });
    let mut matrix =
        Matrix { rows: rows.iter().map(|r| (r.name, vec![None; COLUMNS.len()])).collect() };
    for (r, c, cell) in found.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        matrix.rows[r].1[c] = Some(cell);
    }
    matrix
}

#[cfg(test)]
mod tests {
    use unattended_testkit::fault::Fault;

    use super::*;

    const BEGIN: &str = "<!-- fault matrix: begin -->\n";
    const END: &str = "<!-- fault matrix: end -->";

    /// The whole matrix, against the README's table. `UNATTENDED_BLESS=1` writes the table
    /// found into the README instead (then read the diff).
    #[test]
    fn every_fault_against_every_engine_loses_nothing_and_does_nothing_twice() {
        let matrix = run(2);
        let table = matrix.markdown();
        eprintln!("{table}");
        let defects = matrix.defects();
        assert!(defects.is_empty(), "{}", defects.join("\n"));

        let faults = matrix.faults();
        for f in Fault::catalogue() {
            assert!(faults.contains(f.name()), "the matrix leaves out the fault {}", f.name());
        }

        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else {
            panic!("README.md has no {BEGIN:?} … {END:?} section")
        };
        let written = &readme[b + BEGIN.len()..e];
        if std::env::var_os("UNATTENDED_BLESS").is_some() {
            let new = format!("{}{table}{}", &readme[..b + BEGIN.len()], &readme[e..]);
            std::fs::write(&path, new).unwrap();
        } else {
            assert_eq!(written, table, "the README's fault matrix is not what the engines do now");
        }
    }

    /// `UNATTENDED_CELL="ROW TEXT|COLUMN"` (`"503 for|1"`): that cell alone, with its events.
    #[tokio::test(start_paused = true)]
    #[ignore = "one cell, for debugging"]
    async fn one_cell() {
        let which = std::env::var("UNATTENDED_CELL").unwrap_or_else(|_| "`503`|0".into());
        let (row, column) = which.split_once('|').unwrap();
        let row = rows().into_iter().find(|r| r.name.contains(row)).unwrap();
        let (target, task, _) = COLUMNS[column.parse::<usize>().unwrap()];
        let cell = cell(&row.strike, target, task, &crate::world::kinds()).await.unwrap();
        eprintln!("{}\n{}\n{:?}", cell.events, cell.text(), cell.tallies);
    }
}
