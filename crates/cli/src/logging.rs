//! Log lines: readable on a terminal, JSON when read by a machine.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise (a pipe, a file, journald).
    Auto,
    /// One JSON object per line.
    Json,
    /// Readable lines.
    Text,
}

/// Where the lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sink {
    /// Standard output: the runner's log is its output.
    Stdout,
    /// Standard error: the command's output stays clean.
    Stderr,
}

/// Installs the subscriber: `RUST_LOG` if set, else `default` (such as `"info"`).
pub(crate) fn init(format: LogFormat, sink: Sink, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let terminal = match sink {
        Sink::Stdout => std::io::stdout().is_terminal(),
        Sink::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match format {
        LogFormat::Auto => !terminal,
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(terminal && !json);
    // A second install (tests calling commands twice) keeps the first: nothing to do.
    let _ = match (json, sink) {
        (true, Sink::Stdout) => {
            builder.json().flatten_event(true).with_writer(std::io::stdout).try_init()
        }
        (true, Sink::Stderr) => {
            builder.json().flatten_event(true).with_writer(std::io::stderr).try_init()
        }
        (false, Sink::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        // A progress bar may be on standard error's last line: each log line clears it.
        (false, Sink::Stderr) => builder.with_writer(crate::bar::Stderr).try_init(),
    };
}
