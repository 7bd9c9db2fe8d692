//! The outbox: alerts written to the store first, delivered from there, retried until taken.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use unattended_core::Clock;
use unattended_core::clock::add_saturating;
use unattended_store::{AlertKind, Incident, NewAlert, PendingDelivery, Store, StoreError};

use crate::alert::{Alert, Notice};
use crate::command::CommandSink;
use crate::config::{AlertsConfig, ConfigError, Env};
use crate::sink::{AlertSink, LogSink, SinkError};
use crate::smtp::SmtpSink;
use crate::webhook::{Transport, WebhookSink};

/// Alerts for a human: one per incident and one on recovery, written to the [`Store`] before
/// any sink is tried and delivered from there, so an alert survives a crash and a sink that is
/// down.
///
/// - [`raise`](Self::raise) writes an alert and opens its incident in one transaction; an
///   incident already open raises nothing. [`recover`](Self::recover) closes an open incident
///   and writes one recovery alert.
/// - Each alert has one delivery per configured sink. [`deliver_due`](Self::deliver_due) hands
///   every due delivery to its sink (each sink gets its alerts in the order they were written,
///   the sinks side by side) and records the outcome.
/// - A failed delivery is tried again after `min(retry_first × 2^(n−1), retry_max)` (30 s
///   doubling to 1 h by default; `n` counts its failed attempts), times a random factor in
///   [0.8, 1.0] from a seedable generator, or later if the sink was told when to come back
///   (`Retry-After`). A delivery is never given up.
/// - [`run`](Self::run) (or [`spawn`](Self::spawn)) does that in a loop until shut down,
///   sleeping until the next delivery is due and woken at once when an alert is written. Run
///   one loop per store.
///
/// A delivery cut short (the process stopped while a sink was being called) is made again at
/// the next start, so a receiver may see an alert twice; its `id` tells.
///
/// Clones share everything.
///
/// # Example
///
/// ```
/// use unattended_alerts::{AlertsConfig, Notice, Outbox};
/// use unattended_core::Clock;
/// use unattended_store::{Store, StoreConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), Clock::system()).await?;
/// let outbox = Outbox::builder(store).config(AlertsConfig::default()).build()?;
/// let notice = Notice::new("upload cannot sign in", "the refresh token was revoked")
///     .task("upload")
///     .help("run `unattended auth google`");
/// assert!(outbox.raise("task:upload:auth", notice.clone()).await?.is_some());
/// assert!(outbox.raise("task:upload:auth", notice).await?.is_none(), "one per incident");
/// let report = outbox.deliver_due().await?; // the default sink logs it
/// assert_eq!((report.delivered, report.failed), (1, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    sinks: BTreeMap<String, Arc<dyn AlertSink>>,
    names: Vec<String>,
    wake: Notify,
    rng: Mutex<fastrand::Rng>,
    retry_first: Duration,
    retry_max: Duration,
    keep: usize,
}

/// What one [`Outbox::deliver_due`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Deliveries made.
    pub delivered: usize,
    /// Deliveries that failed (each will be tried again).
    pub failed: usize,
    /// When the next pending delivery is due, if any is pending.
    pub next_due: Option<Timestamp>,
}

impl Outbox {
    /// A builder over `store`: the log sink only until [`config`](OutboxBuilder::config) says
    /// otherwise.
    pub fn builder(store: Store) -> OutboxBuilder {
        OutboxBuilder {
            store,
            config: AlertsConfig::default(),
            clock: None,
            extra: Vec::new(),
            transport: None,
            seed: None,
            env: Arc::new(|var: &str| std::env::var(var).ok()),
        }
    }

    /// Raises an alert for `incident` (a key the caller chooses, such as `task:upload:auth`),
    /// stamped with the clock's time, and opens the incident, in one transaction. Returns the
    /// alert if the incident was not open; if it was, nothing is written and the answer is
    /// `None`. Wakes the delivery loop.
    ///
    /// # Errors
    ///
    /// The store could not write it (nothing was written).
    pub async fn raise(&self, incident: &str, notice: Notice) -> Result<Option<Alert>, StoreError> {
        self.record(incident, AlertKind::Raised, notice).await
    }

    /// Closes `incident` and writes one recovery alert, in one transaction, if the incident is
    /// open; otherwise nothing is written and the answer is `None`. Wakes the delivery loop.
    ///
    /// # Errors
    ///
    /// The store could not write it (nothing was written).
    pub async fn recover(
        &self,
        incident: &str,
        notice: Notice,
    ) -> Result<Option<Alert>, StoreError> {
        self.record(incident, AlertKind::Recovered, notice).await
    }

    async fn record(
        &self,
        incident: &str,
        kind: AlertKind,
        notice: Notice,
    ) -> Result<Option<Alert>, StoreError> {
        let new = NewAlert {
            incident: incident.to_owned(),
            kind,
            task: notice.task,
            title: notice.title,
            detail: notice.detail,
            help: notice.help,
            created_at: self.inner.clock.wall(),
        };
        let written = self.inner.store.record_alert(new, self.inner.names.clone()).await?;
        if written.is_some() {
            self.inner.wake.notify_one();
        }
        Ok(written.map(Alert::from))
    }

