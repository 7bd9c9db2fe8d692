//! The alert outbox: one alert per incident, deliveries per sink, persistence, pruning, failures.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use unattended_core::Clock;
use unattended_store::{AlertKind, NewAlert, StateDb, Store, StoreConfig, StoreError};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

async fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::new().inline(true), Clock::starting_at(t0())).await.unwrap()
}

fn alert(incident: &str, kind: AlertKind, created_at: Timestamp) -> NewAlert {
    NewAlert {
        incident: incident.to_owned(),
        kind,
        task: Some("upload".to_owned()),
        title: format!("{incident} {kind}"),
        detail: "the refresh token was revoked".to_owned(),
        help: Some("run `unattended auth google`".to_owned()),
        created_at,
    }
}

fn sinks(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

#[tokio::test]
async fn an_incident_raises_one_alert_and_recovers_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    let two = sinks(&["log", "webhook:0"]);

    let raised = store.record_alert(alert("auth", AlertKind::Raised, at(0)), two.clone()).await;
    let raised = raised.unwrap().expect("a new incident raises an alert");
    assert_eq!((raised.kind, raised.created_at), (AlertKind::Raised, at(0)));
    for later in [1, 2] {
        let again = store.record_alert(alert("auth", AlertKind::Raised, at(later)), two.clone());
        assert_eq!(again.await.unwrap(), None, "an open incident raises nothing more");
    }
    let open = store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].key.as_str(), open[0].opened_at), ("auth", at(0)));
    assert_eq!(open[0].alert, raised);

    let none = store.record_alert(alert("late", AlertKind::Recovered, at(3)), two.clone());
    assert_eq!(none.await.unwrap(), None, "an incident that is not open does not recover");
    let recovered = store.record_alert(alert("auth", AlertKind::Recovered, at(4)), two.clone());
    let recovered = recovered.await.unwrap().expect("an open incident recovers");
    assert_eq!(recovered.kind, AlertKind::Recovered);
    assert!(recovered.id > raised.id);
    assert_eq!(store.open_incidents().await.unwrap(), []);
    let twice = store.record_alert(alert("auth", AlertKind::Recovered, at(5)), two.clone());
    assert_eq!(twice.await.unwrap(), None, "one recovery");

    let all = store.alerts(10).await.unwrap();
    assert_eq!(all, [recovered.clone(), raised.clone()], "newest first, nothing else written");
    let reopened = store.record_alert(alert("auth", AlertKind::Raised, at(6)), two).await;
    assert!(reopened.unwrap().is_some(), "after recovery the incident can open again");
}

