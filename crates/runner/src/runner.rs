//! The scheduler loop: starts due runs in their own tasks, records how they end, watches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use unattended_client::Client;
use unattended_core::clock::add_saturating;
use unattended_core::{Clock, Disposition};
use unattended_store::{
    Claim, Holder, RunEnd, RunId, RunOutcome, StateStore, Store, StoreConfig, TaskState, TaskStatus,
};

use crate::alerting::{AlertNote, Alerter};
use crate::config::{RunnerConfig, TaskSpec};
use crate::context::{LiveTask, TaskContext};
use crate::engine::TaskError;
use crate::error::RunnerError;
use crate::machine::{self, AlertAction, Ending};
use crate::monitor::{self, Probe};
use crate::services::{Env, Services, Transport, Transports};

/// Builds a [`Runner`] from a checked config.
pub struct RunnerBuilder {
    config: RunnerConfig,
    clock: Clock,
    seed: Option<u64>,
    store: Option<Store>,
    transports: Transports,
    probe: Probe,
    on_watch: Option<Arc<dyn Fn() + Send + Sync>>,
    env: Env,
}

impl std::fmt::Debug for RunnerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBuilder")
            .field("config", &self.config.file)
            .field("clock", &self.clock)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transports")
    }
}

impl RunnerBuilder {
    /// Reads time through `clock` (a paused test clock runs weeks in seconds).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds every random choice (start jitter, the clients' jitter, the OAuth token caches'
    /// refresh skew, runs' random sources), so the same seed gives the same run.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Uses `store` instead of opening the config's `[state] path`.
    #[must_use]
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Sends the requests of service `name` through `transport` (for the OAuth token endpoint
    /// of credential `C`, the name is `oauth:C`; for ping URLs, `ping`; for alert webhooks,
    /// `alerts`).
    #[must_use]
    pub fn transport(mut self, name: &str, transport: Transport) -> Self {
        self.transports.set(name, transport);
        self
    }

    /// Sends the requests of every service without a transport of its own through `transport`.
    #[must_use]
    pub fn fallback_transport(mut self, transport: Transport) -> Self {
        self.transports.set_fallback(transport);
        self
    }

    /// Reads the environment variables the config names (OAuth client ids and secrets, the API
    /// keys of `auth.token_env`) through `env` instead of the process's environment (tests and
    /// simulations give fixed values).
    #[must_use]
    pub fn environment(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Env(Arc::new(env));
        self
    }

    /// Reads the process's resident memory and the store's free disk through these functions
    /// instead of the system's (tests give fixed readings).
    #[must_use]
    pub fn monitor_readings(
        mut self,
        rss: impl Fn() -> Option<u64> + Send + Sync + 'static,
        free_disk: impl Fn(&std::path::Path) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.probe = Probe::new(rss, free_disk);
        self
    }

    /// Calls `tick` at the end of every monitor round: a sign that the runner's own loop is
    /// alive (for a systemd watchdog).
    #[must_use]
    pub fn on_watch(mut self, tick: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_watch = Some(Arc::new(tick));
        self
    }

    /// Opens the store (unless one was given) and builds the clients.
    ///
    /// # Errors
    ///
    /// The store cannot be opened, a service's settings cannot be used, or an environment
    /// variable they name is missing.
    pub async fn build(self) -> Result<Runner, RunnerError> {
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let store = match self.store {
            Some(store) => store,
            None => {
                let env = self.env.clone();
                let location = self.config.state.location(|var| (env.0)(var))?;
                Store::open_location(&location, StoreConfig::new(), self.clock).await?
            }
        };
        // Runs, leases and held services are written under this runner's name.
        let store = store.with_holder(Holder::this_process(self.config.runner.name.as_deref()));
        let shared = store.is_shared();
        let services =
            Services::build(&self.config, self.clock, seed, &store, &self.transports, &self.env)?;
        // Open breakers and pauses outlive the process: restored now, saved after each run.
        let mut saver = unattended_store::StateSaver::builder(store.clone());
        for (name, client) in &services.clients {
            if let Some(breakers) = client.breakers() {
                saver = saver.breakers(name.clone(), breakers.clone());
            }
            saver = saver.pauses(name.clone(), client.pauses());
        }
        // On a shared store, what one runner learns reaches the others within about a second.
        if shared {
            saver = saver.follow(Some(FOLLOW_EVERY));
        }
        let (saver, _restored) = saver.start().await?;
        let ping = match (self.config.tasks.iter().any(|t| t.ping.is_some()), &self.transports) {
            (false, _) => None,
            (true, transports) => Some(crate::services::ping_client(self.clock, seed, transports)?),
        };
        let mut outbox = unattended_alerts::Outbox::builder(store.clone())
            .config(self.config.alerts.clone())
            .clock(self.clock)
            .seed(seed);
        if let Some(t) = self.transports.get("alerts") {
            outbox = outbox.webhook_transport(t);
        }
        let outbox = outbox.build().map_err(|e| RunnerError::Invalid {
            what: "[alerts]".to_owned(),
            problem: e.to_string(),
        })?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let now = self.clock.wall();
        let tasks = self
            .config
            .tasks
            .iter()
            .map(|spec| {
                let clients = spec
                    .services
                    .iter()
                    .filter_map(|(role, service)| {
                        services.clients.get(service).map(|c| (role.clone(), c.clone()))
                    })
                    .collect();
                TaskSlot {
                    spec: spec.clone(),
                    clients: Arc::new(clients),
                    live: Arc::new(LiveTask::default()),
                    status: TaskStatus::new(TaskState::Idle, now),
                    next_start: None,
                    planned_slot: None,
                    running: None,
                    watched_since: now,
                    late: false,
                    seed: rng.u64(..),
                }
            })
            .collect();
        let alerter = Arc::new(Alerter::new(outbox));
        let tasks: Vec<TaskSlot> = tasks;
        let view = RunnerView {
            inner: Arc::new(ViewInner {
                clock: self.clock,
                names: tasks
                    .iter()
                    .map(|t| (t.spec.name.clone(), t.spec.engine_name.clone()))
                    .collect(),
                live: tasks.iter().map(|t| t.live.clone()).collect(),
                state: std::sync::Mutex::new(
                    tasks.iter().map(|t| (t.status.clone(), None, None)).collect(),
                ),
                metrics: std::sync::Mutex::new(crate::metrics::Metrics::default()),
                alerter: alerter.clone(),
                clients: services.clients.clone(),
            }),
        };
        Ok(Runner {
            view,
            config: Arc::new(self.config),
            store,
            clock: self.clock,
            services,
            saver,
            ping,
            alerter,
            tasks,
            rng,
            probe: self.probe,
            on_watch: self.on_watch,
        })
    }
}

/// A shared, cheap-to-clone view of a running [`Runner`]: its tasks, the alerts it raised, the
/// services held back, and Prometheus metrics.
#[derive(Clone, Debug)]
pub struct RunnerView {
    inner: Arc<ViewInner>,
}

#[derive(Debug)]
struct ViewInner {
    clock: Clock,
    names: Vec<(String, String)>,
    live: Vec<Arc<LiveTask>>,
    state: std::sync::Mutex<Vec<(TaskStatus, Option<Timestamp>, Option<Timestamp>)>>,
    metrics: std::sync::Mutex<crate::metrics::Metrics>,
    alerter: Arc<Alerter>,
    clients: BTreeMap<String, Client>,
}

/// A service held back now: an open breaker or a rate-limit pause.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldView {
    /// The service's name in the config.
    pub service: String,
    /// `"breaker"` or `"pause"`.
    pub kind: &'static str,
    /// The host (service key).
    pub key: String,
    /// Until when.
    pub until: Timestamp,
}

