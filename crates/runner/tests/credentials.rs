//! A revoked Google grant renewed by a human: the runner keeps using nothing it knows is refused,
//! and takes the new refresh token from the store as soon as one is there.

use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{
    Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError, transport,
};
use unattended_store::{RunOutcome, StateStore as _, Store, StoreConfig, TaskState};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};

/// Calls the API once a run.
struct Caller;

#[derive(serde::Deserialize)]
struct NoSettings {}

#[async_trait::async_trait]
impl Engine for Caller {
    fn name(&self) -> &str {
        "caller"
    }

    fn services(&self) -> Vec<String> {
        vec!["api".into()]
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let _: serde_json::Value = cx.client("api")?.get_json("/v1/me").await?;
        Ok(RunSummary::new().items(1))
    }
}

const CONFIG: &str = r#"
[services.api]
base_url = "https://api.example"
[services.api.oauth]
token_url = "https://oauth2.example/token"
client_id_env = "ID"
client_secret_env = "SECRET"

[tasks.t]
engine = "caller"
every = "10m"
tz = "UTC"
"#;

async fn run_for(runner: &mut Runner, clock: Clock, d: Duration) {
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    let timer = tokio::spawn(async move {
        clock.sleep(d).await;
        stopper.cancel();
    });
    runner.run(stop).await.unwrap();
    timer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_renewed_in_the_store_is_used_once_the_task_is_reset() {
    let clock = Clock::starting_at("2026-03-02T00:00:00Z".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let oauth = GoogleOAuth::new(clock);
    let kinds = EngineKinds::new().with("caller", |_: NoSettings, _| Ok(Caller));
    let config = RunnerConfig::parse(CONFIG, dir.path().join("unattended.toml"), &kinds).unwrap();
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new().inline(true), clock)
        .await
        .unwrap();
    let first = SecretString::from(oauth.grant());
    store.blocking(|db| db.save_credential("google", &first, clock.wall())).unwrap();
    let mut runner = Runner::builder(config)
        .clock(clock)
        .store(store.clone())
        .transport("api", transport(oauth.api()))
        .transport("oauth:google", transport(oauth.token_endpoint()))
        .environment(|var| match var {
            "ID" => Some(CLIENT_ID.to_owned()),
            "SECRET" => Some(CLIENT_SECRET.to_owned()),
            _ => None,
        })
        .build()
        .await
        .unwrap();
    assert_eq!(runner.once("t").await.unwrap().end.outcome, RunOutcome::Succeeded);

    oauth.revoke_all();
    oauth.invalidate_access_tokens();
    let out = runner.once("t").await.unwrap();
    assert_eq!(out.state, TaskState::Disabled, "{:?}", out.end);
    // Hours of monitor rounds with the refused token still in the store: nothing to take.
    run_for(&mut runner, clock, Duration::from_secs(3 * 3600)).await;
    let refused = oauth.token_calls().len();

    // The human: `unattended auth google`, then `unattended reset t`.
    let second = SecretString::from(oauth.grant());
    store.blocking(|db| db.save_credential("google", &second, clock.wall())).unwrap();
    let mut status = store.task_state("t").await.unwrap().unwrap();
    status.state = TaskState::Idle;
    status.next_run = Some(clock.wall());
    store.set_task_state("t", status).await.unwrap();
    run_for(&mut runner, clock, Duration::from_secs(120)).await;

    let runs = store.blocking(|db| db.runs("t", 10)).unwrap();
    let last = runs.iter().max_by_key(|r| r.id).unwrap();
    assert_eq!(last.end.as_ref().unwrap().outcome, RunOutcome::Succeeded, "{runs:?}");
    assert!(oauth.token_calls().len() > refused, "a token fetched with the new grant");
}
