//! Alerts for jobs that run unattended: a human hears once when something needs them, and once
//! when it is over.
//!
//! An [`Outbox`] writes each alert to the [`Store`](unattended_store::Store) (the outbox pattern)
//! in the same transaction that opens or closes its *incident*, before any sink is tried:
//!
//! - **one alert per incident**: [`Outbox::raise`] on an incident already open writes nothing;
//!   [`Outbox::recover`] writes one recovery alert, and only for an open incident;
//! - **nothing lost**: an alert survives a crash, a restart and a webhook or mail server that is
//!   down; each sink's delivery is retried with growing, jittered spacing (30 s doubling to 1 h
//!   by default) until it is taken, never dropped;
//! - **sinks**: `log` (`tracing`, on by default), `webhook` (JSON `POST` through the
//!   workspace's resilient [`Client`](unattended_client::Client)) and `command` (a program run
//!   with the alert in `UNATTENDED_ALERT_*` variables and as JSON on stdin, with a timeout)
//!   and `smtp` (a plain-text mail through lettre over rustls, `STARTTLS` required by default,
//!   credentials from the environment), from the config, and any [`AlertSink`] of the caller's
//!   own;
//! - **no secrets shown**: a webhook URL (which often holds a token) and an SMTP password appear
//!   in no log or error; a webhook shows only its origin;
//! - **runs anywhere in time**: every time comes from a [`Clock`](unattended_core::Clock) and the
//!   webhook transport can be swapped for an in-process service, so a week of outage can be
//!   simulated under a paused tokio clock.
//!
//! The sinks and the retry spacing come from an [`AlertsConfig`], the runner's `[alerts]` table.
//! An alert's JSON shape (what the webhook posts) is documented on [`Alert`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use unattended_alerts::{AlertsConfig, Notice, Outbox};
//! use unattended_core::Clock;
//! use unattended_store::{Store, StoreConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let config: AlertsConfig = toml::from_str(r#"
//!     log = true
//!     retry_first = "1m"
//! "#)?;
//! let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), Clock::system()).await?;
//! let outbox = Outbox::builder(store).config(config).build()?;
//!
//! // The delivery loop, until the runner shuts down.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let deliveries = outbox.spawn(async move { stopped.await.unwrap_or(()) });
//!
//! let late = Notice::new("upload has not succeeded for 2 h", "its last run failed: HTTP 503")
//!     .task("upload")
//!     .help("nothing yet: it retries by itself; look if this lasts");
//! assert!(outbox.raise("task:upload:late", late).await?.is_some());
//! // ...the task succeeds again:
//! let back = Notice::new("upload succeeded again", "after 2 h 10 min").task("upload");
//! assert!(outbox.recover("task:upload:late", back).await?.is_some());
//!
//! stop.send(()).ok();
//! deliveries.await?;
//! # Ok(())
//! # }
//! ```

mod alert;
mod command;
mod config;
mod outbox;
mod sink;
mod smtp;
mod webhook;

pub use self::alert::{Alert, JSON_VERSION, Notice};
pub use self::config::{
    AlertsConfig, CommandConfig, ConfigError, SmtpConfig, SmtpTls, WebhookConfig,
};
pub use self::outbox::{DeliveryReport, Outbox, OutboxBuilder};
pub use self::sink::{AlertSink, DeliverFuture, SinkError};
pub use self::webhook::{Transport, transport};
pub use unattended_store::{
    AlertId, AlertKind, AlertRecord, Delivery, Incident, PendingDelivery, StoreError,
};
