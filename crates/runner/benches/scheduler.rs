//! What scheduling costs: 1,000 tasks (every 15 minutes, no-op engines) over a simulated day,
//! under a paused clock with a real SQLite store. Prints the allocations of one simulated day,
//! then lets criterion time it.

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{
    Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError,
};
use unattended_store::{Store, StoreConfig};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[derive(Clone)]
struct Noop;

#[async_trait::async_trait]
impl Engine for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn services(&self) -> Vec<String> {
        Vec::new()
    }
    async fn run(&self, _: &mut TaskContext) -> Result<RunSummary, TaskError> {
        Ok(RunSummary::new().items(1))
    }
}

fn config(tasks: usize, dir: &std::path::Path) -> RunnerConfig {
    let mut text = String::new();
    for n in 0..tasks {
        text.push_str(&format!(
            "[tasks.t{n}]\nengine = \"noop\"\nevery = \"15m\"\njitter = \"5m\"\ntz = \"UTC\"\n"
        ));
    }
    RunnerConfig::parse(&text, dir.join("unattended.toml"), &EngineKinds::new().with_engine(Noop))
        .unwrap()
}

/// One simulated day of `tasks` tasks; returns the runs recorded.
fn day(tasks: usize) -> usize {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let clock = Clock::starting_at("2026-12-01T00:00:00Z".parse().unwrap());
            let store =
                Store::open(dir.path().join("state.db"), StoreConfig::new().inline(true), clock)
                    .await
                    .unwrap();
            let mut runner = Runner::builder(config(tasks, dir.path()))
                .clock(clock)
                .seed(1)
                .store(store)
                .monitor_readings(|| Some(1 << 20), |_| Some(1 << 40))
                .build()
                .await
                .unwrap();
            let stop = CancellationToken::new();
            let stopper = stop.clone();
            tokio::spawn(async move {
                clock.sleep(Duration::from_secs(86_400)).await;
                stopper.cancel();
            });
            runner.run(stop).await.unwrap();
            runner.view().tasks().len()
        })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    group.sample_size(10).measurement_time(Duration::from_secs(60));
    group.bench_function("1000 tasks every 15m, one simulated day", |b| b.iter(|| day(1000)));
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    {
        let _profiler = dhat::Profiler::builder().testing().build();
        day(1000);
        let stats = dhat::HeapStats::get();
        println!(
            "one simulated day, 1000 tasks (96,000 runs): {} allocations, {} bytes in all, peak {} bytes live",
            stats.total_blocks, stats.total_bytes, stats.max_bytes
        );
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
