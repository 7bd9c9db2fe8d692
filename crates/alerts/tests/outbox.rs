//! The outbox under a paused clock: one alert per incident, one on recovery, delivery through a
//! webhook that is down, a crash between writing and delivering, the JSON shape, the config.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use support::{Down, Hook, clock, open, t0};
use tokio::sync::oneshot;
use unattended_alerts::{
    Alert, AlertKind, AlertSink, AlertsConfig, ConfigError, DeliverFuture, Notice, Outbox,
    SinkError, WebhookConfig,
};
use unattended_core::Clock;
use unattended_store::Store;

const HOOK: &str = "https://hooks.example.com/services/T1/B2/abc";

fn config(webhooks: usize) -> AlertsConfig {
    let mut config = AlertsConfig::default();
    config.webhook = (0..webhooks).map(|_| WebhookConfig::url(HOOK)).collect();
    config
}

fn outbox(store: Store, hook: &Hook, config: AlertsConfig) -> Outbox {
    Outbox::builder(store)
        .config(config)
        .webhook_transport(hook.transport())
        .seed(7)
        .build()
        .unwrap()
}

fn revoked() -> Notice {
    Notice::new("upload cannot sign in to YouTube", "the refresh token was revoked")
        .task("upload")
        .help("run `unattended auth google`")
}

/// Runs the delivery loop for `span` of simulated time.
async fn run_for(outbox: &Outbox, clock: Clock, span: Duration) {
    let (stop, stopped) = oneshot::channel::<()>();
    let loop_ = outbox.spawn(async move { stopped.await.unwrap_or(()) });
    clock.sleep(span).await;
    stop.send(()).unwrap();
    loop_.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_incident_raised_three_times_alerts_once() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config(1));

    let first = outbox.raise("task:upload:auth", revoked()).await.unwrap();
    let first = first.expect("a new incident raises an alert");
    clock.sleep(Duration::from_secs(60)).await;
    for _ in 0..2 {
        assert_eq!(outbox.raise("task:upload:auth", revoked()).await.unwrap(), None);
    }
    run_for(&outbox, clock, Duration::from_secs(3600)).await;
    assert_eq!(outbox.raise("task:upload:auth", revoked()).await.unwrap(), None, "still open");

    let taken = hook.taken();
    assert_eq!(taken.len(), 1, "one alert for the incident: {taken:?}");
    assert_eq!(taken[0].json["id"], first.id.0);
    assert_eq!(taken[0].at, t0() + SignedDuration::from_secs(60), "delivered when the loop ran");
    assert_eq!(outbox.store().alerts(10).await.unwrap().len(), 1);
    let open = outbox.open_incidents().await.unwrap();
    assert_eq!(
        (open.len(), open[0].key.as_str(), open[0].opened_at),
        (1, "task:upload:auth", t0())
    );
    assert_eq!(outbox.undelivered().await.unwrap(), [], "the log and the webhook took it");
    let deliveries = outbox.store().deliveries(first.id).await.unwrap();
    let sinks: Vec<_> = deliveries.iter().map(|d| (d.sink.as_str(), d.attempts)).collect();
    assert_eq!(sinks, [("log", 1), ("webhook:0", 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_recovery_alerts_once_and_only_for_an_open_incident() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config(1));
    let back = || Notice::new("upload signs in again", "a new refresh token was saved");

    assert_eq!(outbox.recover("task:upload:auth", back()).await.unwrap(), None, "never opened");
    let raised = outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();
    clock.sleep(Duration::from_secs(5)).await;
    let recovered = outbox.recover("task:upload:auth", back()).await.unwrap().unwrap();
    assert_eq!(
        (recovered.kind, recovered.at),
        (AlertKind::Recovered, t0() + SignedDuration::from_secs(5))
    );
    for _ in 0..2 {
        assert_eq!(outbox.recover("task:upload:auth", back()).await.unwrap(), None);
    }
    assert_eq!(outbox.open_incidents().await.unwrap(), []);
    run_for(&outbox, clock, Duration::from_secs(600)).await;

    let kinds: Vec<_> =
        hook.taken().iter().map(|r| (r.json["id"].clone(), r.json["kind"].clone())).collect();
    assert_eq!(
        kinds,
        [(raised.id.0.into(), "raised".into()), (recovered.id.0.into(), "recovered".into())],
        "in the order written"
    );
}

/// The waits documented on `Outbox`: `min(30 s × 2^(n−1), 1 h)` times [0.8, 1.0].
fn spacing(n: u32) -> (Duration, Duration) {
    let d = Duration::from_secs(30).saturating_mul(1 << (n - 1)).min(Duration::from_secs(3600));
    (d.mul_f64(0.8), d)
}

fn gap(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_webhook_down_for_ten_minutes_gets_the_alert_once_it_is_back() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let up_at = t0() + SignedDuration::from_mins(10);
    let hook = Hook::down_until(clock, Down::Status503, up_at);
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config(1));
    let alert = outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();

    run_for(&outbox, clock, Duration::from_secs(6 * 3600)).await;

    let received = hook.received();
    let times: Vec<_> = received.iter().map(|r| r.at).collect();
    // Tried at once, then after ~30 s, ~60 s, ~120 s, ~240 s (all while down: the longest
    // four waits end at 450 s), then after ~480 s (the shortest five end at 744 s): taken.
    assert_eq!(received.len(), 6, "{times:?}");
    assert_eq!(times[0], t0());
    for (n, pair) in (1..).zip(times.windows(2)) {
        let (least, most) = spacing(n);
        let waited = gap(pair[0], pair[1]);
        assert!(
            waited >= least && waited <= most + Duration::from_millis(1),
            "wait {n}: {waited:?}"
        );
    }
    let statuses: Vec<_> = received.iter().map(|r| r.answered.as_u16()).collect();
    assert_eq!(statuses, [503, 503, 503, 503, 503, 204]);
    assert!(times[5] >= up_at);
    assert!(received.iter().all(|r| r.json["id"] == alert.id.0), "the same alert each time");

    let deliveries = outbox.store().deliveries(alert.id).await.unwrap();
    let hook_delivery = deliveries.iter().find(|d| d.sink == "webhook:0").unwrap();
    assert_eq!((hook_delivery.attempts, hook_delivery.delivered_at), (6, Some(times[5])));
    assert_eq!(outbox.undelivered().await.unwrap(), []);
}

