//! The state database: round trips, migrations, failures, concurrency, persistence of the layers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_store::{
    Checkpoint, Expect, HeldService, RunEnd, RunOutcome, StateDb, StateSaver, StateStore, Store,
    StoreConfig, StoreError, TaskState, TaskStatus,
};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn clock() -> Clock {
    Clock::starting_at(t0())
}

async fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::new().inline(true), clock()).await.unwrap()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Upload {
    file: String,
    session: String,
    bytes_sent: u64,
}

fn upload(bytes_sent: u64) -> Upload {
    Upload { file: "talk.mp4".into(), session: "https://up.example/s/1".into(), bytes_sent }
}

#[tokio::test(start_paused = true)]
async fn every_record_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;

    assert_eq!(store.load::<Upload>("upload").await.unwrap(), None);
    assert_eq!(store.save("upload", &upload(0), Expect::Absent).await.unwrap(), 1);
    clock().sleep(Duration::from_secs(5)).await;
    assert_eq!(store.save("upload", &upload(262_144), Expect::Version(1)).await.unwrap(), 2);
    let saved = store.load::<Upload>("upload").await.unwrap().unwrap();
    let at = "2026-11-28T10:00:05Z".parse().unwrap();
    assert_eq!(saved, Checkpoint { value: upload(262_144), version: 2, updated_at: at });

    let run = store.start_run("upload").await.unwrap();
    let mut end = RunEnd::new(RunOutcome::Failed, at);
    end.disposition = Some(Disposition::RetryAt(at).to_string());
    end.error = Some("gave up after 4 attempts".into());
    end.attempts = 4;
    end.summary = Some("uploaded 1 of 2".into());
    store.finish_run(run, end.clone()).await.unwrap();
    let second = store.start_run("upload").await.unwrap();
    let runs = store.runs("upload", 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].id, runs[0].end.clone()), (second, None), "newest first");
    assert_eq!((runs[1].id, runs[1].end.clone()), (run, Some(end)));

    let mut status = TaskStatus::new(TaskState::Cooldown, at).next_run(Some(t0()));
    status.reason = Some("503 from the API".into());
    status.last_slot = Some(t0());
    status.last_success = Some(at);
    status.last_error = Some("gave up after 4 attempts".into());
    status.last_disposition = Some("retry at 2026-11-28T10:00:00Z".into());
    status.failures = 2;
    status.run = Some(second);
    store.set_task_state("upload", status.clone()).await.unwrap();
    assert_eq!(store.task_state("upload").await.unwrap(), Some(status.clone()));
    assert_eq!(store.task_state("none").await.unwrap(), None);
    let idle = TaskStatus::new(TaskState::Idle, at);
    store.set_task_state("blog", idle.clone()).await.unwrap();
    assert_eq!(
        store.task_states().await.unwrap(),
        [("blog".to_owned(), idle), ("upload".to_owned(), status)]
    );

    let held = vec![HeldService { key: "https://a.example:443".into(), until: at }];
    store.replace_held("breaker:main", held.clone()).await.unwrap();
    assert_eq!(store.held("breaker:main").await.unwrap(), held);
    assert_eq!(store.held("pause:main").await.unwrap(), []);

    use unattended_token::CredentialStore as _;
    let cred = store.credential("youtube");
    assert!(cred.load().unwrap().is_none());
    cred.save(&"1//refresh".to_owned().into()).unwrap();
    let loaded = cred.load().unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&loaded), "1//refresh");
}

#[tokio::test]
async fn a_second_writer_is_caught_by_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    store.save("t", &1, Expect::Absent).await.unwrap();
    let err = store.save("t", &2, Expect::Absent).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 0, found: 1, .. }), "{err}");
    let err = store.save("t", &2, Expect::Version(7)).await.unwrap_err();
    assert!(err.to_string().contains("another writer"), "{err}");
    assert_eq!(store.load::<i32>("t").await.unwrap().unwrap().value, 1, "nothing overwritten");
}