    /// The incidents open now, the oldest first, each with the alert that opened it.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.inner.store.open_incidents().await
    }

    /// The deliveries not made yet (for any sink, configured or not), the earliest due first,
    /// with their attempts and last error.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    pub async fn undelivered(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        self.inner.store.pending_deliveries().await
    }

    /// The configured sinks' names.
    pub fn sinks(&self) -> impl Iterator<Item = &str> {
        self.inner.names.iter().map(String::as_str)
    }

    /// The store the alerts are kept in.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Hands every due delivery to its sink and records each outcome; then prunes the
    /// delivered alerts beyond the newest `keep`. A delivery for a sink that is not configured
    /// (any more) fails and is kept.
    ///
    /// # Errors
    ///
    /// The store could not be read or an outcome could not be recorded (the delivery stays
    /// pending, and is made again).
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.inner.clock.wall();
        let mut due: BTreeMap<String, Vec<(Alert, u32)>> = BTreeMap::new();
        for p in self.inner.store.pending_deliveries().await? {
            if p.delivery.next_attempt_at <= now {
                due.entry(p.delivery.sink).or_default().push((p.alert.into(), p.delivery.attempts));
            }
        }
        let mut rounds = JoinSet::new();
        for (name, mut alerts) in due {
            alerts.sort_by_key(|(alert, _)| alert.id);
            let this = self.clone();
            rounds.spawn(async move { this.deliver_to(&name, alerts).await });
        }
        let (mut delivered, mut failed, mut first_error) = (0, 0, None);
        while let Some(joined) = rounds.join_next().await {
            match joined {
                Ok(Ok((d, f))) => (delivered, failed) = (delivered + d, failed + f),
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(e) => tracing::error!(error = %e, "an alert delivery round stopped"),
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if delivered > 0 {
            self.inner.store.prune_alerts(self.inner.keep).await?;
        }
        let pending = self.inner.store.pending_deliveries().await?;
        let next_due = pending.iter().map(|p| p.delivery.next_attempt_at).min();
        Ok(DeliveryReport { delivered, failed, next_due })
    }

    /// Delivers `alerts` (with their attempts so far) to the sink `name`, one after another.
    async fn deliver_to(
        &self,
        name: &str,
        alerts: Vec<(Alert, u32)>,
    ) -> Result<(usize, usize), StoreError> {
        let store = &self.inner.store;
        let sink = self.inner.sinks.get(name).cloned();
        let (mut delivered, mut failed) = (0, 0);
        for (alert, attempts) in alerts {
            let result = match &sink {
                Some(sink) => call(sink.clone(), alert.clone()).await,
                None => Err(SinkError::new(format!("no alert sink named {name} is configured"))),
            };
            let now = self.inner.clock.wall();
            match result {
                Ok(()) => {
                    store.mark_delivered(alert.id, name, now).await?;
                    tracing::debug!(sink = name, alert = alert.id.0, "alert delivered");
                    delivered += 1;
                }
                Err(error) => {
                    let failures = attempts.saturating_add(1);
                    let mut retry_at = add_saturating(now, self.retry_wait(failures));
                    if let Some(not_before) = error.retry_not_before() {
                        retry_at = retry_at.max(not_before);
                    }
                    store.mark_failed(alert.id, name, &error.to_string(), retry_at).await?;
                    tracing::warn!(
                        sink = name, alert = alert.id.0, attempt = failures, %retry_at, %error,
                        "alert delivery failed; it will be tried again"
                    );
                    failed += 1;
                }
            }
        }
        Ok((delivered, failed))
    }

    /// The wait after the `failures`th failed attempt: the doubling schedule, capped, times a
    /// random factor in [0.8, 1.0].
    fn retry_wait(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        let base = self
            .inner
            .retry_first
            .saturating_mul(1_u32 << doublings.min(31))
            .min(self.inner.retry_max);
        let draw = self.inner.rng.lock().unwrap_or_else(PoisonError::into_inner).f64();
        base.mul_f64(0.8 + 0.2 * draw)
    }

    /// Delivers what is due, then sleeps until the next delivery is due or an alert is
    /// written, until `shutdown` completes. A failure of the store is logged and the round
    /// tried again after `retry_first`.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let clock = self.inner.clock;
        loop {
            // Taken before the round, so an alert written during it wakes the next sleep.
            let wake = self.inner.wake.notified();
            let round = async {
                match self.deliver_due().await {
                    Ok(report) => report.next_due,
                    Err(error) => {
                        tracing::error!(%error, "alert deliveries could not be read or recorded");
                        Some(add_saturating(clock.wall(), self.inner.retry_first))
                    }
                }
            };
            let next = tokio::select! {
                biased;
                () = &mut shutdown => return,
                next = round => next,
            };
            let sleep = async move {
                match next {
                    Some(at) => clock.sleep_until_wall(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = wake => {}
                () = sleep => {}
            }
        }
    }

    /// Spawns [`run`](Self::run) on the current tokio runtime.
    pub fn spawn(&self, shutdown: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run(shutdown).await })
    }
}