#[tokio::test(start_paused = true)]
async fn a_webhook_refusing_connections_gets_the_alert_exactly_once_when_back() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let up_at = t0() + SignedDuration::from_mins(10);
    let hook = Hook::down_until(clock, Down::Refused, up_at);
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config(1));
    let alert = outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();

    // While it is down, the delivery is pending with the reason, and retried.
    run_for(&outbox, clock, Duration::from_secs(5 * 60)).await;
    let pending = outbox.undelivered().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].delivery.attempts >= 3, "{pending:?}");
    let error = pending[0].delivery.last_error.clone().unwrap();
    assert!(error.contains("https://hooks.example.com"), "{error}");
    assert!(pending[0].delivery.next_attempt_at > clock.wall());

    run_for(&outbox, clock, Duration::from_secs(6 * 3600)).await;
    let taken = hook.taken();
    assert_eq!((taken.len(), hook.received().len()), (1, 1), "exactly once");
    assert!(taken[0].at >= up_at && taken[0].at < up_at + SignedDuration::from_mins(10));
    assert!(!hook.refused().is_empty());
    assert_eq!(outbox.undelivered().await.unwrap(), []);
    let delivered = outbox.store().deliveries(alert.id).await.unwrap();
    assert!(delivered.iter().all(|d| d.delivered_at.is_some()));
}

#[tokio::test(start_paused = true)]
async fn an_alert_written_before_a_crash_is_delivered_after_the_restart() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let path = dir.path().join("s.db");
    let hook = Hook::up(clock);
    {
        let outbox = outbox(open(&path, clock).await, &hook, config(1));
        outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();
        // The process dies here: no delivery was tried.
    }
    assert!(hook.received().is_empty());
    clock.sleep(Duration::from_secs(120)).await;

    let outbox = outbox(open(&path, clock).await, &hook, config(1));
    assert_eq!(outbox.undelivered().await.unwrap().len(), 2, "log and webhook, both pending");
    assert_eq!(outbox.raise("task:upload:auth", revoked()).await.unwrap(), None, "still open");
    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed, report.next_due), (2, 0, None));
    let taken = hook.taken();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].json["at"], "2026-11-28T10:00:00Z", "the time it was raised");
    assert_eq!(outbox.deliver_due().await.unwrap().delivered, 0, "once");
}