impl RunnerView {
    fn lock_state(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(TaskStatus, Option<Timestamp>, Option<Timestamp>)>> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_task(
        &self,
        index: usize,
        status: TaskStatus,
        next: Option<Timestamp>,
        running: Option<Timestamp>,
    ) {
        if let Some(slot) = self.lock_state().get_mut(index) {
            *slot = (status, next, running);
        }
    }

    pub(crate) fn metrics_mut(&self) -> std::sync::MutexGuard<'_, crate::metrics::Metrics> {
        self.inner.metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every task, as the runner last wrote it, with a running task's progress.
    pub fn tasks(&self) -> Vec<TaskView> {
        let state = self.lock_state().clone();
        self.inner
            .names
            .iter()
            .zip(state)
            .zip(&self.inner.live)
            .map(|(((name, engine), (status, next_start, running_since)), live)| TaskView {
                name: name.clone(),
                engine: engine.clone(),
                status,
                next_start,
                running_since,
                progress: running_since.and_then(|_| live.progress()),
                last_heartbeat: live.last_beat(),
            })
            .collect()
    }

    /// The alerts raised and recoveries reported by this runner.
    pub fn alerts(&self) -> Vec<AlertNote> {
        self.inner.alerter.said()
    }

    /// Open breakers and paused hosts, now.
    pub fn held(&self) -> Vec<HeldView> {
        let now = self.inner.clock.wall();
        let mut out = Vec::new();
        for (service, client) in &self.inner.clients {
            if let Some(breakers) = client.breakers() {
                for b in breakers.snapshot() {
                    if b.until > now {
                        out.push(HeldView {
                            service: service.clone(),
                            kind: "breaker",
                            key: b.key.to_string(),
                            until: b.until,
                        });
                    }
                }
            }
            for p in client.pauses().snapshot(now) {
                out.push(HeldView {
                    service: service.clone(),
                    kind: "pause",
                    key: p.key.to_string(),
                    until: p.until,
                });
            }
        }
        out
    }

    /// The runner's metrics in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let tasks = self.tasks();
        let held = self.held();
        let now = self.inner.clock.wall();
        self.metrics_mut().render(&tasks, &held, self.alerts().len(), now)
    }
}

