//! Entries: what engines keep beyond their checkpoint.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use unattended_core::Clock;
use unattended_store::{StateDb, Store, StoreConfig, StoreError};

fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

async fn open(dir: &tempfile::TempDir, clock: Clock) -> Store {
    Store::open(dir.path().join("state.db"), StoreConfig::new().inline(true), clock).await.unwrap()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Page {
    etag: Option<String>,
    hash: String,
}

fn page(etag: &str, hash: &str) -> Page {
    Page { etag: Some(etag.into()), hash: hash.into() }
}

#[tokio::test(start_paused = true)]
async fn put_replaces_the_value_and_keeps_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::starting_at(t0());
    let store = open(&dir, clock).await;
    store.put_entry("prices", "page", "https://a.example/1", &page("\"v1\"", "h1")).await.unwrap();
    store.put_entry("prices", "page", "https://a.example/2", &page("\"v1\"", "h2")).await.unwrap();
    clock.sleep(Duration::from_secs(60)).await;
    store.put_entry("prices", "page", "https://a.example/1", &page("\"v2\"", "h3")).await.unwrap();

    let one = store.entry::<Page>("prices", "page", "https://a.example/1").await.unwrap().unwrap();
    assert_eq!(one.value, page("\"v2\"", "h3"));
    assert_eq!(one.created_at, t0());
    assert_eq!(one.updated_at, "2026-11-28T10:01:00Z".parse().unwrap());
    let all = store.entries::<Page>("prices", "page", None, 10).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["https://a.example/1", "https://a.example/2"], "first written first");
    assert!(store.entry::<Page>("prices", "page", "https://a.example/3").await.unwrap().is_none());
    assert!(store.entry::<Page>("other", "page", "https://a.example/1").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn insert_writes_a_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Clock::starting_at(t0())).await;
    assert!(store.insert_entry("prices", "change", "c1", &"first").await.unwrap());
    assert!(!store.insert_entry("prices", "change", "c1", &"again").await.unwrap());
    assert!(store.insert_entry("prices", "change", "c2", &"second").await.unwrap());
    let all = store.entries::<String>("prices", "change", None, 10).await.unwrap();
    let values: Vec<&str> = all.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(values, ["first", "second"], "the replayed insert changed nothing");
}

#[tokio::test(start_paused = true)]
async fn entries_page_in_order_and_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Clock::starting_at(t0())).await;
    for i in 0..5 {
        store.insert_entry("t", "change", &format!("c{i}"), &i).await.unwrap();
    }
    store.insert_entry("t", "page", "p", &0).await.unwrap();
    store.insert_entry("u", "change", "c0", &0).await.unwrap();
    let first = store.entries::<u32>("t", "change", None, 2).await.unwrap();
    assert_eq!(first.iter().map(|e| e.value).collect::<Vec<_>>(), [0, 1]);
    let rest = store.entries::<u32>("t", "change", Some(first[1].seq), 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.value).collect::<Vec<_>>(), [2, 3, 4]);

    assert!(store.delete_entry("t", "change", "c0").await.unwrap());
    assert!(!store.delete_entry("t", "change", "c0").await.unwrap());
    assert_eq!(store.delete_entries("t").await.unwrap(), 5);
    assert!(store.entries::<u32>("t", "change", None, 10).await.unwrap().is_empty());
    assert_eq!(store.entries::<u32>("u", "change", None, 10).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn entries_outlive_the_process_and_a_wrong_type_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::starting_at(t0());
    open(&dir, clock).await.put_entry("t", "page", "p", &page("\"v1\"", "h1")).await.unwrap();
    let store = open(&dir, clock).await;
    let again = store.entry::<Page>("t", "page", "p").await.unwrap().unwrap();
    assert_eq!(again.value, page("\"v1\"", "h1"));
    let err = store.entry::<u64>("t", "page", "p").await.unwrap_err();
    assert!(matches!(err, StoreError::Json(_)), "{err}");
    assert_eq!(store.blocking(|db| db.schema_version()).unwrap(), StateDb::SCHEMA_VERSION);
}
