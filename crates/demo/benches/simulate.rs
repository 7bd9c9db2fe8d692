//! How long `unattended simulate` takes: 21 days of the four engines under the paused clock,
//! layered only, one sample per measurement (each is seconds long).

use criterion::{Criterion, criterion_group, criterion_main};
use unattended_demo::{SimulateArgs, simulate};

fn args(days: u32) -> SimulateArgs {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }
    let days = days.to_string();
    Cli::parse_from(["simulate", "--days", &days, "--layered-only"]).args
}

fn bench(c: &mut Criterion) {
    let kinds = unattended_demo::engines();
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.bench_function("21 days, layered", |b| {
        let a = args(21);
        b.iter(|| simulate(&a, &kinds).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