#[tokio::test]
async fn deliveries_are_pending_per_sink_until_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open(&path).await;
    let a = store.record_alert(alert("a", AlertKind::Raised, at(0)), sinks(&["log", "hook"]));
    let a = a.await.unwrap().unwrap();
    let pending = store.pending_deliveries().await.unwrap();
    assert_eq!(pending.len(), 2);
    for (p, sink) in pending.iter().zip(["hook", "log"]) {
        assert_eq!(p.alert, a);
        assert_eq!((p.delivery.sink.as_str(), p.delivery.attempts), (sink, 0));
        assert_eq!((p.delivery.next_attempt_at, p.delivery.delivered_at), (at(0), None));
    }

    assert!(store.mark_delivered(a.id, "log", at(1)).await.unwrap());
    assert!(!store.mark_delivered(a.id, "log", at(2)).await.unwrap(), "delivered once");
    // A retry time with a fraction sorts as a time, not as text ("…:00.5Z" > "…:00Z").
    let soon = t0() + SignedDuration::from_millis(30_500);
    assert!(
        store.mark_failed(a.id, "hook", "HTTP 503 from https://hooks.example", soon).await.unwrap()
    );
    let b = store.record_alert(alert("b", AlertKind::Raised, at(30)), sinks(&["hook"]));
    let b = b.await.unwrap().unwrap();
    let pending = store.pending_deliveries().await.unwrap();
    let order: Vec<_> = pending.iter().map(|p| (p.alert.id, p.delivery.next_attempt_at)).collect();
    assert_eq!(order, [(b.id, at(30)), (a.id, soon)], "the earliest due first");
    assert_eq!(pending[1].delivery.attempts, 1);
    assert_eq!(
        pending[1].delivery.last_error.as_deref(),
        Some("HTTP 503 from https://hooks.example")
    );

    // Reopened (a restart): the same pending deliveries, the same history.
    drop(store);
    let store = open(&path).await;
    assert_eq!(store.pending_deliveries().await.unwrap(), pending);
    assert!(store.mark_delivered(a.id, "hook", at(40)).await.unwrap());
    let done = store.deliveries(a.id).await.unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(
        (done[0].sink.as_str(), done[0].attempts, done[0].delivered_at),
        ("hook", 2, Some(at(40)))
    );
    assert_eq!(done[0].last_error, None, "a delivered alert carries no error");
    assert_eq!(
        (done[1].sink.as_str(), done[1].attempts, done[1].delivered_at),
        ("log", 1, Some(at(1)))
    );
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 1, "only b's");
    assert_eq!(store.open_incidents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn pruning_keeps_the_newest_delivered_the_undelivered_and_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db")).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        let key = format!("i{n}");
        let raised = store.record_alert(alert(&key, AlertKind::Raised, at(n)), sinks(&["log"]));
        let raised = raised.await.unwrap().unwrap();
        let recovered =
            store.record_alert(alert(&key, AlertKind::Recovered, at(n)), sinks(&["log"]));
        ids.push((raised.id, recovered.await.unwrap().unwrap().id));
    }
    // Everything delivered except i1's recovery; then i0 opens again.
    for (n, &(raised, recovered)) in ids.iter().enumerate() {
        store.mark_delivered(raised, "log", at(100)).await.unwrap();
        if n != 1 {
            store.mark_delivered(recovered, "log", at(100)).await.unwrap();
        }
    }
    let open = store.record_alert(alert("i0", AlertKind::Raised, at(200)), vec![]).await;
    let open = open.unwrap().unwrap(); // no sinks: nothing to deliver, but it opened i0

    assert_eq!(store.prune_alerts(3).await.unwrap(), 21 - 3 - 1 - 1);
    let kept: Vec<_> = store.alerts(100).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(kept, [open.id, ids[9].1, ids[9].0, ids[8].1, ids[1].1], "newest first");
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 1, "i1's recovery is not lost");
    assert!(store.deliveries(ids[0].0).await.unwrap().is_empty(), "deliveries go with alerts");
    assert_eq!(store.prune_alerts(3).await.unwrap(), 0, "nothing more to prune");
    assert_eq!(store.open_incidents().await.unwrap()[0].alert.id, open.id);
}

#[tokio::test]
async fn a_full_disk_writes_no_part_of_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.db");
    let config = StoreConfig::new().max_bytes(Some(128 * 1024));
    let mut db = StateDb::open(&path, &config).unwrap();
    let mut huge = alert("disk", AlertKind::Raised, at(0));
    // The alert row fits; its many deliveries do not.
    let many: Vec<String> = (0..4000).map(|n| format!("webhook:{n}:{}", "x".repeat(50))).collect();
    let err = db.record_alert(&huge, &many).unwrap_err();
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert_eq!(db.alerts(10).unwrap(), [], "no alert without its deliveries");
    assert_eq!(db.open_incidents().unwrap(), [], "and no incident without its alert");
    huge.detail = "small".to_owned();
    assert!(db.record_alert(&huge, &sinks(&["log"])).unwrap().is_some(), "then it is new");
}

#[tokio::test]
async fn a_read_only_store_reads_alerts_and_refuses_to_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open(&path).await;
    store.record_alert(alert("a", AlertKind::Raised, at(0)), sinks(&["log"])).await.unwrap();
    let config = StoreConfig::new().inline(true).read_only(true);
    let reader = Store::open(&path, config, Clock::starting_at(t0())).await.unwrap();
    assert_eq!(reader.open_incidents().await.unwrap().len(), 1);
    assert_eq!(reader.pending_deliveries().await.unwrap().len(), 1);
    let err = reader.record_alert(alert("b", AlertKind::Raised, at(1)), vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
}
