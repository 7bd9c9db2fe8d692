//! `unattended once TASK`: one run now, with a progress bar on a terminal.

use std::path::Path;

use unattended_core::Clock;
use unattended_runner::{EngineKinds, Runner};
use unattended_store::{RunOutcome, TaskState};

use crate::bar::Bar;
use crate::logging::{self, LogFormat, Sink};
use crate::{CliError, Code};

/// Arguments of `once`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The task to run (a `[tasks.NAME]` of the config).
    task: String,
}

pub(crate) async fn run(
    config: &Path,
    format: LogFormat,
    kinds: &EngineKinds,
    args: Args,
) -> Result<Code, CliError> {
    logging::init(format, Sink::Stderr, "info");
    let config = crate::load(config, kinds)?;
    let clock = Clock::system();
    let mut runner = Runner::builder(config).clock(clock).build().await?;
    let bar = Bar::start(runner.view(), &args.task, clock);
    let outcome = runner.once(&args.task).await;
    bar.finish().await;
    let outcome = outcome?;
    let end = &outcome.end;
    let code = match (end.outcome, outcome.state) {
        (_, TaskState::Disabled) => Code::NeedsHuman,
        (RunOutcome::Succeeded | RunOutcome::Degraded, _) => Code::Ok,
        _ => Code::TaskFailed,
    };
    match code {
        Code::Ok => println!(
            "{}: {} ({})",
            args.task,
            end.outcome.as_str(),
            end.summary.as_deref().unwrap_or("done")
        ),
        _ => {
            let mut err = CliError::new(
                format!(
                    "{} {}: {}",
                    args.task,
                    end.outcome.as_str(),
                    end.error.as_deref().unwrap_or("")
                ),
                code,
            );
            if let Some(d) = &end.disposition {
                err = err.help(match code {
                    Code::NeedsHuman => format!(
                        "the task is disabled ({d}); fix the cause, then `unattended reset {}`",
                        args.task
                    ),
                    _ => format!("the runner would {d}"),
                });
            }
            eprintln!("{err}");
        }
    }
    Ok(code)
}