/// What the runner keeps of one task.
struct TaskSlot {
    spec: TaskSpec,
    clients: Arc<BTreeMap<String, Client>>,
    live: Arc<LiveTask>,
    status: TaskStatus,
    /// When its next run starts (jitter included); none while running or disabled.
    next_start: Option<Timestamp>,
    /// The schedule slot that run serves, when it is a planned one (not a retry).
    planned_slot: Option<Timestamp>,
    running: Option<Running>,
    watched_since: Timestamp,
    /// Whether its "late" incident is open.
    late: bool,
    seed: u64,
}

/// The OAuth credentials of `task`'s services whose refresh token was refused for good.
fn refused_credentials(config: &RunnerConfig, services: &Services, task: &TaskSpec) -> Vec<String> {
    let mut refused: Vec<String> = task
        .services
        .values()
        .filter_map(|s| config.services.get(s)?.oauth.as_ref())
        .map(|o| o.credential.clone())
        .filter(|c| services.credentials.get(c).is_some_and(|(cache, _)| cache.is_revoked()))
        .collect();
    refused.sort();
    refused.dedup();
    refused
}

struct Running {
    run: RunId,
    slot: Timestamp,
    started: Timestamp,
    cancel: CancellationToken,
    /// When its lease is renewed next.
    renew_at: Timestamp,
    /// Until when its lease holds, as last renewed.
    held_until: Timestamp,
    /// Another runner took the task over (this one stalled past its lease): the run is
    /// stopped, and its end does not overwrite the new holder's state.
    lost: bool,
}

/// How often a runner on a shared store writes and reads breakers and pauses.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// A run that ended, as its supervisor reports it.
struct Finished {
    index: usize,
    ending: Ending,
}

/// A task as the running runner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskView {
    /// The task's name.
    pub name: String,
    /// Its engine's name.
    pub engine: String,
    /// Its state, as last written to the store.
    pub status: TaskStatus,
    /// When its next run starts, jitter included.
    pub next_start: Option<Timestamp>,
    /// Since when it is running, if it is.
    pub running_since: Option<Timestamp>,
    /// The running run's last progress report.
    pub progress: Option<crate::context::Progress>,
    /// The running run's last sign of life (start, progress, checkpoint save).
    pub last_heartbeat: Option<Timestamp>,
}

/// How a `once` run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnceOutcome {
    /// The run's record.
    pub end: RunEnd,
    /// The task's state after it.
    pub state: TaskState,
}

