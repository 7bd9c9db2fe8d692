//! `unattended reset TASK`: makes a task runnable again.

use std::path::Path;

use unattended_core::Clock;
use unattended_runner::EngineKinds;
use unattended_store::{StateStore, StoreConfig, TaskState, TaskStatus};

use crate::{CliError, Code};

/// Arguments of `reset`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The task.
    task: String,
    /// Also forget its checkpoint, so its next run starts afresh.
    #[arg(long)]
    checkpoint: bool,
}

pub(crate) async fn run(config: &Path, kinds: &EngineKinds, args: Args) -> Result<Code, CliError> {
    let config = crate::load(config, kinds)?;
    if config.task(&args.task).is_none() {
        let known: Vec<&str> = config.tasks.iter().map(|t| t.name.as_str()).collect();
        return Err(CliError::new(format!("no task is called {:?}", args.task), Code::Usage)
            .help(format!("the tasks are: {}", known.join(", "))));
    }
    let clock = Clock::system();
    let store = crate::open_store(&config, StoreConfig::new(), clock).await?;
    let now = clock.wall();
    let before = store.task_state(&args.task).await?;
    let mut status = before.clone().unwrap_or_else(|| TaskStatus::new(TaskState::Idle, now));
    if status.state == TaskState::Running {
        return Err(CliError::new(format!("{} is running now", args.task), Code::Usage)
            .help("wait for the run to end (`unattended status`), or stop the runner first"));
    }
    let was = status.state;
    make_idle(&mut status, now, format!("reset by a human at {now}"));
    store.set_task_state(&args.task, status).await?;
    let mut said = format!("{}: {} → idle; it runs at the runner's next round", args.task, was);
    if args.checkpoint && store.delete_checkpoint(&args.task).await? {
        said.push_str("; its checkpoint is forgotten");
    }
    println!("{said}");
    Ok(Code::Ok)
}

/// Makes `status` idle from `now`, due at once, its failures forgotten.
pub(crate) fn make_idle(status: &mut TaskStatus, now: jiff::Timestamp, reason: String) {
    status.state = TaskState::Idle;
    status.since = now;
    status.reason = Some(reason);
    status.failures = 0;
    status.last_error = None;
    status.last_disposition = None;
    status.next_run = Some(now);
}
