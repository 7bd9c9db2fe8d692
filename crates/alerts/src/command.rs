//! The command sink: a program run for each alert, the alert in its environment and on stdin.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;
use unattended_core::Clock;

use crate::alert::Alert;
use crate::config::{CommandConfig, ConfigError};
use crate::sink::{AlertSink, DeliverFuture, SinkError};

/// The end of standard error kept for the error of a failed run.
const STDERR_TAIL: usize = 1024;

/// Runs a program for each alert (not through a shell): the alert's fields in
/// `UNATTENDED_ALERT_*` environment variables (see [`CommandConfig`]) and its JSON on standard
/// input; standard output is discarded. Exit status 0 is a delivery. Another status, a program
/// that cannot be started or that outlives its timeout (it is then killed) is a failure, with
/// the last kilobyte of its standard error.
#[derive(Debug)]
pub(crate) struct CommandSink {
    name: String,
    program: String,
    args: Vec<String>,
    timeout: Duration,
    clock: Clock,
}

impl CommandSink {
    pub(crate) fn new(
        name: &str,
        config: &CommandConfig,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        if config.program.trim().is_empty() {
            return Err(ConfigError::invalid(name, "`program` is empty"));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::invalid(name, "`timeout` must be more than zero"));
        }
        Ok(Self {
            name: name.to_owned(),
            program: config.program.clone(),
            args: config.args.clone(),
            timeout: config.timeout,
            clock,
        })
    }

    async fn run(&self, alert: &Alert) -> Result<(), SinkError> {
        let json = serde_json::to_vec(alert).map_err(SinkError::new)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(variables(alert))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A run cut short by the timeout (or a shutdown) does not outlive it.
            .kill_on_drop(true);
        let program = &self.program;
        let mut child = command
            .spawn()
            .map_err(|e| SinkError::new(format!("{program} could not be started: {e}")))?;
        let (stdin, stderr) = (child.stdin.take(), child.stderr.take());
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A program that does not read its input is fine: a broken pipe is ignored.
                let _ = stdin.write_all(&json).await;
                let _ = stdin.shutdown().await;
            }
        };
        let run = async {
            let ((), tail, status) = tokio::join!(write, tail(stderr), child.wait());
            (tail, status)
        };
        let Ok((tail, status)) = self.clock.timeout(self.timeout, run).await else {
            let _ = child.kill().await;
            return Err(SinkError::new(format!(
                "{program} did not finish within {:?} and was killed",
                self.timeout
            )));
        };
        let status = status
            .map_err(|e| SinkError::new(format!("{program} could not be waited for: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let tail = tail.trim();
        Err(SinkError::new(if tail.is_empty() {
            format!("{program} failed ({status})")
        } else {
            format!("{program} failed ({status}): {tail}")
        }))
    }
}

impl AlertSink for CommandSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
        Box::pin(self.run(alert))
    }
}

/// The alert as `UNATTENDED_ALERT_*` variables; an absent task or help is empty.
fn variables(alert: &Alert) -> [(&'static str, String); 9] {
    [
        ("UNATTENDED_ALERT_ID", alert.id.to_string()),
        ("UNATTENDED_ALERT_INCIDENT", alert.incident.clone()),
        ("UNATTENDED_ALERT_KIND", alert.kind.as_str().to_owned()),
        ("UNATTENDED_ALERT_TASK", alert.task.clone().unwrap_or_default()),
        ("UNATTENDED_ALERT_TITLE", alert.title.clone()),
        ("UNATTENDED_ALERT_DETAIL", alert.detail.clone()),
        ("UNATTENDED_ALERT_HELP", alert.help.clone().unwrap_or_default()),
        ("UNATTENDED_ALERT_AT", alert.at.to_string()),
        ("UNATTENDED_ALERT_TEXT", alert.text()),
    ]
}

/// Reads `stream` to its end, keeping the last [`STDERR_TAIL`] bytes, as text.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else { return String::new() };
    let mut kept = Vec::new();
    let mut buf = [0_u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}
