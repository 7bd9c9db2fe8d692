//! `unattended check`: the config, validated, and each task's next runs.

use std::path::Path;

use unattended_core::Clock;
use unattended_runner::{Cadence, EngineKinds};

use crate::{CliError, Code};

/// Arguments of `check`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct Args {
    /// How many upcoming runs to show per task.
    #[arg(long, default_value_t = 5)]
    next: usize,
}

pub(crate) fn run(config: &Path, kinds: &EngineKinds, args: Args) -> Result<Code, CliError> {
    let config = crate::load(config, kinds)?;
    let now = Clock::system().wall();
    println!(
        "{}: ok, {} task(s), {} service(s); state in {}",
        config.file.display(),
        config.tasks.len(),
        config.services.len(),
        config.state.describe()
    );
    for task in &config.tasks {
        let schedule = &task.schedule;
        let cadence = match schedule.cadence() {
            Cadence::Every(d) => {
                format!("every {:#}", jiff::SignedDuration::try_from(*d).unwrap_or_default())
            }
            Cadence::Cron(expr) => format!("cron \"{}\" ({})", expr.as_str(), expr.describe()),
            _ => "a schedule".to_owned(),
        };
        let jitter = schedule.max_jitter();
        let jitter = if jitter.is_zero() {
            String::new()
        } else {
            format!(
                ", up to {:#} later",
                jiff::SignedDuration::try_from(jitter).unwrap_or_default()
            )
        };
        let tz = schedule.tz().iana_name().unwrap_or("local");
        println!(
            "\n{} (engine {}): {cadence}{jitter}, zone {tz}{}",
            task.name,
            task.engine_name,
            if task.enabled { "" } else { ", off" }
        );
        if let Some(window) = &task.window {
            println!("  only while window {} is open", window.name);
        }
        for t in schedule.upcoming(None, now, args.next) {
            println!("  next: {}", crate::show_time(t, schedule.tz()));
        }
    }
    let mut warnings = Vec::new();
    for (name, service) in &config.services {
        if let Some(oauth) = &service.oauth {
            for var in [&oauth.client_id_env, &oauth.client_secret_env] {
                if std::env::var_os(var).is_none() {
                    warnings.push(format!("service {name}: {var} is not set in this environment"));
                }
            }
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(Code::Ok)
}
