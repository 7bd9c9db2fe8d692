//! `unattended-youtube`: runs the `youtube` tasks of an `unattended.toml`, once or on their
//! schedules.
//!
//! ```text
//! unattended-youtube [--config FILE] run          # every task on its schedule, until Ctrl-C
//! unattended-youtube [--config FILE] once TASK    # one run of TASK now
//! ```
//!
//! Exit codes: 0 done, 1 the run failed, 2 a usage or config mistake, 3 a human is needed
//! (re-authorize, or a stopped task).

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use unattended_runner::{Disposition, Runner, RunnerConfig};
use unattended_store::{RunOutcome, TaskState};

const USAGE: &str = "usage: unattended-youtube [--config FILE] (run | once TASK)";

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    let mut args = std::env::args().skip(1);
    let mut config = std::path::PathBuf::from(unattended_runner::DEFAULT_FILE);
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(path) => config = path.into(),
                None => return usage("--config needs a file"),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => command.push(arg),
        }
    }
    let config = match RunnerConfig::load(&config, &unattended_engine_youtube::kinds()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut runner = match Runner::builder(config).build().await {
            Ok(runner) => runner,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        match command.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["run"] => {
                let stop = CancellationToken::new();
                let stopper = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    stopper.cancel();
                });
                match runner.run(stop).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            ["once", task] => match runner.once(task).await {
                Ok(outcome) => {
                    println!("{}", outcome.end.summary.as_deref().unwrap_or(""));
                    if let Some(error) = &outcome.end.error {
                        eprintln!("error: {error}");
                    }
                    match (outcome.end.outcome, outcome.state) {
                        (_, TaskState::Disabled) => ExitCode::from(3),
                        (RunOutcome::Succeeded | RunOutcome::Degraded, _) => ExitCode::SUCCESS,
                        _ => ExitCode::FAILURE,
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    let code = if matches!(
                        unattended_core::HasDisposition::disposition(&e),
                        Disposition::Stop
                    ) {
                        2
                    } else {
                        1
                    };
                    ExitCode::from(code)
                }
            },
            _ => usage("say `run` or `once TASK`"),
        }
    })
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\n{USAGE}");
    ExitCode::from(2)
}
