//! Where alerts go: the sink trait, its error, and the log sink.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

use crate::alert::Alert;

/// The future a sink's [`deliver`](AlertSink::deliver) returns.
pub type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// A place an alert is delivered to: a log, a webhook, a command, a mail server.
///
/// The outbox calls [`deliver`](Self::deliver) for each alert not yet delivered to this sink,
/// one at a time and in the order the alerts were written; an `Err` is recorded and the
/// delivery tried again later. A delivery may be repeated after a crash, so a sink should not
/// mind an alert twice (its `id` tells them apart).
///
/// ```
/// use unattended_alerts::{Alert, AlertSink, DeliverFuture};
///
/// #[derive(Debug)]
/// struct Stdout;
///
/// impl AlertSink for Stdout {
///     fn name(&self) -> &str {
///         "stdout"
///     }
///
///     fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
///         Box::pin(async move {
///             println!("{}", alert.text());
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait AlertSink: Send + Sync + fmt::Debug + 'static {
    /// The sink's name, stable across restarts: pending deliveries are kept by it (such as
    /// `log`, `webhook:0`).
    fn name(&self) -> &str;

    /// Delivers `alert`.
    ///
    /// # Errors
    ///
    /// The alert was not delivered (the outbox tries again later). The error must not hold a
    /// secret: it is logged and kept in the store.
    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a>;
}

/// A delivery failed. Its text is logged and kept in the store, so it never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
    not_before: Option<Timestamp>,
}

impl SinkError {
    /// A failure described by `message` (no secrets).
    pub fn new(message: impl fmt::Display) -> Self {
        Self { message: message.to_string(), not_before: None }
    }

    /// Asks that the next attempt wait until at least `at` (a server said when to come back).
    #[must_use]
    pub fn not_before(mut self, at: Timestamp) -> Self {
        self.not_before = Some(at);
        self
    }

    /// The earliest time the next attempt may be made, if the sink knows one.
    pub fn retry_not_before(&self) -> Option<Timestamp> {
        self.not_before
    }
}

/// Logs each alert with `tracing`: `warn` for a raised alert, `info` for a recovery, with the
/// alert's fields; target `unattended::alert`. Always delivers. Named `log`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogSink;

impl AlertSink for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
        let (id, incident, task, help) =
            (alert.id.0, &alert.incident, alert.task.as_deref(), alert.help.as_deref());
        let (title, detail) = (&alert.title, &alert.detail);
        match alert.kind {
            unattended_store::AlertKind::Raised => tracing::warn!(
                target: "unattended::alert",
                id, %incident, task, %detail, help, "alert: {title}"
            ),
            unattended_store::AlertKind::Recovered => tracing::info!(
                target: "unattended::alert",
                id, %incident, task, %detail, help, "recovered: {title}"
            ),
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