/// Calls `sink` in a task of its own, so a sink that panics fails its delivery and nothing
/// else (and is stopped if the caller is dropped).
async fn call(sink: Arc<dyn AlertSink>, alert: Alert) -> Result<(), SinkError> {
    let mut task = JoinSet::new();
    task.spawn(async move { sink.deliver(&alert).await });
    match task.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(_)) | None => Err(SinkError::new("the alert sink panicked")),
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("store", &self.inner.store.path())
            .field("sinks", &self.inner.sinks.values().collect::<Vec<_>>())
            .field("retry_first", &self.inner.retry_first)
            .field("retry_max", &self.inner.retry_max)
            .field("keep", &self.inner.keep)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Outbox`]: its config, clock, extra sinks, webhook transport and seed.
pub struct OutboxBuilder {
    store: Store,
    config: AlertsConfig,
    clock: Option<Clock>,
    extra: Vec<Arc<dyn AlertSink>>,
    transport: Option<Transport>,
    seed: Option<u64>,
    env: Arc<Env>,
}

impl OutboxBuilder {
    /// The sinks, retry spacing and pruning from `config` (default: [`AlertsConfig::default`],
    /// the log sink only).
    #[must_use]
    pub fn config(mut self, config: AlertsConfig) -> Self {
        self.config = config;
        self
    }

    /// Stamps alerts and times deliveries with `clock` (default: the store's).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a sink of the caller's own, after the configured ones.
    #[must_use]
    pub fn sink(mut self, sink: impl AlertSink) -> Self {
        self.extra.push(Arc::new(sink));
        self
    }

    /// Sends the webhooks' requests through `transport` (see [`transport`](crate::transport))
    /// instead of HTTPS: an in-process service under a paused clock.
    #[must_use]
    pub fn webhook_transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Reads the variables the config names (`url_env`, `username_env`, `password_env`) with
    /// `lookup` instead of from the process environment (for tests, or secrets kept elsewhere).
    #[must_use]
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Seeds the retry jitter, for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the outbox and its sinks.
    ///
    /// # Errors
    ///
    /// A sink's config is invalid or names an environment variable that is not set, two sinks
    /// have one name, or the retry spacing is zero or its first wait above its longest.
    pub fn build(self) -> Result<Outbox, ConfigError> {
        let c = &self.config;
        let clock = self.clock.unwrap_or_else(|| self.store.clock());
        if c.retry_first.is_zero() || c.retry_first > c.retry_max {
            return Err(ConfigError::invalid(
                "alerts",
                "`retry_first` must be more than zero and at most `retry_max`",
            ));
        }
        let mut sinks: Vec<Arc<dyn AlertSink>> = Vec::new();
        if c.log {
            sinks.push(Arc::new(LogSink));
        }
        for (i, webhook) in c.webhook.iter().enumerate() {
            let name = webhook.name.clone().unwrap_or_else(|| format!("webhook:{i}"));
            let transport = self.transport.clone();
            let sink = WebhookSink::new(&name, webhook, clock, transport, self.seed, &*self.env)?;
            sinks.push(Arc::new(sink));
        }
        for (i, command) in c.command.iter().enumerate() {
            let name = command.name.clone().unwrap_or_else(|| format!("command:{i}"));
            sinks.push(Arc::new(CommandSink::new(&name, command, clock)?));
        }
        for (i, smtp) in c.smtp.iter().enumerate() {
            let name = smtp.name.clone().unwrap_or_else(|| format!("smtp:{i}"));
            sinks.push(Arc::new(SmtpSink::new(&name, smtp, clock, &*self.env)?));
        }
        sinks.extend(self.extra);
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        for sink in &sinks {
            let name = sink.name();
            if name.trim().is_empty() {
                return Err(ConfigError::invalid("alerts", "a sink's name is empty"));
            }
            if !seen.insert(name.to_owned()) {
                return Err(ConfigError::DuplicateName(name.to_owned()));
            }
            names.push(name.to_owned());
        }
        let rng = self.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Ok(Outbox {
            inner: Arc::new(Inner {
                store: self.store,
                clock,
                sinks: sinks.into_iter().map(|s| (s.name().to_owned(), s)).collect(),
                names,
                wake: Notify::new(),
                rng: Mutex::new(rng),
                retry_first: c.retry_first,
                retry_max: c.retry_max,
                keep: c.keep,
            }),
        })
    }
}

impl fmt::Debug for OutboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxBuilder")
            .field("config", &self.config)
            .field("extra", &self.extra)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}
