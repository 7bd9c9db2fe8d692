//! Task claims per second: one runner, and three racing for the same task, on a real PostgreSQL
//! server (a throwaway cluster on 127.0.0.1) and on the SQLite file.
//!
//! `cargo bench -p unattended-store --bench leases`. Without PostgreSQL installed only the SQLite
//! rows run (and the bench says so).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use unattended_core::Clock;
use unattended_store::{Claim, Holder, StateStore, Store, StoreConfig};

const LEASE: Duration = Duration::from_secs(30);

/// One claim and its release, by one runner.
fn solo(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: &Store) {
    let mut group = c.benchmark_group("lease");
    group.throughput(Throughput::Elements(1));
    let mut n = 0_u64;
    group.bench_function(format!("{name}: claim + release, one runner"), |b| {
        b.iter(|| {
            n += 1;
            let task = format!("t{}", n % 64);
            rt.block_on(async {
                let claim = store.claim(&task, LEASE).await.unwrap();
                assert!(matches!(claim, Claim::Granted { .. }), "{claim:?}");
                store.release(&task).await.unwrap();
            });
        });
    });
    group.finish();
}

/// Three runners claim the same task at once; the one that gets it releases it.
fn race(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, stores: &[Store]) {
    let mut group = c.benchmark_group("lease");
    group.throughput(Throughput::Elements(stores.len() as u64));
    let mut n = 0_u64;
    group.bench_function(format!("{name}: {} runners claim one task at once", stores.len()), |b| {
        b.iter(|| {
            n += 1;
            let task = format!("r{}", n % 64);
            rt.block_on(async {
                let claims = stores.iter().map(|s| {
                    let (s, task) = (s.clone(), task.clone());
                    tokio::spawn(async move {
                        let claim = s.claim(&task, LEASE).await.unwrap();
                        if matches!(claim, Claim::Granted { .. }) {
                            s.release(&task).await.unwrap();
                        }
                        claim
                    })
                });
                let granted = futures_util::future::join_all(claims)
                    .await
                    .into_iter()
                    .filter(|c| matches!(c, Ok(Claim::Granted { .. })))
                    .count();
                assert!(granted >= 1, "a released task is claimed again");
            });
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let file =
        rt.block_on(Store::open(dir.path().join("state.db"), StoreConfig::new(), clock)).unwrap();
    let named = |s: &Store, n: &str| s.with_holder(Holder::this_process(Some(n)));
    solo(c, &rt, "sqlite", &named(&file, "a"));
    race(c, &rt, "sqlite", &[named(&file, "a"), named(&file, "b"), named(&file, "c")]);

    let Some(bin) = unattended_testkit::postgres::bin_dir() else {
        eprintln!("PostgreSQL is not installed: its rows are skipped");
        return;
    };
    let server = rt.block_on(unattended_testkit::postgres::PgServer::start(&bin, clock)).unwrap();
    let url = server.create_database("bench").unwrap();
    let open = |n: &str| {
        let store = rt.block_on(Store::open_location(&url, StoreConfig::new(), clock)).unwrap();
        store.with_holder(Holder::this_process(Some(n)))
    };
    let stores = [open("a"), open("b"), open("c")];
    solo(c, &rt, "postgres", &stores[0]);
    race(c, &rt, "postgres", &stores);
    drop(stores);
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
