//! Added cost per call of the gate when the window is open.
//!
//! `cargo bench -p unattended-gate`. The gate remembers when the current open span ends, so an
//! open call reads the clock and compares two instants.

use std::future::{Ready, ready};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, service_fn};
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_testkit::drive::call_once;

fn ok(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}

fn post() -> Request<Bytes> {
    Request::post("https://api.example.com/v1/items").body(Bytes::new()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(post, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let always =
        WindowCalendar::new("Europe/Berlin", &["daily 00:00-24:00"], &["2099-01-01"]).unwrap();
    let mut gated =
        GateLayer::new().class("write", always, WhenClosed::Reject).layer(service_fn(ok));
    group.bench_function("gate, write class open", |b| {
        b.iter_batched(post, |req| call_once(&mut gated, req), BatchSize::SmallInput)
    });
    let mut ungated = GateLayer::new()
        .class("publish", WindowCalendar::always(), WhenClosed::Reject)
        .layer(service_fn(ok));
    group.bench_function("gate, class without a rule", |b| {
        b.iter_batched(post, |req| call_once(&mut ungated, req), BatchSize::SmallInput)
    });
    group.finish();

    let hours = WindowCalendar::new(
        "America/Los_Angeles",
        &["mon-fri 09:00-22:00", "sat 10:00-14:00"],
        &["2026-12-25", "2027-01-01"],
    )
    .unwrap();
    let t: jiff::Timestamp = "2026-11-28T23:00:00Z".parse().unwrap();
    c.bench_function("calendar: next_open (the uncached path)", |b| {
        b.iter(|| hours.next_open(std::hint::black_box(t)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
