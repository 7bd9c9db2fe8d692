//! The `[alerts]` table of a config file.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where alerts go and how hard delivery tries: the runner's `[alerts]` table.
///
/// ```toml
/// [alerts]
/// log = true                      # default: every alert is logged
/// keep = 1000                     # delivered alerts kept in the store (default 1000)
/// retry_first = "30s"             # a failed delivery is tried again after about 30 s,
/// retry_max = "1h"                # then doubling up to about 1 h, forever
///
/// [[alerts.webhook]]              # JSON POST; named "webhook:0" unless `name` is given
/// url_env = "ALERT_WEBHOOK_URL"   # or `url = "https://..."`; the URL is never logged
/// timeout = "60s"
///
/// [[alerts.command]]              # the alert in UNATTENDED_ALERT_* variables and on stdin
/// program = "/usr/local/bin/page-me"
/// args = ["--urgent"]
/// timeout = "10s"
///
/// [[alerts.smtp]]
/// host = "smtp.example.com"
/// tls = "starttls"                # or "tls" (port 465) or "none"
/// from = "unattended <jobs@example.com>"
/// to = ["me@example.com"]
/// username_env = "SMTP_USER"      # credentials from the environment, never from the file
/// password_env = "SMTP_PASSWORD"
/// ```
///
/// A sink's name (its `name`, else `webhook:N`, `command:N` or `smtp:N` by its place in the
/// list, and `log`) keeps its pending deliveries across a restart: renaming or reordering sinks
/// while alerts are undelivered leaves those to the old name, which then fails as not
/// configured (shown as undelivered) until it comes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertsConfig {
    /// Log every alert with `tracing` (default true): `warn` raised, `info` recovered.
    pub log: bool,
    /// Delivered alerts kept in the store (default 1000); older ones are pruned. Undelivered
    /// alerts and those of open incidents are always kept.
    pub keep: usize,
    /// The wait before a failed delivery is tried again (default 30 s), doubled after each
    /// failure.
    #[serde(with = "unattended_client::duration")]
    pub retry_first: Duration,
    /// The longest wait between attempts (default 1 h). A delivery is never given up.
    #[serde(with = "unattended_client::duration")]
    pub retry_max: Duration,
    /// Webhooks.
    pub webhook: Vec<WebhookConfig>,
    /// Commands.
    pub command: Vec<CommandConfig>,
    /// Mail servers.
    pub smtp: Vec<SmtpConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            log: true,
            keep: 1000,
            retry_first: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            webhook: Vec::new(),
            command: Vec::new(),
            smtp: Vec::new(),
        }
    }
}

/// A webhook: each alert is `POST`ed as JSON (see [`Alert`](crate::Alert)); any `2xx` answer
/// is a delivery.
///
/// The URL may hold a secret (most chat webhooks do, in the path): it is never logged nor put
/// in an error; only its origin (`https://hooks.example.com`) is shown. `Debug` shows only the
/// origin too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The sink's name (default `webhook:N`, N its place among the webhooks from 0).
    #[serde(default)]
    pub name: Option<String>,
    /// The URL, written in the file.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the URL (instead of `url`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The longest one delivery may take, retries by the client included (default 60 s).
    #[serde(default = "default_webhook_timeout", with = "unattended_client::duration")]
    pub timeout: Duration,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(60)
}

impl WebhookConfig {
    /// A webhook posting to `url`.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            name: None,
            url: Some(url.into()),
            url_env: None,
            timeout: default_webhook_timeout(),
        }
    }

    /// A webhook posting to the URL in the environment variable `var`.
    pub fn url_env(var: impl Into<String>) -> Self {
        Self {
            name: None,
            url: None,
            url_env: Some(var.into()),
            timeout: default_webhook_timeout(),
        }
    }

    /// Named `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The longest one delivery may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.url.as_deref().map(crate::webhook::origin);
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &origin)
            .field("url_env", &self.url_env)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A command run for each alert: the alert in environment variables (`UNATTENDED_ALERT_ID`,
/// `_INCIDENT`, `_KIND`, `_TASK`, `_TITLE`, `_DETAIL`, `_HELP`, `_AT`, `_TEXT`; an absent task
/// or help is empty) and as JSON on standard input. Exit status 0 is a delivery; another status,
/// a failure to start or a timeout is a failure (with the end of its standard error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandConfig {
    /// The sink's name (default `command:N`).
    #[serde(default)]
    pub name: Option<String>,
    /// The program (a path, or a name looked up in `PATH`). Not run through a shell.
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// How long it may run before it is killed (default 10 s).
    #[serde(default = "default_command_timeout", with = "unattended_client::duration")]
    pub timeout: Duration,
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(10)
}