#[tokio::test]
async fn a_new_file_is_private_and_at_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open(&path).await;
    store.save("t", &1, Expect::Any).await.unwrap();
    #[cfg(unix)]
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert_eq!(store.blocking(|db| db.schema_version()).unwrap(), StateDb::SCHEMA_VERSION);
}

/// The schema as version 1 shipped it.
const V1: &str = "CREATE TABLE checkpoints (task TEXT PRIMARY KEY, value TEXT NOT NULL,
    version INTEGER NOT NULL, updated_at TEXT NOT NULL) STRICT;
    CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, outcome TEXT, disposition TEXT, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0) STRICT;
    CREATE INDEX runs_by_task ON runs (task, id);
    CREATE TABLE task_states (task TEXT PRIMARY KEY, state TEXT NOT NULL, since TEXT NOT NULL,
    next_run TEXT, updated_at TEXT NOT NULL) STRICT;
    INSERT INTO checkpoints VALUES ('upload', '{\"bytes_sent\":5}', 3, '2026-11-01T00:00:00Z');
    PRAGMA user_version = 1;";

#[tokio::test]
async fn a_version_1_file_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch(V1).unwrap();
    let store = open(&path).await;
    assert_eq!(store.blocking(|db| db.schema_version()).unwrap(), StateDb::SCHEMA_VERSION);
    let saved = store.load::<serde_json::Value>("upload").await.unwrap().unwrap();
    assert_eq!((saved.value["bytes_sent"].as_u64(), saved.version), (Some(5), 3));
    store.replace_held("pause:x", vec![]).await.unwrap(); // the version 2 tables exist
    assert_eq!(store.open_incidents().await.unwrap(), []); // and the version 4 ones
}

#[tokio::test]
async fn a_file_from_a_newer_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
    let err = StateDb::open(&path, &StoreConfig::new()).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, supported: StateDb::SCHEMA_VERSION, .. }),
        "{err}"
    );
    assert_eq!(err.disposition(), Disposition::Stop);
}

#[tokio::test]
async fn a_damaged_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = StateDb::open(&path, &StoreConfig::new()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(err.disposition(), Disposition::Stop);
    // A missing directory cannot be created into.
    let err = StateDb::open(dir.path().join("no/such/dir.db"), &StoreConfig::new()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[tokio::test]
async fn a_full_disk_fails_the_write_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the schema and a small checkpoint, not for a 1 MiB one.
    let config = StoreConfig::new().inline(true).max_bytes(Some(128 * 1024));
    let store = Store::open(dir.path().join("small.db"), config, clock()).await.unwrap();
    store.save("upload", &upload(1), Expect::Any).await.unwrap();
    let huge = "x".repeat(1024 * 1024);
    let err = store.save("upload", &huge, Expect::Any).await.unwrap_err();
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert_eq!(err.disposition(), Disposition::Stop);
    let kept = store.load::<Upload>("upload").await.unwrap().unwrap();
    assert_eq!((kept.value, kept.version), (upload(1), 1), "the earlier checkpoint is intact");
    store.save("upload", &upload(2), Expect::Version(1)).await.unwrap();
}

#[tokio::test]
async fn a_read_only_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    open(&path).await.save("t", &1, Expect::Any).await.unwrap();
    // Opened for reading only: reads work, writes are refused with a typed error.
    let reader = Store::open(&path, StoreConfig::new().inline(true).read_only(true), clock()).await;
    let reader = reader.unwrap();
    assert_eq!(reader.load::<i32>("t").await.unwrap().unwrap().value, 1);
    let err = reader.save("t", &2, Expect::Any).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert_eq!(err.disposition(), Disposition::Stop);
    // A file the process may not write (permissions bind unless running as root).
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    if std::fs::OpenOptions::new().append(true).open(&path).is_ok() {
        return; // running as root: permissions do not bind; nothing to observe
    }
    let result = match Store::open(&path, StoreConfig::new().inline(true), clock()).await {
        Ok(store) => store.save("t", &2, Expect::Any).await.map(drop),
        Err(err) => Err(err),
    };
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. } | StoreError::Open { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    // Two connections (as two processes would have) and eight tasks on each.
    let a = Store::open(&path, StoreConfig::new(), Clock::system()).await.unwrap();
    let b = Store::open(&path, StoreConfig::new(), Clock::system()).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                store.save(&format!("task-{n}"), &i, Expect::Any).await.unwrap();
                store.save("shared", &i, Expect::Any).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for n in 0..16 {
        let saved = a.load::<u64>(&format!("task-{n}")).await.unwrap().unwrap();
        assert_eq!((saved.value, saved.version), (24, 25));
    }
    assert_eq!(b.load::<u64>("shared").await.unwrap().unwrap().version, 16 * 25);
}

