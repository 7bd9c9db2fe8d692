//! The SMTP password never reaches a log line, a stored error or `Debug` output, at any log
//! level. Alone in its binary: `tracing` caches per callsite whether it is enabled.

mod support;

use std::time::Duration;

use support::smtp::{Behaviour, FakeSmtp};
use unattended_alerts::{AlertsConfig, Notice, Outbox, SmtpConfig, SmtpTls};
use unattended_core::Clock;
use unattended_testkit::capture::Buffer;

const PASSWORD: &str = "XsmtpSecretX-42";

#[tokio::test]
async fn the_smtp_password_is_never_logged_nor_stored() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let refusing = FakeSmtp::start(Behaviour::RefuseAuth).await;
    let taking = FakeSmtp::start(Behaviour::Accept).await;
    let store = support::open(&dir.path().join("s.db"), Clock::system()).await;
    let mut config = AlertsConfig::default();
    config.smtp = [("refusing", &refusing), ("taking", &taking)]
        .into_iter()
        .map(|(name, server)| {
            SmtpConfig::new("127.0.0.1", "jobs@example.com", ["me@example.com"])
                .name(name)
                .port(server.addr.port())
                .tls(SmtpTls::None)
                .credentials_env("SMTP_USER", "SMTP_PASSWORD")
                .timeout(Duration::from_secs(5))
        })
        .collect();
    let env = |var: &str| match var {
        "SMTP_USER" => Some("jobs".to_owned()),
        "SMTP_PASSWORD" => Some(PASSWORD.to_owned()),
        _ => None,
    };
    let outbox = Outbox::builder(store).config(config).env(env).build().unwrap();
    let alert = outbox.raise("x", Notice::new("mail me", "now")).await.unwrap().unwrap();
    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (2, 1), "log and taking; refusing failed");
    assert!(taking.ended(1).await[0].auth.as_deref().unwrap().contains(PASSWORD), "it was sent");

    let mut texts = buffer.lines();
    texts.push(format!("{outbox:?}"));
    for d in outbox.store().deliveries(alert.id).await.unwrap() {
        texts.push(format!("{d:?}"));
    }
    let joined = texts.join("\n");
    assert!(joined.contains("alert delivery failed") && joined.contains("535"), "{joined}");
    let leaks: Vec<_> = texts.iter().filter(|t| t.contains(PASSWORD)).collect();
    assert!(leaks.is_empty(), "the password leaked: {leaks:#?}");
}
