//! OAuth credentials through a running runner, under a paused clock with the Google OAuth mock
//! in-process: a refresh token refused in the night disables the task and names the command
//! that renews it; the token a human then saves (as `unattended auth` does, from another
//! process) is taken up by the running runner without a restart, and so is the first one, saved
//! after the runner started.

use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{
    Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError, transport,
};
use unattended_store::{RunOutcome, StateStore, Store, StoreConfig, TaskState};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};

/// Calls the API once per run.
#[derive(Clone)]
struct Caller;

#[async_trait::async_trait]
impl Engine for Caller {
    fn name(&self) -> &str {
        "caller"
    }

    fn services(&self) -> Vec<String> {
        vec!["api".to_owned()]
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let _: serde_json::Value = cx.client("api")?.get_json("/v1/ping").await?;
        Ok(RunSummary::new().items(1))
    }
}

const CONFIG: &str = r#"
[services.api]
base_url = "https://www.googleapis.com"
[services.api.oauth]
credential = "mine"
client_id_env = "ID"
client_secret_env = "SECRET"
scopes = ["https://www.googleapis.com/auth/youtube.upload"]

[tasks.sync]
engine = "caller"
tz = "UTC"
"#;

struct World {
    dir: tempfile::TempDir,
    clock: Clock,
    mock: GoogleOAuth,
}

impl World {
    fn new() -> Self {
        let clock = Clock::starting_at("2026-12-01T02:30:00Z".parse().unwrap());
        Self { dir: tempfile::tempdir().unwrap(), clock, mock: GoogleOAuth::new(clock) }
    }

    async fn store(&self) -> Store {
        let config = StoreConfig::new().inline(true);
        Store::open(self.dir.path().join("state.db"), config, self.clock).await.unwrap()
    }

    /// What `unattended auth mine` leaves in the store: a new refresh token, and the task, if
    /// it was disabled for re-authorization, made idle and due.
    async fn authorize(clock: Clock, mock: &GoogleOAuth, store: &Store) {
        let grant = SecretString::from(mock.grant());
        let now = clock.wall();
        store.blocking(|db| db.save_credential("mine", &grant, now)).unwrap();
        if let Some(mut status) = store.task_state("sync").await.unwrap()
            && status.state == TaskState::Disabled
        {
            status.state = TaskState::Idle;
            status.since = now;
            status.reason = Some(format!("re-authorized by a human at {now}"));
            status.failures = 0;
            status.last_error = None;
            status.last_disposition = None;
            status.next_run = Some(now);
            store.set_task_state("sync", status).await.unwrap();
        }
    }

    /// A runner whose task runs on `schedule` (`every = ...` or `cron = ...`).
    async fn runner(&self, store: Store, schedule: &str) -> Runner {
        let kinds = EngineKinds::new().with_engine(Caller);
        let config = RunnerConfig::parse(
            &format!("{CONFIG}{schedule}\n"),
            self.dir.path().join("unattended.toml"),
            &kinds,
        )
        .unwrap();
        Runner::builder(config)
            .clock(self.clock)
            .seed(3)
            .store(store)
            .transport("api", transport(self.mock.api()))
            .transport("oauth:mine", transport(self.mock.token_endpoint()))
            .environment(|var| match var {
                "ID" => Some(CLIENT_ID.to_owned()),
                "SECRET" => Some(CLIENT_SECRET.to_owned()),
                _ => None,
            })
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    async fn run_for(&self, runner: &mut Runner, d: Duration) {
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let clock = self.clock;
        let timer = tokio::spawn(async move {
            clock.sleep(d).await;
            stopper.cancel();
        });
        runner.run(stop).await.unwrap();
        timer.await.unwrap();
    }

    async fn outcomes(&self, runner: &Runner) -> Vec<RunOutcome> {
        let runs = runner.store().runs("sync", 100).await.unwrap();
        let mut outcomes: Vec<RunOutcome> =
            runs.iter().filter_map(|r| r.end.as_ref().map(|e| e.outcome)).collect();
        outcomes.reverse();
        outcomes
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_revoked_at_night_names_its_renewal_and_the_renewed_one_is_taken_up() {
    let w = World::new();
    let store = w.store().await;
    World::authorize(w.clock, &w.mock, &store).await;
    let mut runner = w.runner(store.clone(), "every = \"1h\"").await;
    w.run_for(&mut runner, Duration::from_secs(1800)).await;
    assert_eq!(w.outcomes(&runner).await, [RunOutcome::Succeeded]);

    // 03:00: the user revokes the app's access; at 03:30 the access token has run out and the
    // refresh is refused. At 05:00 a human reads the task's state (what `unattended status`
    // shows) and authorizes again, while the runner runs.
    w.mock.revoke_all();
    let (clock, mock) = (w.clock, w.mock.clone());
    let human = tokio::spawn(async move {
        clock.sleep(Duration::from_secs(2 * 3600)).await;
        let seen = store.task_state("sync").await.unwrap().unwrap();
        World::authorize(clock, &mock, &store).await;
        seen
    });
    w.run_for(&mut runner, Duration::from_secs(3 * 3600)).await;
    let seen = human.await.unwrap();
    assert_eq!(seen.state, TaskState::Disabled);
    let reason = seen.reason.unwrap();
    assert!(
        reason.starts_with("needs re-authorization: run `unattended auth mine`; "),
        "what `status` shows: {reason}"
    );
    let alerts = runner.alerts();
    let raised: Vec<_> =
        alerts.iter().filter(|a| a.raised && a.incident == "task:sync:credentials").collect();
    assert_eq!(raised.len(), 1, "{alerts:?}");
    assert!(
        raised[0].help.as_deref().unwrap().starts_with("run `unattended auth mine`: "),
        "{raised:?}"
    );

    // The monitor round after 05:00 took the new refresh token and the task ran with it.
    let outcomes = w.outcomes(&runner).await;
    assert_eq!(outcomes[..2], [RunOutcome::Succeeded, RunOutcome::Failed], "{outcomes:?}");
    assert!(outcomes[2..].iter().all(|o| *o == RunOutcome::Succeeded), "{outcomes:?}");
    assert!(outcomes.len() >= 3, "{outcomes:?}");
    let closed: Vec<_> =
        alerts.iter().filter(|a| !a.raised && a.incident == "task:sync:credentials").collect();
    assert_eq!(closed.len(), 1, "the incident closed once: {alerts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_runner_started_before_the_first_authorization_takes_it_up() {
    let w = World::new();
    // The first run is at 03:00; the runner starts at 02:30 with no refresh token saved.
    let mut runner = w.runner(w.store().await, "cron = \"0 3 * * *\"").await;
    w.run_for(&mut runner, Duration::from_secs(600)).await;
    assert!(w.outcomes(&runner).await.is_empty());
    // The human authorizes at 02:40, before any run asked for a token.
    World::authorize(w.clock, &w.mock, runner.store()).await;
    w.run_for(&mut runner, Duration::from_secs(3600)).await;
    assert_eq!(w.outcomes(&runner).await, [RunOutcome::Succeeded]);
    assert!(runner.alerts().is_empty(), "{:?}", runner.alerts());
}
