//! `unattended simulate`: weeks of the world in seconds, in-process under a paused clock.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use unattended_cli::{Error, Exit, Global};
use unattended_core::Clock;
use unattended_runner::EngineKinds;

use crate::play::{PlayError, Setup, play};
use crate::report::{self, Measures};
use crate::{chaos, world};

pub(crate) const AFTER_HELP: &str = "\
Every engine runs every 15 to 30 minutes against the mocks, in-process, while the clock jumps
from one timer to the next. The fault mix is drawn from the seed: hourly token expiry, 429 bursts
with Retry-After in seconds and dates, outages of 10 to 60 minutes, hangs, resets, lost answers
after committed writes, quota exhaustion, and two human causes (a refresh token revoked at 3 AM,
a full disk), each fixed by a human the next morning. The same engines then run on naive clients
(three fixed tries, no breaker, no budget) under the same plan.

The same seed gives the same event log, byte for byte:

    unattended simulate --days 21 --seed 7 --events a.log
    unattended simulate --days 21 --seed 7 --events b.log && cmp a.log b.log

    unattended simulate --report report.html   # the table and each task's runs as a timeline";

/// `unattended simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Days to simulate.
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// The seed of the fault mix, the content and every random draw of the system.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// When the simulated weeks start (UTC).
    #[arg(long, default_value = "2026-03-02T00:00:00Z")]
    pub start: Timestamp,
    /// Skips the naive column (half the time).
    #[arg(long)]
    pub layered_only: bool,
    /// Writes the table and a per-task timeline of runs as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Writes the layered system's event log (chaos, runs, alerts; one line each) to this file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// What a simulation measured.
#[derive(Debug)]
pub struct Simulation {
    /// The headline table, one column per setup.
    pub table: String,
    /// The layered system's event log.
    pub events: String,
    /// The HTML page of `--report`.
    pub html: String,
    /// Items lost or done twice by the layered system (the audit).
    pub defects: usize,
}

/// Simulates `args.days` under a paused clock: each column (layered, naive) on a thread of its
/// own with a runtime of its own. `kinds` must know the youtube, email, blog and scrape engines.
///
/// # Errors
///
/// The simulation's files or store cannot be made, or the runner refuses its config.
pub fn simulate(args: &SimulateArgs, kinds: &EngineKinds) -> Result<Simulation, Error> {
    let setups: &[(&'static str, bool)] = if args.layered_only {
        &[("layered", false)]
    } else {
        &[("layered", false), ("naive", true)]
    };
    // One thread per setup, each its own paused runtime: the columns do not share a clock.
    let mut columns = std::thread::scope(|s| {
        let threads: Vec<_> = setups
            .iter()
            .map(|&(label, naive)| s.spawn(move || play_paused(args, kinds, label, naive)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(Error::new("the simulation panicked", Exit::NeedsHuman))
                })
            })
            .collect::<Result<Vec<_>, Error>>()
    })?;
    let length = Duration::from_secs(86_400) * args.days;
    let measures: Vec<&Measures> = columns.iter().map(|(m, _)| m).collect();
    let end = args.start + jiff::SignedDuration::try_from(length).unwrap_or_default();
    let title = format!("unattended simulate --days {} --seed {}", args.days, args.seed);
    Ok(Simulation {
        table: report::headline(&measures),
        html: report::html(&title, &measures, (args.start, end)),
        defects: columns[0].0.audit.defects(),
        events: columns.swap_remove(0).1,
    })
}

fn play_paused(
    args: &SimulateArgs,
    kinds: &EngineKinds,
    label: &'static str,
    naive: bool,
) -> Result<(Measures, String), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| Error::from_error(&e, Exit::NeedsHuman))?;
    rt.block_on(async {
        let dir = tempfile::tempdir().map_err(|e| Error::from_error(&e, Exit::NeedsHuman))?;
        let setup = Setup {
            label,
            dir: dir.path(),
            clock: Clock::starting_at(args.start),
            seed: args.seed,
            plan: chaos::simulation(args.days, args.seed),
            cadences: world::Cadences {
                uploads: Duration::from_secs(30 * 60),
                mail: Duration::from_secs(15 * 60),
                blog: Duration::from_secs(30 * 60),
                prices: Duration::from_secs(20 * 60),
                jitter: Duration::from_secs(120),
                attempt: Duration::from_secs(30),
            },
            token_lifetime: Duration::from_secs(3600),
            length: Duration::from_secs(86_400) * args.days,
            naive,
            sockets: false,
            only: None,
            config_tail: String::new(),
            transports: Vec::new(),
        };
        let played = play(setup, kinds, None).await.map_err(play_error)?;
        Ok((played.measures, played.events))
    })
}

#[allow(clippy::needless_pass_by_value)] // for `map_err`
pub(crate) fn play_error(e: PlayError) -> Error {
    Error::from_error(&e, Exit::NeedsHuman)
}

pub(crate) async fn run_command(
    global: Global,
    kinds: EngineKinds,
    args: SimulateArgs,
) -> Result<Exit, Error> {
    global.init_logging(false, "off");
    eprintln!(
        "simulating {} days of 4 engines (seed {}), layered{}…",
        args.days,
        args.seed,
        if args.layered_only { "" } else { " then naive" }
    );
    let clock = Clock::system();
    let began = clock.now();
    let args2 = args.clone();
    let sim = tokio::task::spawn_blocking(move || simulate(&args2, &kinds))
        .await
        .map_err(|e| Error::new(format!("the simulation stopped: {e}"), Exit::NeedsHuman))??;
    println!("{}", sim.table);
    eprintln!("simulated in {:.1} s", (clock.now() - began).as_secs_f64());
    let write = |path: &PathBuf, text: &str| {
        std::fs::write(path, text).map_err(|e| {
            Error::from_error(&e, Exit::NeedsHuman)
                .help(format!("check that {} can be written", path.display()))
        })
    };
    if let Some(path) = &args.events {
        write(path, &sim.events)?;
        eprintln!("event log: {}", path.display());
    }
    if let Some(path) = &args.report {
        write(path, &sim.html)?;
        eprintln!("report: {}", path.display());
    }
    Ok(if sim.defects > 0 { Exit::TaskFailed } else { Exit::Ok })
}