/// The long-lived runner: owns time (schedules), isolation (one tokio task per run), memory of
/// what happened (the store) and what to do with a failure (the disposition).
pub struct Runner {
    config: Arc<RunnerConfig>,
    store: Store,
    clock: Clock,
    services: Services,
    saver: unattended_store::StateSaver,
    ping: Option<Client>,
    alerter: Arc<Alerter>,
    tasks: Vec<TaskSlot>,
    rng: fastrand::Rng,
    probe: Probe,
    on_watch: Option<Arc<dyn Fn() + Send + Sync>>,
    view: RunnerView,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config.file)
            .field("tasks", &self.tasks.iter().map(|t| &t.spec.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A builder for `config`.
    pub fn builder(config: RunnerConfig) -> RunnerBuilder {
        RunnerBuilder {
            config,
            clock: Clock::system(),
            seed: None,
            store: None,
            transports: Transports::default(),
            probe: Probe::system(),
            on_watch: None,
            env: Env::process(),
        }
    }

    /// The store the runner records into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The client of service `name`.
    pub fn client(&self, name: &str) -> Option<&Client> {
        self.services.clients.get(name)
    }

    /// What the runner knows of each task right now: its state, and for a running task its
    /// last progress report and heartbeat.
    pub fn tasks(&self) -> Vec<TaskView> {
        self.view.tasks()
    }

    /// A handle on what the runner knows right now, for a live view, a status page or metrics
    /// while [`run`](Self::run) goes on (clones share it).
    pub fn view(&self) -> RunnerView {
        self.view.clone()
    }

    /// Copies task `index`'s state into the view.
    fn publish(&self, index: usize) {
        let t = &self.tasks[index];
        self.view.set_task(
            index,
            t.status.clone(),
            t.next_start,
            t.running.as_ref().map(|r| r.started),
        );
    }

    /// Saves the clients' open breakers and pauses to the store now (the runner also does it
    /// after every run and monitor round).
    ///
    /// # Errors
    ///
    /// The store could not write them.
    pub async fn save_state(&self) -> Result<(), RunnerError> {
        Ok(self.saver.save_now().await?)
    }

    /// The alerts raised and recoveries reported so far by this runner.
    pub fn alerts(&self) -> Vec<AlertNote> {
        self.alerter.said()
    }

    /// Runs until `shutdown` fires: then stops scheduling, asks running tasks to stop, gives
    /// them the config's grace period to save their checkpoints, and returns.
    ///
    /// # Errors
    ///
    /// The store failed (a full disk, a damaged file): the runner cannot keep its promises and
    /// stops.
    pub async fn run(&mut self, shutdown: CancellationToken) -> Result<(), RunnerError> {
        // Alerts are delivered from the store while the runner goes on, and once more at the end.
        let deliveries_stop = CancellationToken::new();
        let stop = deliveries_stop.clone();
        let deliveries = self.alerter.outbox().spawn(async move { stop.cancelled().await });
        let result = self.schedule(shutdown).await;
        deliveries_stop.cancel();
        let _ = deliveries.await;
        result
    }

    async fn schedule(&mut self, shutdown: CancellationToken) -> Result<(), RunnerError> {
        self.start_up().await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let interval = self.config.monitor.interval;
        let mut next_watch = self.clock.wall();
        let mut stopping: Option<Timestamp> = None;
        loop {
            let now = self.clock.wall();
            if stopping.is_none() {
                for index in 0..self.tasks.len() {
                    if self.tasks[index].next_start.is_some_and(|t| t <= now) {
                        self.start(index, &tx, &shutdown).await?;
                    }
                }
                if now >= next_watch {
                    self.watch(now).await?;
                    next_watch = add_saturating(now, interval);
                }
            }
            self.renew_leases(now).await;
            let running = self.tasks.iter().filter(|t| t.running.is_some()).count();
            if stopping.is_some() && running == 0 {
                return Ok(());
            }
            // Claims of running tasks are renewed, during a shutdown's grace too.
            let renewals = self
                .tasks
                .iter()
                .filter_map(|t| t.running.as_ref().filter(|r| !r.lost).map(|r| r.renew_at))
                .fold(Timestamp::MAX, Timestamp::min);
            let wake = if stopping.is_some() {
                renewals
            } else {
                self.tasks
                    .iter()
                    .filter_map(|t| t.next_start)
                    .fold(next_watch.min(renewals), Timestamp::min)
            };
            let sleep = self.clock.sleep_until(self.clock.instant_at(wake));
            tokio::select! {
                biased;
                () = shutdown.cancelled(), if stopping.is_none() => {
                    tracing::info!(running, "shutting down: no new runs; running ones may save their checkpoints");
                    stopping = Some(self.clock.wall());
                    for t in &self.tasks {
                        if let Some(r) = &t.running {
                            r.cancel.cancel();
                        }
                    }
                }
                Some(done) = rx.recv() => {
                    self.finish(done).await?;
                }
                () = sleep => {}
            }
        }
    }

    /// Runs task `name` once now, whatever its schedule, and records it as `run` would (for
    /// people who keep cron; state, breakers and checkpoints carry across invocations).
    ///
    /// # Errors
    ///
    /// No such task, or the store failed.
    pub async fn once(&mut self, name: &str) -> Result<OnceOutcome, RunnerError> {
        let Some(index) = self.tasks.iter().position(|t| t.spec.name == name) else {
            let known: Vec<&str> = self.tasks.iter().map(|t| t.spec.name.as_str()).collect();
            return Err(RunnerError::UnknownTask {
                name: name.to_owned(),
                known: known.join(", "),
            });
        };
        self.store.abandon_unfinished_runs().await?;
        self.load_status(index).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let never = CancellationToken::new();
        self.start_now(index, &tx, &never, true).await?;
        let done = rx.recv().await.expect("the run's supervisor always reports");
        let end = self.finish(done).await?;
        if let Err(error) = self.alerter.outbox().deliver_due().await {
            tracing::error!(%error, "alerts could not be delivered now; the next runner delivers them");
        }
        Ok(OnceOutcome { end, state: self.tasks[index].status.state })
    }

    /// Reads every task's state and works out its first run.
    async fn start_up(&mut self) -> Result<(), RunnerError> {
        let abandoned = self.store.abandon_unfinished_runs().await?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "runs were cut short by the previous process's end; their tasks resume from their checkpoints"
            );
        }
        for index in 0..self.tasks.len() {
            self.load_status(index).await?;
            let now = self.clock.wall();
            let slot = &mut self.tasks[index];
            let name = slot.spec.name.clone();
            if !slot.spec.enabled {
                tracing::info!(task = %name, "disabled in the config");
                slot.next_start = None;
                continue;
            }
            // A task another runner sharing the state runs now is that runner's: its state is
            // written only under a claim.
            let lease = self.config.state.lease;
            match self.store.claim(&name, lease).await? {
                Claim::Granted { .. } => self.load_status(index).await?,
                held => {
                    let until = match held {
                        Claim::Held(l) => {
                            tracing::info!(task = %name, runner = %l.holder, until = %l.expires_at, "running in another runner; looking again when its claim ends");
                            l.expires_at
                        }
                        _ => now,
                    };
                    self.tasks[index].next_start =
                        Some(until.max(add_saturating(now, Duration::from_secs(1))));
                    self.publish(index);
                    continue;
                }
            }
            let slot = &mut self.tasks[index];
            let status = &slot.status;
            let next = match status.state {
                TaskState::Running => {
                    tracing::warn!(task = %name, "its last run was cut short; resuming from its checkpoint");
                    Some(now)
                }
                TaskState::Disabled => {
                    tracing::warn!(task = %name, reason = status.reason.as_deref().unwrap_or(""), "disabled until a human acts");
                    None
                }
                TaskState::Cooldown | TaskState::Deferred | TaskState::Failed => {
                    Some(status.next_run.map_or(now, |t| t.max(now)))
                }
                TaskState::Idle if status.reason.is_some() && status.next_run.is_some() => {
                    Some(status.next_run.map_or(now, |t| t.max(now)))
                }
                _ => match slot.spec.schedule.plan(status.last_slot, now) {
                    Some(plan) => {
                        slot.planned_slot = Some(plan.slot);
                        if plan.missed > 0 {
                            tracing::info!(task = %name, missed = plan.missed, catch_up = plan.start == now, "slots were missed while the runner was down");
                        }
                        let start = plan.start;
                        Some(self.jittered(index, start))
                    }
                    None => None,
                },
            };
            let slot = &mut self.tasks[index];
            slot.next_start = next;
            if slot.status.state == TaskState::Running {
                slot.status.state = TaskState::Idle;
                slot.status.reason = Some("its last run was cut short; resuming".to_owned());
                slot.status.run = None;
            }
            slot.status.next_run = next;
            let (name, status) = (slot.spec.name.clone(), slot.status.clone());
            self.store.set_task_state(&name, status).await?;
            self.store.release(&name).await?;
            self.publish(index);
            tracing::info!(task = %name, next_run = ?next, "scheduled");
        }
        Ok(())
    }

    async fn load_status(&mut self, index: usize) -> Result<(), RunnerError> {
        let name = self.tasks[index].spec.name.clone();
        if let Some(status) = self.store.task_state(&name).await? {
            self.tasks[index].status = status;
        }
        Ok(())
    }

    fn jittered(&mut self, index: usize, at: Timestamp) -> Timestamp {
        let max = self.tasks[index].spec.schedule.max_jitter();
        if max.is_zero() {
            return at;
        }
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        add_saturating(at, Duration::from_nanos(self.rng.u64(0..=nanos)))
    }

    /// Starts task `index` if its window is open (else defers it to the opening).
    async fn start(
        &mut self,
        index: usize,
        tx: &mpsc::UnboundedSender<Finished>,
        shutdown: &CancellationToken,
    ) -> Result<(), RunnerError> {
        let now = self.clock.wall();
        let slot = &mut self.tasks[index];
        if slot.running.is_some() {
            return Ok(());
        }
        if let Some(window) = &slot.spec.window
            && !window.calendar.is_open(now)
        {
            let opens = window.calendar.next_open(now);
            slot.next_start = opens;
            slot.status.state = TaskState::Deferred;
            slot.status.since = now;
            slot.status.next_run = opens;
            slot.status.reason = Some(match opens {
                Some(at) => format!("window {} is closed; it opens at {at}", window.name),
                None => format!("window {} never opens again", window.name),
            });
            tracing::info!(task = %slot.spec.name, until = ?opens, "deferred: outside its window");
            let (name, status) = (slot.spec.name.clone(), slot.status.clone());
            self.store.set_task_state(&name, status).await?;
            self.publish(index);
            return Ok(());
        }
        self.start_now(index, tx, shutdown, false).await
    }

    /// Claims task `index` and starts its run. A task another runner holds, or has run since
    /// this one last looked, is not started: it is looked at again when that claim ends, or
    /// when the state says (unless `forced`: `once`, which fails instead when it is held).
    async fn start_now(
        &mut self,
        index: usize,
        tx: &mpsc::UnboundedSender<Finished>,
        shutdown: &CancellationToken,
        forced: bool,
    ) -> Result<(), RunnerError> {
        if !self.claim(index, forced).await? {
            return Ok(());
        }
        let now = self.clock.wall();
        let lease = self.config.state.lease;
        let (store, clock, grace) =
            (self.store.clone(), self.clock, self.config.runner.shutdown_grace);
        let slot = &mut self.tasks[index];
        let name = slot.spec.name.clone();
        // The slot this run serves: the planned one, else the latest one due, else (a retry)
        // the last one again.
        let served = match (slot.planned_slot.take(), slot.status.last_slot) {
            (Some(planned), _) => planned,
            (None, Some(last)) => slot.spec.schedule.latest_slot(last, now).unwrap_or(last),
            (None, None) => now,
        };
        let run = store.start_run(&name).await?;
        let checkpoint = store.load_checkpoint(&name).await?.map(|c| (c.value, c.version));
        slot.status.state = TaskState::Running;
        slot.status.since = now;
        slot.status.run = Some(run);
        slot.status.next_run = None;
        slot.next_start = None;
        store.set_task_state(&name, slot.status.clone()).await?;
        let cancel = shutdown.child_token();
        slot.running = Some(Running {
            run,
            slot: served,
            started: now,
            cancel: cancel.clone(),
            renew_at: add_saturating(now, lease / 3),
            held_until: add_saturating(now, lease),
            lost: false,
        });
        slot.live.clear();
        slot.live.beat(now);
        slot.seed = slot.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let cx = TaskContext::new(
            name.clone().into(),
            run,
            clock,
            slot.clients.clone(),
            store,
            checkpoint,
            cancel.clone(),
            slot.live.clone(),
            slot.seed,
            slot.status.failures,
        );
        tracing::info!(task = %name, run = run.0, slot = %served, "run started");
        self.publish(index);
        self.ping(index, "/start");
        let engine = self.tasks[index].spec.engine.clone();
        let max_runtime = self.tasks[index].spec.max_runtime;
        let tx = tx.clone();
        tokio::spawn(async move {
            let ending = supervise(engine, cx, clock, max_runtime, cancel, grace).await;
            let _ = tx.send(Finished { index, ending });
        });
        Ok(())
    }

    /// Claims task `index` for a run; `false` (and when to look again) if it must not start.
    async fn claim(&mut self, index: usize, forced: bool) -> Result<bool, RunnerError> {
        let now = self.clock.wall();
        let name = self.tasks[index].spec.name.clone();
        let lease = self.config.state.lease;
        let again = |at: Timestamp| Some(at.max(add_saturating(now, Duration::from_secs(1))));
        match self.store.claim(&name, lease).await? {
            Claim::Granted { took_over } => {
                if let Some(earlier) = took_over {
                    tracing::warn!(task = %name, runner = %earlier, "took the task over: its runner stopped renewing its claim; resuming from the checkpoint");
                }
            }
            Claim::Held(held) => {
                if forced {
                    return Err(RunnerError::HeldElsewhere {
                        task: name,
                        holder: held.holder.to_string(),
                        until: held.expires_at,
                    });
                }
                tracing::debug!(task = %name, runner = %held.holder, until = %held.expires_at, "running in another runner");
                self.tasks[index].next_start = again(held.expires_at);
                self.publish(index);
                return Ok(false);
            }
            _ => {
                if forced {
                    return Err(RunnerError::HeldElsewhere {
                        task: name,
                        holder: "another runner, claiming it now".to_owned(),
                        until: now,
                    });
                }
                self.tasks[index].next_start = again(now);
                return Ok(false);
            }
        }
        // The state is the truth: another runner may have run the task since this one
        // planned it, or disabled it.
        let Some(stored) = self.store.task_state(&name).await? else { return Ok(true) };
        let slot = &mut self.tasks[index];
        let done_elsewhere = stored.state != TaskState::Running
            && (stored.state == TaskState::Disabled || stored.next_run.is_some_and(|t| t > now));
        if stored != slot.status {
            slot.planned_slot = None;
        }
        slot.status = stored;
        if forced || !done_elsewhere {
            return Ok(true);
        }
        slot.next_start = slot.status.next_run.filter(|_| slot.status.state != TaskState::Disabled);
        tracing::debug!(task = %name, next_run = ?slot.next_start, "already run by another runner");
        self.store.release(&name).await?;
        self.publish(index);
        Ok(false)
    }

    /// Renews the leases of the running tasks that are due; stops a run whose lease is lost.
    async fn renew_leases(&mut self, now: Timestamp) {
        let lease = self.config.state.lease;
        for index in 0..self.tasks.len() {
            let slot = &self.tasks[index];
            let Some(running) = &slot.running else { continue };
            if running.lost || running.renew_at > now {
                continue;
            }
            let name = slot.spec.name.clone();
            let answer = self.store.renew(&name, lease).await;
            let Some(running) = self.tasks[index].running.as_mut() else { continue };
            match answer {
                Ok(true) => {
                    running.renew_at = add_saturating(now, lease / 3);
                    running.held_until = add_saturating(now, lease);
                }
                Ok(false) => {
                    tracing::error!(task = %name, run = running.run.0, "another runner took the task over (this one did not renew its claim in time); stopping this run");
                    running.lost = true;
                    running.cancel.cancel();
                }
                Err(error) if now >= running.held_until => {
                    tracing::error!(task = %name, %error, "the claim on the task could not be renewed before it ran out; stopping the run, another runner may take it");
                    running.lost = true;
                    running.cancel.cancel();
                }
                Err(error) => {
                    tracing::warn!(task = %name, %error, "the claim on the task could not be renewed; trying again");
                    running.renew_at = add_saturating(now, Duration::from_secs(1));
                }
            }
        }
    }

    /// Records how a run ended and schedules the next.
    async fn finish(&mut self, done: Finished) -> Result<RunEnd, RunnerError> {
        let now = self.clock.wall();
        let index = done.index;
        let slot = &mut self.tasks[index];
        let Some(running) = slot.running.take() else {
            unreachable!("a run is reported once, by its own supervisor")
        };
        let name = slot.spec.name.clone();
        if running.lost {
            // The runner that took the task over marked this run abandoned and owns the
            // task's state now; look again when its claim ends.
            slot.next_start = Some(now);
            self.publish(index);
            let mut end = RunEnd::new(RunOutcome::Abandoned, now);
            end.error = Some("another runner took the task over".to_owned());
            return Ok(end);
        }
        let refused = match &done.ending {
            Ending::Failed(e) if matches!(e.disposition(), Disposition::Reauthorize) => {
                refused_credentials(&self.config, &self.services, &slot.spec)
            }
            _ => Vec::new(),
        };
        let decision = machine::after_run(
            &name,
            &slot.status,
            &slot.spec.schedule,
            running.slot,
            done.ending,
            now,
            &refused,
        );
        if decision.overlapped > 0 {
            tracing::warn!(task = %name, skipped = decision.overlapped, "slots came while the run was still going; skipped");
        }
        let mut end = decision.end;
        end.finished_at = now;
        slot.status = decision.status;
        self.store.finish_run(running.run, end.clone()).await?;
        self.store.prune_runs(&name, self.config.state.keep_runs).await?;
        let next =
            decision.next_slot.map(|at| if at <= now { at } else { self.jittered(index, at) });
        let slot = &mut self.tasks[index];
        slot.next_start = next;
        slot.planned_slot = decision.planned;
        slot.status.next_run = next;
        // Told to wait longer than `stale_after` (a quota reset at midnight): a known wait, not
        // a silent death, so lateness counts from its end.
        if let (TaskState::Cooldown, Some(next)) = (slot.status.state, next)
            && unattended_core::clock::duration_between(now, next) >= slot.spec.stale_after
        {
            slot.watched_since = slot.watched_since.max(next);
        }
        self.store.set_task_state(&name, slot.status.clone()).await?;
        self.store.release(&name).await?;
        self.publish(index);
        self.view.metrics_mut().run_ended(
            &name,
            end.outcome,
            unattended_core::clock::duration_between(running.started, now),
            decision.overlapped,
        );
        let took = jiff::SignedDuration::try_from(unattended_core::clock::duration_between(
            running.started,
            now,
        ))
        .unwrap_or_default();
        match end.outcome {
            RunOutcome::Succeeded | RunOutcome::Degraded => {
                tracing::info!(task = %name, run = running.run.0, outcome = end.outcome.as_str(), took = %format!("{took:#}"), summary = end.summary.as_deref().unwrap_or(""), next_run = ?next, "run ended");
                self.ping(index, "");
            }
            _ => {
                tracing::warn!(task = %name, run = running.run.0, outcome = end.outcome.as_str(), took = %format!("{took:#}"), error = end.error.as_deref().unwrap_or(""), disposition = end.disposition.as_deref().unwrap_or(""), next_run = ?next, "run ended");
                if end.outcome == RunOutcome::Failed {
                    self.ping(index, "/fail");
                }
            }
        }
        let mut alerts = decision.alerts;
        // "Late" closes on what opens it: a success (a run that skipped a down service is
        // degraded, not a success, and would make the alert flap).
        if self.tasks[index].status.last_success == Some(now) && self.tasks[index].late {
            self.tasks[index].late = false;
            alerts.push(AlertAction::Recover {
                incident: machine::incident(&name, "late"),
                detail: format!("{name} ran successfully again"),
            });
        }
        if matches!(end.outcome, RunOutcome::Succeeded | RunOutcome::Degraded) {
            for what in ["credentials", "stopped"] {
                alerts.push(AlertAction::Recover {
                    incident: machine::incident(&name, what),
                    detail: format!("{name} ran successfully again"),
                });
            }
        }
        for action in alerts {
            self.alerter.apply(action).await?;
        }
        self.save_held().await;
        Ok(end)
    }

    /// The monitor's round: late tasks, renewed credentials, tasks reset by a human, memory
    /// and disk.
    async fn watch(&mut self, now: Timestamp) -> Result<(), RunnerError> {
        let renewed = self.services.reload_credentials(&self.store);
        for credential in &renewed {
            tracing::info!(%credential, "a renewed refresh token was found in the store");
        }
        for index in 0..self.tasks.len() {
            let slot = &self.tasks[index];
            if !slot.spec.enabled {
                continue;
            }
            let name = slot.spec.name.clone();
            if slot.status.state == TaskState::Disabled {
                // `unattended reset` or `auth` in another process writes the state.
                if let Some(stored) = self.store.task_state(&name).await?
                    && stored.state != TaskState::Disabled
                {
                    tracing::info!(task = %name, "re-enabled by a human");
                    let slot = &mut self.tasks[index];
                    slot.status = stored;
                    slot.next_start = Some(now);
                    slot.watched_since = now;
                    self.publish(index);
                }
                continue;
            }
            let late =
                machine::is_late(&slot.status, slot.watched_since, slot.spec.stale_after, now);
            let incident = machine::incident(&name, "late");
            if late && !slot.late {
                let since = slot.status.last_success.map_or_else(
                    || "it has never succeeded".to_owned(),
                    |t| format!("its last success was at {t}"),
                );
                let stale =
                    jiff::SignedDuration::try_from(slot.spec.stale_after).unwrap_or_default();
                let detail = format!(
                    "no successful run for more than {stale:#}: {since}; state {}, last error: {}",
                    slot.status.state,
                    slot.status.last_error.as_deref().unwrap_or("none")
                );
                let title = format!("{name} is late");
                self.tasks[index].late = true;
                self.alerter
                    .apply(AlertAction::Raise { incident, title, detail, help: None })
                    .await?;
            }
        }
        for action in monitor::check(&self.probe, &self.config.monitor, self.store.path()) {
            self.alerter.apply(action).await?;
        }
        self.save_held().await;
        if let Some(tick) = &self.on_watch {
            tick();
        }
        Ok(())
    }

    /// Saves open breakers and pauses; a failure is logged (the next save tries again).
    async fn save_held(&self) {
        if let Err(error) = self.saver.save_now().await {
            tracing::error!(%error, "could not save open breakers and pauses");
        }
    }

    fn ping(&self, index: usize, suffix: &str) {
        let (Some(client), Some(url)) = (&self.ping, &self.tasks[index].spec.ping) else { return };
        let (client, url, task) =
            (client.clone(), format!("{url}{suffix}"), self.tasks[index].spec.name.clone());
        tokio::spawn(async move {
            let req =
                http::Request::get(url.as_str()).body(unattended_client::RequestBody::default());
            let Ok(req) = req else { return };
            if let Err(e) = client.send(req).await {
                tracing::warn!(%task, error = %e, "the ping URL could not be reached");
            }
        });
    }
}