#[tokio::test(start_paused = true)]
async fn the_webhook_posts_the_documented_json() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config(1));
    let alert = outbox.raise("task:upload:auth", revoked()).await.unwrap().unwrap();
    outbox
        .recover("task:upload:auth", Notice::new("upload signs in again", "a new token"))
        .await
        .unwrap();
    outbox.deliver_due().await.unwrap();

    let taken = hook.taken();
    assert_eq!(taken[0].path, "/services/T1/B2/abc");
    assert_eq!(taken[0].content_type.as_deref(), Some("application/json"));
    let expected = serde_json::json!({
        "version": 1,
        "id": alert.id.0,
        "incident": "task:upload:auth",
        "kind": "raised",
        "task": "upload",
        "title": "upload cannot sign in to YouTube",
        "detail": "the refresh token was revoked",
        "help": "run `unattended auth google`",
        "at": "2026-11-28T10:00:00Z",
        "text": "[raised] upload cannot sign in to YouTube\nthe refresh token was revoked\nWhat to do: run `unattended auth google`",
    });
    assert_eq!(taken[0].json, expected);
    assert_eq!(alert.to_json(), expected);
    let recovered = &taken[1].json;
    assert_eq!(
        (recovered["kind"].as_str(), recovered["task"].is_null(), recovered["help"].is_null()),
        (Some("recovered"), true, true)
    );
    assert_eq!(recovered["text"], "[recovered] upload signs in again\na new token");
}

/// A sink that fails a given number of times, then takes every alert; it records what it got.
#[derive(Debug, Default)]
struct Flaky {
    failures_left: std::sync::Mutex<u32>,
    got: std::sync::Arc<std::sync::Mutex<Vec<(Timestamp, i64)>>>,
    clock: Option<Clock>,
    not_before: Option<Timestamp>,
}

impl AlertSink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
        Box::pin(async move {
            let now = self.clock.unwrap().wall();
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                let error = SinkError::new("busy");
                return Err(match self.not_before {
                    Some(at) => error.not_before(at),
                    None => error,
                });
            }
            self.got.lock().unwrap().push((now, alert.id.0));
            Ok(())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_names_a_time_is_not_tried_before_it() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let later = t0() + SignedDuration::from_mins(20);
    let flaky = Flaky {
        failures_left: 1.into(),
        clock: Some(clock),
        not_before: Some(later),
        ..Flaky::default()
    };
    let got = flaky.got.clone();
    let outbox =
        Outbox::builder(open(&dir.path().join("s.db"), clock).await).sink(flaky).build().unwrap();
    assert_eq!(outbox.sinks().collect::<Vec<_>>(), ["log", "flaky"]);
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();
    run_for(&outbox, clock, Duration::from_secs(3600)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, later, "at the time it named, not after 30 s");
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_panics_fails_its_delivery_only() {
    #[derive(Debug)]
    struct Panics;
    impl AlertSink for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn deliver<'a>(&'a self, _: &'a Alert) -> DeliverFuture<'a> {
            Box::pin(async { panic!("a bug in a sink") })
        }
    }
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let outbox = Outbox::builder(open(&dir.path().join("s.db"), clock).await)
        .config(config(1))
        .webhook_transport(hook.transport())
        .sink(Panics)
        .build()
        .unwrap();
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();
    let report = outbox.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (2, 1));
    assert_eq!(hook.taken().len(), 1);
    let pending = outbox.undelivered().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivery.sink, "panics");
    assert_eq!(pending[0].delivery.last_error.as_deref(), Some("the alert sink panicked"));
}

#[tokio::test(start_paused = true)]
async fn a_delivery_for_a_sink_no_longer_configured_is_kept_and_shown() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let path = dir.path().join("s.db");
    let hook = Hook::down_until(clock, Down::Status503, t0() + SignedDuration::from_hours(1));
    let first = outbox(open(&path, clock).await, &hook, config(1));
    first.raise("x", Notice::new("x", "y")).await.unwrap();
    drop(first);
    // Restarted with the webhook removed from the config.
    let second = outbox(open(&path, clock).await, &hook, config(0));
    let report = second.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 1));
    let pending = second.undelivered().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivery.sink, "webhook:0");
    let error = pending[0].delivery.last_error.as_deref().unwrap();
    assert_eq!(error, "no alert sink named webhook:0 is configured");
    assert!(report.next_due.unwrap() > clock.wall(), "not retried in a tight loop");
}

#[tokio::test(start_paused = true)]
async fn delivered_alerts_are_pruned_to_the_newest_kept() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let mut config = config(0);
    config.keep = 4;
    let outbox = outbox(open(&dir.path().join("s.db"), clock).await, &hook, config);
    for n in 0..10 {
        outbox.raise(&format!("i{n}"), Notice::new("x", "y")).await.unwrap();
        outbox.recover(&format!("i{n}"), Notice::new("x", "y")).await.unwrap();
        outbox.deliver_due().await.unwrap();
    }
    let left = outbox.store().alerts(100).await.unwrap();
    assert_eq!(left.len(), 4);
    assert_eq!(left[0].incident, "i9");
}

