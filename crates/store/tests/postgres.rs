//! The state on a real PostgreSQL server (a throwaway cluster on 127.0.0.1): the same answers as
//! the SQLite file, leases that exactly one runner gets, takeover of a stopped runner's tasks,
//! and pauses one runner learns reaching the others.
//!
//! PostgreSQL comes from the distribution's packages; `.ci/run` installs it and sets
//! `UNATTENDED_REQUIRE_POSTGRES=1`, so that the tests fail instead of skipping.

use std::time::Duration;

use unattended_core::{Clock, ServiceKey};
use unattended_ratelimit::PauseRegistry;
use unattended_store::{
    AlertKind, Claim, Expect, HeldService, Holder, NewAlert, RunEnd, RunOutcome, StateSaver,
    StateStore, Store, StoreConfig, StoreError, TaskState, TaskStatus,
};
use unattended_testkit::postgres::{PgServer, server_for};

async fn open(url: &str, name: &str) -> Store {
    let store = Store::open_location(url, StoreConfig::new(), Clock::system()).await.unwrap();
    store.with_holder(Holder::this_process(Some(name)))
}

async fn server(test: &str) -> Option<(PgServer, String)> {
    let server = server_for(test, Clock::system()).await?;
    let url = server.create_database("state").unwrap();
    Some((server, url))
}