#[tokio::test]
async fn unfinished_runs_are_marked_abandoned_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    store.start_run("scrape").await.unwrap();
    let n = store.blocking(|db| db.abandon_unfinished_runs(t0())).unwrap();
    assert_eq!(n, 1);
    let runs = store.runs("scrape", 1).await.unwrap();
    assert_eq!(runs[0].end.as_ref().map(|e| e.outcome), Some(RunOutcome::Abandoned));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_and_a_pause_outlive_the_process() {
    use unattended_breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer};
    use unattended_ratelimit::PauseRegistry;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let until: Timestamp = "2026-11-28T10:30:00Z".parse().unwrap();
    let host = "https://api.example.com:443";
    {
        let store = open(&path).await;
        let breaker = CircuitBreakerLayer::new(BreakerConfig::standard()).unwrap().clock(clock());
        let pauses = PauseRegistry::new();
        let (saver, restored) = StateSaver::builder(store)
            .breakers("main", breaker.handle())
            .pauses("main", pauses.clone())
            .start()
            .await
            .unwrap();
        assert_eq!(restored, Default::default());
        breaker.handle().force_open(host, until);
        pauses.pause(host, until, t0());
        saver.notifier::<()>()(&()); // what the layers' on_event hooks do
        clock().sleep(Duration::from_secs(2)).await; // past the debounce
    } // the process ends

    let store = open(&path).await;
    let breaker = CircuitBreakerLayer::new(BreakerConfig::standard()).unwrap().clock(clock());
    let pauses = PauseRegistry::new();
    let (_saver, restored) = StateSaver::builder(store)
        .breakers("main", breaker.handle())
        .pauses("main", pauses.clone())
        .start()
        .await
        .unwrap();
    assert_eq!((restored.breakers, restored.pauses), (1, 1));
    assert!(
        matches!(breaker.handle().state(host), Some(BreakerState::Open { until: u }) if u == until)
    );
    assert_eq!(pauses.snapshot(clock().wall())[0].until, until);
}

#[tokio::test(start_paused = true)]
async fn changes_are_saved_once_per_debounce() {
    use unattended_ratelimit::PauseRegistry;

    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    let pauses = PauseRegistry::new();
    let (saver, _) = StateSaver::builder(store.clone())
        .pauses("p", pauses.clone())
        .debounce(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let later = |s| jiff::Timestamp::from_second(t0().as_second() + s).unwrap();
    pauses.pause("https://a.example:443", later(600), t0());
    saver.changed();
    clock().sleep(Duration::from_millis(500)).await;
    assert_eq!(store.held("pause:p").await.unwrap().len(), 0, "not before the debounce");
    pauses.pause("https://b.example:443", later(600), t0());
    saver.changed();
    clock().sleep(Duration::from_millis(600)).await;
    assert_eq!(store.held("pause:p").await.unwrap().len(), 2, "both changes in one save");
}

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_there_after_a_restart() {
    use bytes::Bytes;
    use http_body_util::Full;
    use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth, TokenEndpoint};
    use unattended_token::{OAuth2Client, OAuth2Source, TokenCache};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mock = GoogleOAuth::new(clock());
    mock.rotate_refresh_tokens(true);
    let first = mock.grant();
    let client = || {
        OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.googleapis.com/token").unwrap()
    };
    let source = |store: &Store, refresh: String| -> OAuth2Source<TokenEndpoint, Full<Bytes>> {
        OAuth2Source::refresh_token(client(), refresh, mock.token_endpoint(), clock())
            .with_store(store.credential("youtube"))
            .unwrap()
    };
    {
        let store = open(&path).await;
        TokenCache::new(source(&store, first.clone()), clock()).get().await.unwrap();
    }
    // The first refresh token is retired by the rotation; the restarted process has the new one.
    let store = open(&path).await;
    let cache = Arc::new(TokenCache::new(source(&store, first), clock()));
    cache.get().await.unwrap();
    let ok = mock.token_calls().iter().filter(|c| c.status == Some(http::StatusCode::OK)).count();
    assert_eq!(ok, 2, "both processes got a token");
}

