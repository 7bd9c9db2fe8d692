//! Upload throughput over loopback, the engine against the mock's raw `PUT` speed, and the peak
//! RSS of the `unattended-youtube` process uploading a 1 GiB file.
//!
//! `cargo bench -p unattended-engine-youtube --bench upload`. Criterion measures 64 MiB in
//! 8 MiB chunks both ways (`raw PUTs`: a bare hyper-util client sending the chunks from memory;
//! `engine`: one run of the task, reading the file, with the whole client stack and a checkpoint
//! after every chunk). Then the binary uploads 1 GiB and its peak RSS (`VmHWM`) is printed; set
//! `UPLOAD_BENCH_RSS_MIB=0` to skip it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use unattended_core::Clock;
use unattended_runner::{Runner, RunnerConfig};
use unattended_store::{RunOutcome, Store, StoreConfig};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::serve::{Served, serve};
use unattended_testkit::youtube::YouTube;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 64 * MIB;
const CHUNK: u64 = 8 * MIB;

struct Mocks {
    oauth: GoogleOAuth,
    yt: Served,
    token: Served,
    /// A second YouTube that checks no token, for the raw `PUT`s.
    raw: Served,
}

async fn mocks(clock: Clock) -> Mocks {
    let oauth = GoogleOAuth::new(clock);
    let yt = YouTube::new(clock, 1).with_auth(oauth.clone());
    yt.quota(u32::MAX);
    let raw = YouTube::new(clock, 2);
    raw.quota(u32::MAX);
    Mocks {
        yt: serve(yt).await.unwrap(),
        token: serve(oauth.token_endpoint()).await.unwrap(),
        raw: serve(raw).await.unwrap(),
        oauth,
    }
}

fn config_text(m: &Mocks) -> String {
    format!(
        "[state]\npath = \"state.db\"\n\n[services.youtube]\nbase_url = \"{}\"\n\
         [services.youtube.oauth]\ntoken_url = \"{}/token\"\n\n[tasks.uploads]\n\
         engine = \"youtube\"\nevery = \"5m\"\nfolder = \"videos\"\nchunk_size = \"8MiB\"\n\
         settle = \"0s\"\n",
        m.yt.url(),
        m.token.url()
    )
}

/// A queue folder holding `size` bytes of `fill` (distinct per iteration: YouTube rejects
/// duplicates) and the refresh token `unattended auth google` would have saved.
async fn world(m: &Mocks, clock: Clock, size: u64, fill: u8) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("videos")).unwrap();
    let file = std::fs::File::create(dir.path().join("videos/clip.webm")).unwrap();
    let mut out = std::io::BufWriter::new(file);
    let block = vec![fill; MIB as usize];
    for _ in 0..size / MIB {
        std::io::Write::write_all(&mut out, &block).unwrap();
    }
    std::io::Write::flush(&mut out).unwrap();
    std::fs::write(dir.path().join("videos/clip.toml"), "title = \"clip\"\n").unwrap();
    std::fs::write(dir.path().join("unattended.toml"), config_text(m)).unwrap();
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let grant = SecretString::from(m.oauth.grant());
    store.blocking(|db| db.save_credential("google", &grant, clock.wall())).unwrap();
    dir
}

async fn engine_upload(m: &Mocks, clock: Clock, dir: &Path) -> Duration {
    let kinds = unattended_engine_youtube::kinds();
    let config = RunnerConfig::parse(&config_text(m), dir.join("unattended.toml"), &kinds).unwrap();
    let store = Store::open(dir.join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let mut runner = Runner::builder(config)
        .clock(clock)
        .store(store)
        .environment(|var| match var {
            "GOOGLE_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
            "GOOGLE_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
            _ => None,
        })
        .build()
        .await
        .unwrap();
    let start = clock.now();
    let outcome = runner.once("uploads").await.unwrap();
    let took = clock.now() - start;
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);
    took
}

/// The same bytes as bare `PUT`s from memory: a session, then the chunks, nothing else.
async fn raw_upload(
    m: &Mocks,
    clock: Clock,
    http: &Client<HttpConnector, Full<Bytes>>,
) -> Duration {
    let start = clock.now();
    let begin = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/upload/youtube/v3/videos?uploadType=resumable&part=snippet", m.raw.url()))
        .header("x-upload-content-length", SIZE)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"snippet":{"title":"raw"}}"#)))
        .unwrap();
    let res = http.request(begin).await.unwrap();
    let session = res.headers()["location"].to_str().unwrap().to_owned();
    res.into_body().collect().await.unwrap();
    let chunk = Bytes::from(vec![7u8; CHUNK as usize]);
    for first in (0..SIZE).step_by(CHUNK as usize) {
        let put = Request::builder()
            .method(Method::PUT)
            .uri(&session)
            .header("content-range", format!("bytes {first}-{}/{SIZE}", first + CHUNK - 1))
            .body(Full::new(chunk.clone()))
            .unwrap();
        let res = http.request(put).await.unwrap();
        assert!(matches!(res.status().as_u16(), 200 | 201 | 308), "{}", res.status());
        res.into_body().collect().await.unwrap();
    }
    clock.now() - start
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let clock = Clock::system();
    let m = rt.block_on(mocks(clock));
    let http = Client::builder(TokioExecutor::new()).build_http();
    let mut group = c.benchmark_group("upload 64 MiB over loopback");
    group.sample_size(10).throughput(Throughput::Bytes(SIZE));
    group.bench_function("raw PUTs", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|_| rt.block_on(raw_upload(&m, clock, &http))).sum::<Duration>()
        });
    });
    let mut fill = 0u8;
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                fill = fill.wrapping_add(1);
                let dir = rt.block_on(world(&m, clock, SIZE, fill));
                took += rt.block_on(engine_upload(&m, clock, dir.path()));
            }
            took
        });
    });
    group.finish();
}

/// The binary uploads `mib` MiB; its peak RSS is read from `/proc` while it runs.
fn peak_rss(mib: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let clock = Clock::system();
    let m = rt.block_on(mocks(clock));
    let dir = rt.block_on(world(&m, clock, mib * MIB, 0xa5));
    let start = clock.now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_unattended-youtube"))
        .arg("--config")
        .arg(dir.path().join("unattended.toml"))
        .args(["once", "uploads"])
        .env("GOOGLE_CLIENT_ID", CLIENT_ID)
        .env("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let exit = loop {
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix(" kB")?.parse().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        rt.block_on(async { clock.sleep(Duration::from_millis(20)).await });
    };
    assert!(exit.success(), "the upload failed: {exit}");
    let took = (clock.now() - start).as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // MiB and KiB counts far below 2^52
    let rate = mib as f64 / took;
    println!(
        "unattended-youtube, {mib} MiB in 8 MiB chunks over loopback: peak RSS {:.1} MiB, \
         {took:.1} s ({rate:.0} MiB/s, process start and token included)",
        peak_kib as f64 / 1024.0
    );
}

criterion_group!(benches, throughput);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let mib =
        std::env::var("UPLOAD_BENCH_RSS_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    if mib > 0 && std::env::args().any(|a| a == "--bench") {
        peak_rss(mib);
    }
}
