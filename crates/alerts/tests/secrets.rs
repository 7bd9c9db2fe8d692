//! A webhook URL's secret parts (path and query) never reach a log line or a stored error, at any
//! log level. Alone in its binary: `tracing` caches per callsite whether it is enabled.

mod support;

use std::time::Duration;

use jiff::SignedDuration;
use support::{Down, Hook, clock, open, t0};
use tokio::sync::oneshot;
use unattended_alerts::{AlertsConfig, Notice, Outbox, WebhookConfig};
use unattended_testkit::capture::Buffer;

const SECRET_PATH: &str = "T0001/B0002/XsecretPathX";
const SECRET_QUERY: &str = "XsecretQueryX";

#[tokio::test(start_paused = true)]
async fn the_webhook_url_is_never_logged_nor_stored() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let url = format!("https://hooks.example.com/services/{SECRET_PATH}?token={SECRET_QUERY}");
    let mut config = AlertsConfig::default();
    config.webhook = vec![WebhookConfig::url(&url)];
    // Refused (by a first process), then 503, then taken: every failure logs and stores an
    // error.
    let refused = Hook::down_until(clock, Down::Refused, t0() + SignedDuration::from_hours(99));
    let unavailable =
        Hook::down_until(clock, Down::Status503, t0() + SignedDuration::from_mins(20));
    let store = open(&dir.path().join("s.db"), clock).await;
    let first = Outbox::builder(store.clone())
        .config(config.clone())
        .webhook_transport(refused.transport())
        .build()
        .unwrap();
    first.raise("task:upload:auth", Notice::new("cannot sign in", "revoked")).await.unwrap();
    for _ in 0..3 {
        first.deliver_due().await.unwrap();
        clock.sleep(Duration::from_secs(60)).await;
    }
    let outbox = Outbox::builder(store)
        .config(config)
        .webhook_transport(unavailable.transport())
        .build()
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let deliveries = outbox.spawn(async move { stopped.await.unwrap_or(()) });
    let pending = outbox.undelivered().await.unwrap();
    clock.sleep(Duration::from_secs(3 * 3600)).await;
    stop.send(()).unwrap();
    deliveries.await.unwrap();

    assert_eq!(unavailable.taken().len(), 1, "delivered in the end");
    assert!(unavailable.received().len() > 1 && !refused.refused().is_empty(), "and failed first");
    let mut texts = buffer.lines();
    texts.push(format!("{outbox:?}"));
    for p in &pending {
        texts.push(format!("{p:?}"));
    }
    for d in outbox.store().deliveries(pending[0].alert.id).await.unwrap() {
        texts.push(format!("{d:?}"));
    }
    let joined = texts.join("\n");
    assert!(joined.contains("alert: cannot sign in"), "the log sink's line is captured");
    assert!(joined.contains("alert delivery failed"), "failures are captured");
    assert!(joined.contains("https://hooks.example.com"), "the origin is shown");
    for secret in [SECRET_PATH, SECRET_QUERY, "XsecretPathX"] {
        let leaks: Vec<_> = texts.iter().filter(|t| t.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} leaked: {leaks:#?}");
    }
}