/// Runs the engine in its own tokio task (a panic ends that task only), within `max_runtime`,
/// and stops it `grace` after `cancel` fires.
async fn supervise(
    engine: Arc<dyn crate::Engine>,
    mut cx: TaskContext,
    clock: Clock,
    max_runtime: Duration,
    cancel: CancellationToken,
    grace: Duration,
) -> Ending {
    let work = tokio::spawn(async move {
        let result = engine.run(&mut cx).await;
        (result, cx)
    });
    let abort = work.abort_handle();
    let stop = async {
        cancel.cancelled().await;
        clock.sleep(grace).await;
    };
    tokio::select! {
        joined = clock.timeout(max_runtime, work) => match joined {
            Ok(Ok((Ok(summary), cx))) => Ending::Done(summary, cx.into_skipped()),
            Ok(Ok((Err(_), _))) if cancel.is_cancelled() => Ending::Interrupted,
            Ok(Ok((Err(e), _))) => Ending::Failed(e),
            Ok(Err(join)) if join.is_panic() => Ending::Panicked(panic_message(join.into_panic())),
            Ok(Err(_)) => Ending::Interrupted,
            Err(_) => {
                abort.abort();
                Ending::TimedOut(max_runtime)
            }
        },
        () = stop => {
            abort.abort();
            Ending::Interrupted
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

impl TaskError {
    /// Whether the runner would run the task again on its own (not `Stop` or `Reauthorize`).
    pub fn is_retried(&self) -> bool {
        !matches!(
            self.disposition(),
            unattended_core::Disposition::Stop | unattended_core::Disposition::Reauthorize
        )
    }
}