impl CommandConfig {
    /// Runs `program` with `args`.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: None,
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout: default_command_timeout(),
        }
    }

    /// Named `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long it may run.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (default port 465).
    Tls,
    /// No encryption (default port 25): only for a relay on the same machine.
    None,
}

/// A mail server: each alert is a plain-text mail (subject `[unattended] <kind>: <title>`,
/// body [`Alert::text`](crate::Alert::text) and the alert's fields). TLS is rustls with the
/// system's roots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// The sink's name (default `smtp:N`).
    #[serde(default)]
    pub name: Option<String>,
    /// The server.
    pub host: String,
    /// Its port (default by `tls`: 587, 465 or 25).
    #[serde(default)]
    pub port: Option<u16>,
    /// How the connection is protected (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender, such as `"unattended <jobs@example.com>"`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The environment variable holding the user name, if the server wants one.
    #[serde(default)]
    pub username_env: Option<String>,
    /// The environment variable holding the password (with `username_env`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// The longest one delivery may take (default 30 s).
    #[serde(default = "default_smtp_timeout", with = "unattended_client::duration")]
    pub timeout: Duration,
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

impl SmtpConfig {
    /// Mail from `from` to `to` through `host`, with `STARTTLS` and no credentials.
    pub fn new(
        host: impl Into<String>,
        from: impl Into<String>,
        to: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: None,
            host: host.into(),
            port: None,
            tls: SmtpTls::default(),
            from: from.into(),
            to: to.into_iter().map(Into::into).collect(),
            username_env: None,
            password_env: None,
            timeout: default_smtp_timeout(),
        }
    }

    /// Named `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// On `port`.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Protected by `tls`.
    #[must_use]
    pub fn tls(mut self, tls: SmtpTls) -> Self {
        self.tls = tls;
        self
    }

    /// Signs in with the user name and password in these environment variables.
    #[must_use]
    pub fn credentials_env(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.username_env = Some(username.into());
        self.password_env = Some(password.into());
        self
    }

    /// The longest one delivery may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A sink could not be made from its config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is missing, out of range or inconsistent.
    #[error("invalid alert sink {sink}: {problem}")]
    Invalid {
        /// The sink's name.
        sink: String,
        /// What is wrong (never a secret).
        problem: String,
    },
    /// An environment variable the config names is not set.
    #[error("invalid alert sink {sink}: the environment variable {var} is not set")]
    MissingEnv {
        /// The sink's name.
        sink: String,
        /// The variable.
        var: String,
    },
    /// Two sinks have the same name.
    #[error("two alert sinks are named {0}; give one a different `name`")]
    DuplicateName(String),
}

impl ConfigError {
    pub(crate) fn invalid(sink: &str, problem: impl Into<String>) -> Self {
        Self::Invalid { sink: sink.to_owned(), problem: problem.into() }
    }
}

impl unattended_core::HasDisposition for ConfigError {
    fn disposition(&self) -> unattended_core::Disposition {
        unattended_core::Disposition::Stop
    }
}

/// Where the variables a config names (`url_env`, `username_env`, `password_env`) are read.
pub(crate) type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Reads the variable `var` for `sink` from `lookup`.
pub(crate) fn env(lookup: &Env, sink: &str, var: &str) -> Result<String, ConfigError> {
    lookup(var)
        .ok_or_else(|| ConfigError::MissingEnv { sink: sink.to_owned(), var: var.to_owned() })
}
