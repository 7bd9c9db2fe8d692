//! The SMTP sink: each alert a plain-text mail, through lettre over rustls.

use std::fmt;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use unattended_core::Clock;

use crate::alert::Alert;
use crate::config::{ConfigError, Env, SmtpConfig, SmtpTls, env};
use crate::sink::{AlertSink, DeliverFuture, SinkError};

/// Mails each alert: subject `[unattended] <kind>: <title>`, a plain-text body of
/// [`Alert::text`] and the alert's fields, dated by the clock. The connection is encrypted as
/// configured (`STARTTLS` required by default: a server that does not offer it gets no
/// credentials and no mail); the credentials come from environment variables and appear in no
/// log, error or `Debug` output. A delivery is one connection, bounded by the timeout; the
/// server's answer to a refusal is in the error.
pub(crate) struct SmtpSink {
    name: String,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    clock: Clock,
}

impl SmtpSink {
    pub(crate) fn new(
        name: &str,
        config: &SmtpConfig,
        clock: Clock,
        lookup: &Env,
    ) -> Result<Self, ConfigError> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err(ConfigError::invalid(name, "`host` is empty"));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::invalid(name, "`timeout` must be more than zero"));
        }
        let mailbox = |field: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|e| ConfigError::invalid(name, format!("`{field}` {text:?}: {e}")))
        };
        let from = mailbox("from", &config.from)?;
        let to = config.to.iter().map(|t| mailbox("to", t)).collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(ConfigError::invalid(name, "`to` names no recipient"));
        }
        let tls_parameters = || {
            TlsParameters::new(host.to_owned())
                .map_err(|e| ConfigError::invalid(name, format!("TLS for {host}: {e}")))
        };
        let (tls, port) = match config.tls {
            SmtpTls::Starttls => (Tls::Required(tls_parameters()?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls_parameters()?), 465),
            SmtpTls::None => (Tls::None, 25),
        };
        let port = config.port.unwrap_or(port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout));
        match (&config.username_env, &config.password_env) {
            (Some(user), Some(password)) => {
                let credentials =
                    Credentials::new(env(lookup, name, user)?, env(lookup, name, password)?);
                builder = builder.credentials(credentials);
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::invalid(
                    name,
                    "give both `username_env` and `password_env`, or neither",
                ));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            server: format!("{host}:{port}"),
            from,
            to,
            timeout: config.timeout,
            transport: builder.build(),
            clock,
        })
    }

    fn message(&self, alert: &Alert) -> Result<Message, SinkError> {
        let mut body = alert.text();
        let _ = write!(
            body,
            "\n\nincident: {}\ntask: {}\nat: {}\nid: {}\n",
            alert.incident,
            alert.task.as_deref().unwrap_or("-"),
            alert.at,
            alert.id
        );
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(format!("[unattended] {}: {}", alert.kind, alert.title))
            .header(ContentType::TEXT_PLAIN)
            // Dated by the clock, not the system's, so a simulated run is consistent.
            .date(system_time(self.clock.wall()));
        for to in &self.to {
            message = message.to(to.clone());
        }
        message.body(body).map_err(|e| SinkError::new(format!("the mail could not be made: {e}")))
    }

    async fn send(&self, alert: &Alert) -> Result<(), SinkError> {
        let message = self.message(alert)?;
        let server = &self.server;
        match self.clock.timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SinkError::new(format!("mail through {server}: {e}"))),
            Err(_) => Err(SinkError::new(format!(
                "mail through {server}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

impl AlertSink for SmtpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
        Box::pin(self.send(alert))
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// `at` as a `SystemTime` (times before 1970 are 1970).
fn system_time(at: jiff::Timestamp) -> SystemTime {
    let since =
        Duration::try_from(at.duration_since(jiff::Timestamp::UNIX_EPOCH)).unwrap_or_default();
    SystemTime::UNIX_EPOCH.checked_add(since).unwrap_or(SystemTime::UNIX_EPOCH)
}
