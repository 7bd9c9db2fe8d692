//! One seed for the whole runner: the requests its clients make, token refreshes included, are
//! the same, at the same instants, on every run with that seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use secrecy::SecretString;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use unattended_client::RequestBody;
use unattended_core::{BoxError, Clock};
use unattended_runner::{
    Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError, transport,
};
use unattended_store::{Store, StoreConfig};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};

/// Calls the API every 250 ms for two minutes: longer than a token lives.
struct Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

#[async_trait::async_trait]
impl Engine for Caller {
    fn name(&self) -> &str {
        "caller"
    }

    fn services(&self) -> Vec<String> {
        vec!["api".to_owned()]
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let client = cx.client("api")?.clone();
        for _ in 0..480 {
            let req = Request::get("/v1/items").body(RequestBody::default()).unwrap();
            // Failures are part of the scenario: only the requests they cause are compared.
            let _ = client.send(req).await;
            cx.clock().sleep(Duration::from_millis(250)).await;
        }
        Ok(RunSummary::new())
    }
}

const CONFIG: &str = r#"
[services.api]
base_url = "https://api.example.com"
[services.api.oauth]
token_url = "https://oauth2.example.com/token"
client_id_env = "API_CLIENT_ID"
client_secret_env = "API_CLIENT_SECRET"

[tasks.calls]
engine = "caller"
every = "5m"
jitter = "1m"
tz = "UTC"
"#;

/// Everything the mocks received during an hour's run on `seed`: (milliseconds since the start,
/// what) for each token request and each API call (with the token it carried).
fn requests(seed: u64) -> Vec<(u128, String)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async move {
            let clock = Clock::starting_at("2026-12-01T10:00:00Z".parse().unwrap());
            let start = clock.now();
            // Tokens of 100 s, refreshed 8 to 10 s before they expire: the skew's random part
            // decides which call fetches the next one.
            let oauth = GoogleOAuth::new(clock);
            oauth.token_lifetime(Duration::from_secs(100));
            // Every fifth API call is refused with a 503, so the retry layer's jitter shows.
            let api = oauth.api();
            let calls = Arc::new(AtomicU64::new(0));
            let flaky = tower::service_fn(move |req: Request<RequestBody>| {
                let (api, calls) = (api.clone(), calls.clone());
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) % 5 == 4 {
                        let res = Response::builder()
                            .status(StatusCode::SERVICE_UNAVAILABLE)
                            .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed_unsync())
                            .unwrap();
                        return Ok::<_, BoxError>(res);
                    }
                    let res = api.oneshot(req).await?;
                    Ok(res.map(|b| b.map_err(Into::<BoxError>::into).boxed_unsync()))
                }
            });
            let dir = tempfile::tempdir().unwrap();
            let kinds = EngineKinds::new().with("caller", |_: Settings, _| Ok(Caller));
            let config =
                RunnerConfig::parse(CONFIG, dir.path().join("unattended.toml"), &kinds).unwrap();
            let store =
                Store::open(dir.path().join("state.db"), StoreConfig::new().inline(true), clock)
                    .await
                    .unwrap();
            let grant = SecretString::from(oauth.grant());
            let now = clock.wall();
            store.blocking(|db| db.save_credential("google", &grant, now)).unwrap();
            let mut runner = Runner::builder(config)
                .clock(clock)
                .seed(seed)
                .store(store)
                .transport("api", transport(flaky))
                .transport("oauth:google", transport(oauth.token_endpoint()))
                .environment(|var| match var {
                    "API_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
                    "API_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
                    _ => None,
                })
                .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
                .build()
                .await
                .unwrap();
            let stop = CancellationToken::new();
            let stopper = stop.clone();
            let timer = tokio::spawn(async move {
                clock.sleep(Duration::from_secs(3600)).await;
                stopper.cancel();
            });
            runner.run(stop).await.unwrap();
            timer.await.unwrap();
            let ms = |at: tokio::time::Instant| (at - start).as_millis();
            let mut log: Vec<(u128, String)> = oauth
                .token_calls()
                .into_iter()
                .map(|s| (ms(s.at), format!("token {:?} {:?}", s.credential, s.status)))
                .chain(
                    oauth
                        .api_calls()
                        .into_iter()
                        .map(|s| (ms(s.at), format!("api {:?} {:?}", s.credential, s.status))),
                )
                .collect();
            log.sort();
            log
        })
}

/// tokio's paused-time determinism test, for the requests: the same seed, the same requests at
/// the same instants; another seed, another run.
#[test]
fn the_same_seed_makes_the_same_requests_at_the_same_instants() {
    let first = requests(21);
    let tokens = first.iter().filter(|(_, what)| what.starts_with("token")).count();
    assert!(tokens > 20, "tokens refreshed during the run: {tokens}");
    assert!(first.iter().any(|(_, what)| what.contains("200")), "{first:?}");
    let again = requests(21);
    let differ = (0..first.len().max(again.len())).find(|&i| first.get(i) != again.get(i));
    if let Some(i) = differ {
        panic!("the runs differ at request {i}: {:?} then {:?}", first.get(i), again.get(i));
    }
    assert_ne!(first, requests(22));
}