#[test]
fn the_config_reads_from_toml_with_documented_defaults() {
    let config: AlertsConfig = toml::from_str("").unwrap();
    assert_eq!(config, AlertsConfig::default());
    assert!(config.log);
    assert_eq!(
        (config.keep, config.retry_first, config.retry_max),
        (1000, Duration::from_secs(30), Duration::from_secs(3600))
    );

    let text = r#"
        log = false
        retry_first = "1m"
        [[webhook]]
        url_env = "HOOK_URL"
        [[webhook]]
        name = "chat"
        url = "https://chat.example.com/hooks/xyz"
        timeout = "5s"
    "#;
    let config: AlertsConfig = toml::from_str(text).unwrap();
    assert!(!config.log);
    assert_eq!(config.retry_first, Duration::from_secs(60));
    assert_eq!(config.webhook[0].url_env.as_deref(), Some("HOOK_URL"));
    assert_eq!(config.webhook[0].timeout, Duration::from_secs(60));
    assert_eq!(
        (config.webhook[1].name.as_deref(), config.webhook[1].timeout),
        (Some("chat"), Duration::from_secs(5))
    );
    let again: AlertsConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(again, config);

    let err =
        toml::from_str::<AlertsConfig>("[[webhook]]\nurl = \"https://a.example\"\nurll = 1\n");
    let err = err.unwrap_err().to_string();
    assert!(err.contains("urll") && err.contains("line 3"), "{err}");
    let err = toml::from_str::<AlertsConfig>("retry_max = \"soon\"").unwrap_err().to_string();
    assert!(err.contains("not a duration"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_bad_config_is_a_typed_error_without_the_url() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let store = open(&dir.path().join("s.db"), clock).await;
    let hook = Hook::up(clock);
    let build = |config: AlertsConfig| {
        let builder = Outbox::builder(store.clone()).config(config);
        builder.webhook_transport(hook.transport()).build().unwrap_err()
    };

    let mut c = config(0);
    c.webhook.push(WebhookConfig::url("ftp://files.example.com/secret-token"));
    let err = build(c);
    assert!(matches!(&err, ConfigError::Invalid { sink, .. } if sink == "webhook:0"), "{err}");
    assert!(!err.to_string().contains("secret-token"), "{err}");

    let mut c = config(0);
    c.webhook.push(WebhookConfig::url("https://hooks.example.com/\u{7f}secret-token"));
    let err = build(c).to_string();
    assert!(err.contains("not valid") && !err.contains("secret-token"), "{err}");

    let mut c = config(0);
    c.webhook.push(WebhookConfig::url_env("UNATTENDED_TEST_NO_SUCH_VARIABLE"));
    assert!(
        matches!(build(c), ConfigError::MissingEnv { var, .. } if var == "UNATTENDED_TEST_NO_SUCH_VARIABLE")
    );

    let mut c = config(0);
    c.webhook.push(WebhookConfig::url(HOOK).name("log"));
    assert!(matches!(build(c), ConfigError::DuplicateName(name) if name == "log"));

    let mut c = config(0);
    c.retry_first = Duration::from_secs(7200);
    assert!(matches!(build(c), ConfigError::Invalid { .. }));

    let debug = format!("{:?}", WebhookConfig::url(HOOK));
    assert!(debug.contains("https://hooks.example.com") && !debug.contains("abc"), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn a_webhook_url_from_a_variable_is_read_through_the_lookup() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), clock());
    let hook = Hook::up(clock);
    let mut config = config(0);
    config.webhook.push(WebhookConfig::url_env("ALERT_HOOK").name("chat"));
    let outbox = Outbox::builder(open(&dir.path().join("s.db"), clock).await)
        .config(config)
        .webhook_transport(hook.transport())
        .env(|var| {
            (var == "ALERT_HOOK").then(|| "https://chat.example.com/hooks/xyz?k=1".to_owned())
        })
        .build()
        .unwrap();
    assert_eq!(outbox.sinks().collect::<Vec<_>>(), ["log", "chat"]);
    outbox.raise("x", Notice::new("x", "y")).await.unwrap();
    outbox.deliver_due().await.unwrap();
    assert_eq!(hook.taken()[0].path, "/hooks/xyz?k=1");
}
