//! The OAuth client's id and secret are read through the builder's environment.

use unattended_core::Clock;
use unattended_runner::{EngineKinds, Runner, RunnerConfig, RunnerError};
use unattended_store::{Store, StoreConfig};

const CONFIG: &str = r#"
[services.api]
base_url = "https://api.example.com"
[services.api.oauth]
client_id_env = "UNATTENDED_TEST_UNSET_CLIENT_ID"
client_secret_env = "UNATTENDED_TEST_UNSET_CLIENT_SECRET"
"#;

#[tokio::test(start_paused = true)]
async fn oauth_variables_come_from_the_given_environment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::starting_at("2026-12-01T10:00:00Z".parse().unwrap());
    let config = || {
        RunnerConfig::parse(CONFIG, dir.path().join("unattended.toml"), &EngineKinds::new())
            .unwrap()
    };
    let store = || async {
        Store::open(dir.path().join("state.db"), StoreConfig::new().inline(true), clock)
            .await
            .unwrap()
    };
    let missing = Runner::builder(config()).clock(clock).store(store().await).build().await;
    assert!(
        matches!(&missing, Err(RunnerError::MissingEnv { var, .. }) if var == "UNATTENDED_TEST_UNSET_CLIENT_ID"),
        "{missing:?}"
    );
    let runner = Runner::builder(config())
        .clock(clock)
        .store(store().await)
        .environment(|var| var.starts_with("UNATTENDED_TEST_UNSET_").then(|| "given".to_owned()))
        .build()
        .await
        .unwrap();
    assert!(runner.client("api").unwrap().token_cache().is_some());
}
