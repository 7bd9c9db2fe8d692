//! Checkpoint saves per second and load latency, WAL mode, on this machine's disk.
//!
//! `cargo bench -p unattended-store`. Saves per second = 1 / the time per save.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use unattended_core::Clock;
use unattended_store::{Durability, Expect, StateDb, StateStore, Store, StoreConfig};

const VALUE: &str = r#"{"file":"talk.mp4","session":"https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=AbCdEf","bytes_sent":268435456,"total":1073741824,"etag":"\"abc\""}"#;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let now = "2026-11-28T10:00:00Z".parse().unwrap();
    let mut group = c.benchmark_group("checkpoint");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let config = StoreConfig::new().durability(durability);
        let mut db = StateDb::open(dir.path().join(format!("{name}.db")), &config).unwrap();
        group.bench_function(format!("save, synchronous={name}"), |b| {
            b.iter(|| db.save_checkpoint("upload", VALUE, Expect::Any, now).unwrap())
        });
        group.bench_function(format!("load, synchronous={name}"), |b| {
            b.iter(|| db.load_checkpoint("upload").unwrap())
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    let store = rt
        .block_on(Store::open(dir.path().join("async.db"), StoreConfig::new(), Clock::system()))
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(VALUE).unwrap();
    group.bench_function("save through Store (blocking pool)", |b| {
        b.iter(|| rt.block_on(store.save_checkpoint("upload", value.clone(), Expect::Any)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
