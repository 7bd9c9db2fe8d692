//! One run: write the checkpoint file, run the program, read the file back, judge the exit.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use unattended_runner::{EngineSetup, RunSummary, TaskContext, TaskError};

/// Lines of standard error kept in a failed run's record.
const STDERR_LINES: usize = 5;

/// The settings of a `command` task.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandSettings {
    /// The program (a path, or a name found on `PATH`).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its working directory (default: the config file's folder).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// How long after an exit status 75 to run again (default 5 min).
    #[serde(default = "default_retry", with = "unattended_client_duration")]
    pub retry_after: Duration,
}

const fn default_retry() -> Duration {
    Duration::from_secs(300)
}

/// Durations as text, like the rest of the config.
mod unattended_client_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let signed: jiff::SignedDuration = text.parse().map_err(|e| {
            de::Error::custom(format!("{text:?} is not a duration like \"5m\": {e}"))
        })?;
        Duration::try_from(signed).map_err(|_| de::Error::custom(format!("{text:?} is negative")))
    }
}

/// Runs a program as a task.
#[derive(Clone, Debug)]
pub struct CommandEngine {
    settings: CommandSettings,
    dir: PathBuf,
}

impl CommandEngine {
    /// The engine for `settings`, in the folder `setup` gives.
    ///
    /// # Errors
    ///
    /// The program is empty.
    pub fn new(settings: CommandSettings, setup: &EngineSetup) -> Result<Self, String> {
        if settings.program.trim().is_empty() {
            return Err("`program` is empty".to_owned());
        }
        let dir = settings
            .dir
            .as_ref()
            .map_or_else(|| setup.config_dir().to_path_buf(), |d| setup.resolve(d));
        Ok(Self { settings, dir })
    }
}

#[async_trait::async_trait]
impl unattended_runner::Engine for CommandEngine {
    fn name(&self) -> &str {
        "command"
    }

    fn services(&self) -> Vec<String> {
        Vec::new()
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let saved: Option<serde_json::Value> = cx.checkpoint()?;
        let file = tempfile_path(cx);
        let before = serde_json::to_vec(&saved).unwrap_or_else(|_| b"null".to_vec());
        tokio::fs::write(&file, &before).await.map_err(|e| {
            TaskError::stop(format!("cannot write the checkpoint file {}: {e}", file.display()))
        })?;
        let _cleanup = Remove(file.clone());

        let mut child = tokio::process::Command::new(&self.settings.program)
            .args(&self.settings.args)
            .current_dir(&self.dir)
            .env("UNATTENDED_TASK", cx.task())
            .env("UNATTENDED_RUN", cx.run_id().0.to_string())
            .env("UNATTENDED_CHECKPOINT", &file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                TaskError::stop(format!("cannot start {}: {e}", self.settings.program)).with_help(
                    "check `program` (a path, or a name on PATH) and that it is executable",
                )
            })?;
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf).await;
            stderr = String::from_utf8_lossy(&buf).into_owned();
        }
        let status = child.wait().await.map_err(|e| {
            TaskError::stop(format!("cannot wait for {}: {e}", self.settings.program))
        })?;

        // What the program left in the file is its new checkpoint, whatever its exit.
        if let Ok(after) = tokio::fs::read(&file).await
            && after != before
        {
            match serde_json::from_slice::<serde_json::Value>(&after) {
                Ok(value) => cx.save_checkpoint(&value).await?,
                Err(e) => {
                    tracing::warn!(task = cx.task(), error = %e, "the checkpoint file is not JSON; not saved")
                }
            }
        }
        let tail = tail(&stderr);
        let said = |what: &str| match &tail {
            Some(t) => format!("{} {what}: {t}", self.settings.program),
            None => format!("{} {what}", self.settings.program),
        };
        match status.code() {
            Some(0) => {
                Ok(RunSummary::new().items(1).note(format!("{} exited 0", self.settings.program)))
            }
            Some(75) => {
                let at = cx
                    .clock()
                    .wall()
                    .checked_add(self.settings.retry_after)
                    .unwrap_or(jiff::Timestamp::MAX);
                Err(TaskError::retry_at(at, said("asked to be run again later (exit 75)")))
            }
            Some(77) => Err(TaskError::reauthorize(said("was refused its credentials (exit 77)"))),
            Some(code @ (64 | 78)) => Err(TaskError::stop(said(&format!(
                "reported a usage or config fault (exit {code})"
            )))),
            Some(code) => {
                let at = cx.clock().wall();
                Err(TaskError::retry_at(at, said(&format!("failed (exit {code})"))))
            }
            None => Err(TaskError::retry_at(cx.clock().wall(), said("was killed by a signal"))),
        }
    }
}

fn tempfile_path(cx: &TaskContext) -> PathBuf {
    std::env::temp_dir().join(format!(
        "unattended-{}-{}.checkpoint.json",
        sanitize(cx.task()),
        cx.run_id().0
    ))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

/// The last lines of standard error, if it said anything.
fn tail(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(STDERR_LINES);
    (!lines.is_empty()).then(|| lines[start..].join(" | "))
}

/// Removes the checkpoint file when the run ends, however it ends.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail(""), None);
        assert_eq!(tail("a\nb\n\nc\nd\ne\nf\n").as_deref(), Some("b | c | d | e | f"));
    }
}