/// What every backend must answer alike; run on both.
async fn the_same_answers(store: &Store) {
    let now = store.clock().wall();
    assert_eq!(store.save("upload", &("a.mp4", 0_u64), Expect::Absent).await.unwrap(), 1);
    assert_eq!(store.save("upload", &("a.mp4", 9_u64), Expect::Version(1)).await.unwrap(), 2);
    let err = store.save("upload", &("a.mp4", 1_u64), Expect::Version(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1, found: 2, .. }), "{err}");
    let saved = store.load::<(String, u64)>("upload").await.unwrap().unwrap();
    assert_eq!((saved.value.1, saved.version), (9, 2));

    let run = store.start_run("upload").await.unwrap();
    let mut end = RunEnd::new(RunOutcome::Failed, now);
    end.error = Some("gave up".into());
    end.attempts = 3;
    store.finish_run(run, end.clone()).await.unwrap();
    let runs = store.runs("upload", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].end.as_ref(), Some(&end));
    assert_eq!(runs[0].runner.as_deref(), Some(store.holder().name.as_str()));

    let mut status = TaskStatus::new(TaskState::Cooldown, now).next_run(Some(now));
    status.failures = 2;
    status.last_slot = Some(now);
    store.set_task_state("upload", status.clone()).await.unwrap();
    assert_eq!(store.task_state("upload").await.unwrap(), Some(status));

    let alert = NewAlert {
        incident: "task:upload:failing".into(),
        kind: AlertKind::Raised,
        task: Some("upload".into()),
        title: "upload failed".into(),
        detail: "gave up".into(),
        help: None,
        created_at: now,
    };
    let sinks = vec!["webhook:0".to_owned()];
    assert!(store.record_alert(alert.clone(), sinks.clone()).await.unwrap().is_some());
    assert!(store.record_alert(alert, sinks).await.unwrap().is_none(), "one alert per incident");
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 1);
    assert_eq!(store.open_incidents().await.unwrap().len(), 1);

    assert!(store.insert_entry("scrape", "page", "/a", &1).await.unwrap());
    assert!(!store.insert_entry("scrape", "page", "/a", &2).await.unwrap());
    assert_eq!(store.entry::<i32>("scrape", "page", "/a").await.unwrap().unwrap().value, 1);

    let secret = secrecy::SecretString::from("1//refresh-token");
    store.blocking(|db| db.save_credential("google", &secret, now)).unwrap();
    let back = store.blocking(|db| db.credential("google")).unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&back), "1//refresh-token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_as_the_sqlite_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(dir.path().join("state.db"), StoreConfig::new(), Clock::system())
        .await
        .unwrap();
    the_same_answers(&sqlite).await;
    let Some((_server, url)) = server("postgres_answers_as_the_sqlite_file_does").await else {
        return;
    };
    let store = open(&url, "a").await;
    assert!(store.is_shared() && !sqlite.is_shared());
    assert!(store.path().display().to_string().starts_with("postgres://unattended@127.0.0.1:"));
    the_same_answers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_connecting_together_migrate_once() {
    let Some((_server, url)) = server("runners_connecting_together_migrate_once").await else {
        return;
    };
    let opens = (0..4).map(|i| {
        let url = url.clone();
        tokio::spawn(async move { open(&url, &format!("r{i}")).await })
    });
    for store in futures_util::future::join_all(opens).await {
        let store = store.unwrap();
        assert_eq!(store.blocking(|db| db.schema_version()).unwrap(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_claim_of_a_task_wins_however_many_runners_ask() {
    let Some((_server, url)) = server("one_claim_of_a_task_wins_however_many_runners_ask").await
    else {
        return;
    };
    let stores = [open(&url, "a").await, open(&url, "b").await, open(&url, "c").await];
    let lease = Duration::from_secs(60);
    for round in 0..20 {
        let task = format!("task-{round}");
        let claims = stores.iter().map(|s| {
            let (s, task) = (s.clone(), task.clone());
            tokio::spawn(async move { (s.holder().name.clone(), s.claim(&task, lease).await) })
        });
        let answers: Vec<_> =
            futures_util::future::join_all(claims).await.into_iter().map(Result::unwrap).collect();
        let granted: Vec<_> = answers
            .iter()
            .filter(|(_, c)| matches!(c, Ok(Claim::Granted { .. })))
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(granted.len(), 1, "round {round}: {answers:?}");
        for (_, answer) in &answers {
            assert!(
                matches!(answer, Ok(Claim::Granted { .. } | Claim::Held(_) | Claim::Busy)),
                "{answer:?}"
            );
        }
        // The holder is seen by all.
        let leases = stores[0].leases().await.unwrap();
        let held = leases.iter().find(|l| l.task == task).unwrap();
        assert_eq!(held.holder.name, granted[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_renewed_is_taken_over_with_its_run_abandoned() {
    let Some((_server, url)) =
        server("a_lease_not_renewed_is_taken_over_with_its_run_abandoned").await
    else {
        return;
    };
    let (a, b) = (open(&url, "a").await, open(&url, "b").await);
    let lease = Duration::from_millis(400);
    assert_eq!(a.claim("upload", lease).await.unwrap(), Claim::Granted { took_over: None });
    let run = a.start_run("upload").await.unwrap();
    assert!(a.renew("upload", lease).await.unwrap());
    match b.claim("upload", lease).await.unwrap() {
        Claim::Held(l) => assert_eq!(l.holder, *a.holder()),
        other => panic!("{other:?}"),
    }
    // While `a` renews, `b` waits; once it stops renewing, `b` takes over.
    Clock::system().sleep(Duration::from_millis(600)).await;
    assert_eq!(
        b.claim("upload", lease).await.unwrap(),
        Claim::Granted { took_over: Some(a.holder().clone()) }
    );
    let runs = b.runs("upload", 10).await.unwrap();
    let abandoned = runs.iter().find(|r| r.id == run).unwrap().end.clone().unwrap();
    assert_eq!(abandoned.outcome, RunOutcome::Abandoned);
    assert!(abandoned.error.unwrap().contains("another runner took the task over"));
    assert!(!a.renew("upload", lease).await.unwrap(), "a's lease is gone");
    assert!(!a.release("upload").await.unwrap());
    assert!(b.release("upload").await.unwrap());
    assert_eq!(a.claim("upload", lease).await.unwrap(), Claim::Granted { took_over: None });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_one_runner_learns_reaches_the_others() {
    let Some((_server, url)) = server("a_pause_one_runner_learns_reaches_the_others").await else {
        return;
    };
    let (a, b) = (open(&url, "a").await, open(&url, "b").await);
    let (ra, rb) = (PauseRegistry::new(), PauseRegistry::new());
    let (_saver_a, _) = StateSaver::builder(a.clone())
        .pauses("google", ra.clone())
        .debounce(Duration::from_millis(50))
        .follow(Some(Duration::from_millis(100)))
        .start()
        .await
        .unwrap();
    let (_saver_b, _) = StateSaver::builder(b.clone())
        .pauses("google", rb.clone())
        .debounce(Duration::from_millis(50))
        .follow(Some(Duration::from_millis(100)))
        .start()
        .await
        .unwrap();
    let clock = Clock::system();
    let until = clock.wall() + jiff::SignedDuration::from_secs(30);
    assert!(ra.pause(ServiceKey::new("https://www.googleapis.com:443"), until, clock.wall()));
    // Nobody calls `saver_a.changed()`: following writes local changes by itself.
    let started = clock.now();
    let mut seen = None;
    while clock.now() - started < Duration::from_secs(5) {
        if let Some(at) = rb.paused_until("https://www.googleapis.com:443", clock.wall()) {
            seen = Some((at, clock.now() - started));
            break;
        }
        clock.sleep(Duration::from_millis(10)).await;
    }
    let (at, after) = seen.expect("b never learned a's pause");
    assert!((at - until).abs() < jiff::SignedDuration::from_millis(5), "{at} vs {until}");
    eprintln!("pause propagation: {after:?}");
    // `b`'s own save (with or without the pause) does not wipe what `a` holds.
    b.replace_held("pause:google", Vec::new()).await.unwrap();
    let held = a.held("pause:google").await.unwrap();
    assert_eq!(
        held.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
        ["https://www.googleapis.com:443"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_a_typed_error_naming_it_without_secrets() {
    let Some((mut server, url)) =
        server("a_stopped_server_is_a_typed_error_naming_it_without_secrets").await
    else {
        return;
    };
    let store = open(&url, "a").await;
    store.save("t", &1, Expect::Any).await.unwrap();
    server.stop();
    let err = store.load::<i32>("t").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("postgres://unattended@127.0.0.1"), "{text}");
    assert!(!text.contains("password"), "{text}");
    drop(server);
    let refused =
        Store::open_location(&url, StoreConfig::new(), Clock::system()).await.unwrap_err();
    assert!(matches!(refused, StoreError::Open { .. }), "{refused}");
    assert!(
        refused.to_string().contains("cannot open the state database postgres://"),
        "{refused}"
    );
}

#[tokio::test]
async fn held_services_of_two_holders_merge_in_sqlite_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let base = Store::open(&path, StoreConfig::new(), Clock::system()).await.unwrap();
    let (a, b) = (
        base.with_holder(Holder::this_process(Some("a"))),
        base.with_holder(Holder::this_process(Some("b"))),
    );
    let now = Clock::system().wall();
    let later = |s| now + jiff::SignedDuration::from_secs(s);
    a.replace_held("pause:x", vec![HeldService { key: "k".into(), until: later(60) }])
        .await
        .unwrap();
    b.replace_held("pause:x", vec![HeldService { key: "k".into(), until: later(30) }])
        .await
        .unwrap();
    b.replace_held("pause:x", vec![HeldService { key: "j".into(), until: later(10) }])
        .await
        .unwrap();
    let held = a.held("pause:x").await.unwrap();
    assert_eq!(
        held,
        vec![
            HeldService { key: "j".into(), until: later(10) },
            HeldService { key: "k".into(), until: later(60) },
        ]
    );
}

#[tokio::test]
async fn a_lease_of_a_process_gone_from_this_host_is_taken_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = Store::open(dir.path().join("state.db"), StoreConfig::new(), Clock::system())
        .await
        .unwrap();
    // A pid that is free now: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = child.id();
    child.wait().unwrap();
    let mut gone = Holder::this_process(Some("old"));
    gone.pid = gone_pid;
    let (old, new) = (base.with_holder(gone.clone()), base.with_holder(Holder::this_process(None)));
    let hour = Duration::from_secs(3600);
    assert_eq!(old.claim("t", hour).await.unwrap(), Claim::Granted { took_over: None });
    assert_eq!(new.claim("t", hour).await.unwrap(), Claim::Granted { took_over: Some(gone) });
    // A live holder of this host keeps its lease until it expires.
    let live = base.with_holder(Holder::this_process(Some("live")));
    assert!(matches!(live.claim("t", hour).await.unwrap(), Claim::Held(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_one_runner_opens_opens_in_the_others() {
    use unattended_breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer};
    let Some((_server, url)) = server("a_breaker_one_runner_opens_opens_in_the_others").await
    else {
        return;
    };
    let clock = Clock::system();
    let layer = || CircuitBreakerLayer::new(BreakerConfig::standard()).unwrap().clock(clock);
    let (la, lb) = (layer(), layer());
    let mut savers = Vec::new();
    for (name, handle) in [("a", la.handle()), ("b", lb.handle())] {
        let store = open(&url, name).await;
        let (saver, _) = StateSaver::builder(store)
            .breakers("api", handle)
            .follow(Some(Duration::from_millis(100)))
            .start()
            .await
            .unwrap();
        savers.push(saver);
    }
    let host = "https://api.example.com:443";
    la.handle().force_open(host, clock.wall() + jiff::SignedDuration::from_secs(30));
    let started = clock.now();
    while !matches!(lb.handle().state(host), Some(BreakerState::Open { .. })) {
        assert!(clock.now() - started < Duration::from_secs(5), "b never opened the breaker");
        clock.sleep(Duration::from_millis(10)).await;
    }
    eprintln!("breaker propagation: {:?}", clock.now() - started);
}
