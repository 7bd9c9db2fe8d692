//! The SMTP sink against a tiny SMTP server on 127.0.0.1, in real time: the mail and the
//! credentials it carries, STARTTLS required, a refusal, a server that says nothing.

mod support;

use std::path::Path;
use std::time::Duration;

use support::smtp::{Behaviour, FakeSmtp};
use unattended_alerts::{AlertsConfig, ConfigError, Notice, Outbox, SmtpConfig, SmtpTls};
use unattended_core::Clock;

fn secrets(var: &str) -> Option<String> {
    match var {
        "SMTP_USER" => Some("jobs".to_owned()),
        "SMTP_PASSWORD" => Some("hunter2-horse-battery".to_owned()),
        _ => None,
    }
}

fn smtp(server: &FakeSmtp) -> SmtpConfig {
    SmtpConfig::new(
        "127.0.0.1",
        "unattended <jobs@example.com>",
        ["me@example.com", "ops@example.com"],
    )
    .port(server.addr.port())
    .tls(SmtpTls::None)
    .credentials_env("SMTP_USER", "SMTP_PASSWORD")
    .timeout(Duration::from_secs(5))
}

async fn outbox(dir: &Path, smtp: SmtpConfig) -> Result<Outbox, ConfigError> {
    let store = support::open(&dir.join("s.db"), Clock::system()).await;
    let mut config = AlertsConfig::default();
    config.log = false;
    config.smtp = vec![smtp];
    Outbox::builder(store).config(config).env(secrets).build()
}

fn revoked() -> Notice {
    Notice::new("upload cannot sign in to YouTube", "the refresh token was revoked")
        .task("upload")
        .help("run `unattended auth google`")
}

#[tokio::test]
async fn the_alert_is_mailed_with_the_credentials_from_the_environment() {
    let (dir, server) = (tempfile::tempdir().unwrap(), FakeSmtp::start(Behaviour::Accept).await);
    let outbox = outbox(dir.path(), smtp(&server)).await.unwrap();
    assert_eq!(outbox.sinks().collect::<Vec<_>>(), ["smtp:0"]);
    let alert = outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();

    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 0), "{:?}", outbox.undelivered().await);
    let sessions = server.ended(1).await;
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.auth.as_deref(), Some("\0jobs\0hunter2-horse-battery"));
    assert_eq!(s.mail_from.as_deref(), Some("<jobs@example.com>"));
    assert_eq!(s.rcpt_to, ["<me@example.com>", "<ops@example.com>"]);
    let data = s.data.clone().unwrap();
    for part in [
        "Subject: [unattended] raised: upload cannot sign in to YouTube",
        "From: unattended <jobs@example.com>",
        "To: me@example.com, ops@example.com",
        "Content-Type: text/plain; charset=utf-8",
        "[raised] upload cannot sign in to YouTube\nthe refresh token was revoked\nWhat to do: run `unattended auth google`",
        "incident: task:upload:auth\ntask: upload\n",
        &format!("id: {}", alert.id),
    ] {
        assert!(data.contains(part), "{part:?} not in\n{data}");
    }
    assert!(data.contains("\nDate: "), "{data}");
}

#[tokio::test]
async fn starttls_required_sends_no_credentials_to_a_server_without_it() {
    let (dir, server) = (tempfile::tempdir().unwrap(), FakeSmtp::start(Behaviour::Accept).await);
    let outbox = outbox(dir.path(), smtp(&server).tls(SmtpTls::Starttls)).await.unwrap();
    outbox.raise("x", revoked()).await.unwrap();
    let report = outbox.deliver_due().await.unwrap();
    assert_eq!(report.failed, 1);
    let sessions = server.ended(1).await;
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0].commands.iter().all(|c| !c.starts_with("AUTH") && !c.starts_with("MAIL")),
        "{sessions:?}"
    );
    let error = outbox.undelivered().await.unwrap()[0].delivery.last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!("mail through 127.0.0.1:{}", server.addr.port())),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_sign_in_is_a_failed_delivery_with_the_server_answer() {
    let (dir, server) =
        (tempfile::tempdir().unwrap(), FakeSmtp::start(Behaviour::RefuseAuth).await);
    let outbox = outbox(dir.path(), smtp(&server).name("mail")).await.unwrap();
    outbox.raise("x", revoked()).await.unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap().failed, 1);
    let pending = outbox.undelivered().await.unwrap();
    assert_eq!(pending[0].delivery.sink, "mail");
    let error = pending[0].delivery.last_error.clone().unwrap();
    assert!(error.contains("535") && error.contains("credentials invalid"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert!(server.ended(1).await[0].mail_from.is_none(), "no mail after the refusal");
}

#[tokio::test]
async fn a_server_that_says_nothing_fails_the_delivery_at_the_timeout() {
    let (dir, server) = (tempfile::tempdir().unwrap(), FakeSmtp::start(Behaviour::Silent).await);
    let quick = smtp(&server).timeout(Duration::from_millis(300));
    let outbox = outbox(dir.path(), quick).await.unwrap();
    outbox.raise("x", revoked()).await.unwrap();
    assert_eq!(outbox.deliver_due().await.unwrap().failed, 1);
    let error = outbox.undelivered().await.unwrap()[0].delivery.last_error.clone().unwrap();
    assert!(error.starts_with("mail through 127.0.0.1"), "{error}");
}

#[tokio::test]
async fn mail_config_mistakes_are_typed_errors() {
    let (dir, server) = (tempfile::tempdir().unwrap(), FakeSmtp::start(Behaviour::Accept).await);
    let err = outbox(dir.path(), smtp(&server).credentials_env("SMTP_USER", "NO_SUCH_VAR")).await;
    assert!(
        matches!(err.unwrap_err(), ConfigError::MissingEnv { var, .. } if var == "NO_SUCH_VAR")
    );
    let mut half = smtp(&server);
    half.password_env = None;
    let err = outbox(dir.path(), half).await.unwrap_err().to_string();
    assert!(err.contains("both `username_env` and `password_env`"), "{err}");
    let mut nobody = smtp(&server);
    nobody.to.clear();
    assert!(outbox(dir.path(), nobody).await.unwrap_err().to_string().contains("no recipient"));
    let mut bad = smtp(&server);
    bad.from = "not an address".to_owned();
    assert!(outbox(dir.path(), bad).await.unwrap_err().to_string().contains("`from`"));
}

#[test]
fn mail_servers_read_from_toml() {
    let text = r#"
        [[smtp]]
        host = "smtp.example.com"
        from = "unattended <jobs@example.com>"
        to = ["me@example.com"]
        username_env = "SMTP_USER"
        password_env = "SMTP_PASSWORD"
        [[smtp]]
        name = "relay"
        host = "localhost"
        tls = "none"
        port = 2525
        from = "jobs@localhost"
        to = ["root@localhost"]
    "#;
    let config: AlertsConfig = toml::from_str(text).unwrap();
    let (a, b) = (&config.smtp[0], &config.smtp[1]);
    assert_eq!((a.tls, a.port, a.timeout), (SmtpTls::Starttls, None, Duration::from_secs(30)));
    assert_eq!(a.password_env.as_deref(), Some("SMTP_PASSWORD"));
    assert_eq!((b.tls, b.port, b.name.as_deref()), (SmtpTls::None, Some(2525), Some("relay")));
    let err = toml::from_str::<AlertsConfig>(
        "[[smtp]]\nhost = \"h\"\nfrom = \"a@b\"\nto = []\npassword = \"x\"\n",
    );
    assert!(err.unwrap_err().to_string().contains("password"), "a password in the file is refused");
}