#[tokio::test]
async fn runs_are_pruned_to_the_newest_and_the_running_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = store.start_run("scrape").await.unwrap();
        store.finish_run(id, RunEnd::new(RunOutcome::Succeeded, t0())).await.unwrap();
        ids.push(id);
    }
    let running = store.start_run("scrape").await.unwrap();
    let other = store.start_run("blog").await.unwrap();
    assert_eq!(store.prune_runs("scrape", 2).await.unwrap(), 4);
    let left: Vec<_> = store.runs("scrape", 10).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(left, [running, ids[4]], "the newest finished run and the unfinished one");
    assert_eq!(store.runs("blog", 10).await.unwrap()[0].id, other, "other tasks untouched");
}

#[tokio::test]
async fn every_task_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    for state in [
        TaskState::Idle,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Degraded,
        TaskState::Failed,
        TaskState::Cooldown,
        TaskState::Deferred,
        TaskState::Disabled,
    ] {
        let status = TaskStatus::new(state, t0());
        store.set_task_state("t", status.clone()).await.unwrap();
        assert_eq!(store.task_state("t").await.unwrap(), Some(status), "{state}");
    }
    assert!(store.blocking(|db| db.delete_task_state("t")).unwrap());
    assert_eq!(store.task_state("t").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_learned_pace_outlives_the_process() {
    use unattended_core::ServiceKey;
    use unattended_ratelimit::{PauseRegistry, RateLimitLayer};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let host = ServiceKey::new("https://api.example.com:443");
    let clock = clock();
    let learned = {
        let store = Store::open(&path, StoreConfig::new().inline(true), clock).await.unwrap();
        let pauses = PauseRegistry::new();
        let (saver, _) =
            StateSaver::builder(store).pauses("main", pauses.clone()).start().await.unwrap();
        // The host throttles once (a 429 without Retry-After): the layer paces it.
        let limiter = RateLimitLayer::new().clock(clock).with_registry(pauses.clone()).limiter();
        let permit = limiter.acquire(&host).await.unwrap();
        limiter.record(permit, http::StatusCode::TOO_MANY_REQUESTS, &http::HeaderMap::new());
        saver.save_now().await.unwrap();
        pauses.pace_of(host.as_str()).unwrap()
    };

    // A minute later the new process starts at the rate learned, without a throttle.
    clock.sleep(Duration::from_secs(60)).await;
    let store = Store::open(&path, StoreConfig::new().inline(true), clock).await.unwrap();
    let pauses = PauseRegistry::new();
    let (_saver, restored) =
        StateSaver::builder(store.clone()).pauses("main", pauses.clone()).start().await.unwrap();
    assert_eq!((restored.pauses, restored.paces), (0, 1));
    assert_eq!(pauses.pace_of(host.as_str()), Some(learned));
    // Ten minutes after it was learned, it is stale and is not taken back.
    clock.sleep(Duration::from_secs(600)).await;
    let stale = PauseRegistry::new();
    let (_saver, restored) =
        StateSaver::builder(store).pauses("main", stale.clone()).start().await.unwrap();
    assert_eq!(restored.paces, 0);
    assert!(stale.is_quiet());
}
