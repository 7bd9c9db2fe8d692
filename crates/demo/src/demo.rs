//! `unattended demo`: a minute of every engine against mocks on 127.0.0.1 under the whole fault
//! catalogue, watched live, then the report and the audit.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use unattended_cli::{Error, Exit, Global};
use unattended_core::Clock;
use unattended_runner::{EngineKinds, RunnerView};

use crate::play::{Setup, play};
use crate::report;
use crate::simulate::play_error;
use crate::{chaos, world};

pub(crate) const AFTER_HELP: &str = "\
Nothing leaves this machine: Google OAuth, YouTube, Gmail, DEV, Hashnode and a shop's website are
mocks on 127.0.0.1, and the runner talks to them as it would to the real ones. Tokens expire four
times; 429 bursts (Retry-After in seconds and as a date), a Gmail outage, resets, hangs, short
ranges, a lost answer after DEV committed a post and YouTube's daily quota all strike on a plan;
the Google refresh token is revoked near the end, which is the one thing a human must fix.

At the end the demo audits the mocks: every video uploaded once with the same bytes, every post
published once per site, every mail labelled and written once, every price change recorded once.
It exits 1 if the audit finds anything lost or done twice.

    unattended demo                      # about a minute
    unattended demo --naive              # the same chaos on naive clients too, side by side
    unattended demo --state ./demo-state # keep the store, then: unattended status -c ./demo-state/unattended.toml";

/// `unattended demo`.
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// How long the chaos lasts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// A directory for the store, the config and the engines' files (default: a temporary one,
    /// removed at the end).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Also runs the same chaos on naive clients (three fixed tries, no breaker, no budget), for
    /// a side-by-side report.
    #[arg(long)]
    pub naive: bool,
    /// The seed of every random draw (faults, content, jitter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Tokens expire four times in the demo, and not faster than every 5 s.
fn token_lifetime(demo: Duration) -> Duration {
    (demo / 4).max(Duration::from_secs(5))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = unattended_client::duration::parse(s)?;
    if d < Duration::from_secs(10) {
        return Err("the demo needs at least 10s".into());
    }
    Ok(d)
}

pub(crate) async fn run(global: Global, kinds: EngineKinds, args: DemoArgs) -> Result<Exit, Error> {
    let live = std::io::stderr().is_terminal();
    // The view is the show; the runner's own log only when RUST_LOG asks for it.
    global.init_logging(false, "off");
    let io = |e: std::io::Error| Error::from_error(&e, Exit::NeedsHuman);
    let temp = tempfile::tempdir().map_err(io)?;
    let root = match &args.state {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let cadences = world::Cadences::DEMO;
    eprintln!(
        "unattended demo: mocks of Google OAuth, YouTube, Gmail, DEV, Hashnode and a website on \
         127.0.0.1; 4 tasks every few seconds; the chaos lasts {}s.\nfiles: {}\n",
        args.duration.as_secs(),
        root.display()
    );
    let layered_dir = root.join("layered");
    let naive_dir = root.join("naive");
    std::fs::create_dir_all(&layered_dir).map_err(io)?;
    let shown = Mutex::new(Shown::default());
    let watch = |view: &RunnerView, elapsed: Duration| show(view, elapsed, live, &shown);
    let layered = play(
        Setup {
            label: "layered",
            dir: &layered_dir,
            clock: Clock::system(),
            seed: args.seed,
            plan: chaos::demo(args.duration),
            cadences,
            token_lifetime: token_lifetime(args.duration),
            length: args.duration,
            naive: false,
            sockets: true,
            only: None,
            config_tail: String::new(),
            transports: Vec::new(),
        },
        &kinds,
        Some(&watch),
    );
    let (layered, naive) = if args.naive {
        std::fs::create_dir_all(&naive_dir).map_err(io)?;
        let naive = play(
            Setup {
                label: "naive",
                dir: &naive_dir,
                clock: Clock::system(),
                seed: args.seed,
                plan: chaos::demo(args.duration),
                cadences,
                token_lifetime: token_lifetime(args.duration),
                length: args.duration,
                naive: true,
                sockets: true,
                only: None,
                config_tail: String::new(),
                transports: Vec::new(),
            },
            &kinds,
            None,
        );
        let (l, n) = tokio::join!(layered, naive);
        (l.map_err(play_error)?, Some(n.map_err(play_error)?))
    } else {
        (layered.await.map_err(play_error)?, None)
    };

    let mut columns = vec![&layered.measures];
    if let Some(n) = &naive {
        columns.push(&n.measures);
    }
    println!("\n{}", report::full(&columns));
    let events = layered_dir.join("events.log");
    std::fs::write(&events, &layered.events).map_err(io)?;
    if args.state.is_some() {
        println!(
            "The store and the event log stay in {}: unattended status -c {}",
            layered_dir.display(),
            layered.config.display()
        );
    }
    let defects = layered.measures.audit.defects();
    if defects == 0 {
        println!("audit: nothing lost, nothing done twice.");
        Ok(Exit::Ok)
    } else {
        println!("audit: {defects} items lost or done twice (see above).");
        Ok(Exit::TaskFailed)
    }
}

/// What the plain-text view last printed, per task.
#[derive(Default)]
struct Shown {
    lines: std::collections::BTreeMap<String, String>,
}

fn show(view: &RunnerView, elapsed: Duration, live: bool, shown: &Mutex<Shown>) {
    let mut rows = Vec::new();
    for t in view.tasks() {
        let s = &t.status;
        let last = s
            .last_error
            .as_deref()
            .map(|e| format!("error: {e}"))
            .or_else(|| s.reason.clone())
            .unwrap_or_default();
        let last: String = last.chars().take(70).collect();
        rows.push((t.name.clone(), format!("{:<9} {last}", s.state.to_string())));
    }
    let held: Vec<String> = view
        .held()
        .iter()
        .map(|h| format!("{} {} ({}) until {}", h.service, h.kind, h.key, h.until))
        .collect();
    let alerts: Vec<String> =
        view.alerts().iter().filter(|a| a.raised).map(|a| a.title.clone()).collect();
    if live {
        let mut out = format!("\x1b[2J\x1b[H{:>4}s  task      state     last\n", elapsed.as_secs());
        for (name, row) in &rows {
            out.push_str(&format!("       {name:<9} {row}\n"));
        }
        out.push_str(&format!(
            "\nheld back: {}\n",
            if held.is_empty() { "none".into() } else { held.join("; ") }
        ));
        out.push_str(&format!(
            "alerts: {}\n",
            if alerts.is_empty() { "none".into() } else { alerts.join("; ") }
        ));
        eprint!("{out}");
    } else {
        let mut shown = shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, row) in rows {
            if shown.lines.get(&name) != Some(&row) {
                eprintln!("{:>4}s {name:<9} {row}", elapsed.as_secs());
                shown.lines.insert(name, row);
            }
        }
    }
}
