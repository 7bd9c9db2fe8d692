//! Over real sockets on 127.0.0.1, in real time: the YouTube and OAuth mocks served by hyper,
//! the engine on the default HTTPS transport (plain HTTP to loopback), faults dropping real
//! connections.

use std::time::Duration;

use http::Method;
use secrecy::SecretString;
use unattended_core::Clock;
use unattended_runner::{Runner, RunnerConfig};
use unattended_store::{RunOutcome, Store, StoreConfig};
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::serve::serve;
use unattended_testkit::youtube::{YouTube, sha256_hex};

const CHUNK: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_loopback_survives_resets_and_short_ranges() {
    let clock = Clock::system();
    let oauth = GoogleOAuth::new(clock);
    let yt = YouTube::new(clock, 3).with_auth(oauth.clone());
    let chunks = Route::of(Method::PUT, "/upload");
    yt.fault(chunks.clone(), Trigger::Nth(2, 2), Fault::ResetMidChunk);
    yt.fault(chunks.clone(), Trigger::Nth(5, 5), Fault::Transport);
    yt.fault(chunks, Trigger::Nth(8, 8), Fault::ShortRange);
    let yt_at = serve(yt.clone()).await.unwrap();
    let oauth_at = serve(oauth.token_endpoint()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("videos")).unwrap();
    let size = 10 * CHUNK + 12_345;
    let mut data = vec![0; size as usize];
    fastrand::Rng::with_seed(9).fill(&mut data);
    std::fs::write(dir.path().join("videos/clip.webm"), &data).unwrap();
    std::fs::write(dir.path().join("videos/clip.toml"), "title = \"clip\"\n").unwrap();
    let text = format!(
        "[services.youtube]\nbase_url = \"{}\"\n[services.youtube.timeouts]\nattempt = \"10s\"\n\
         [services.youtube.oauth]\ntoken_url = \"{}/token\"\n\n\
         [tasks.uploads]\nengine = \"youtube\"\nevery = \"5m\"\nfolder = \"videos\"\n\
         chunk_size = \"512KiB\"\nsettle = \"0s\"\n",
        yt_at.url(),
        oauth_at.url()
    );
    let kinds = unattended_engine_youtube::kinds();
    let config = RunnerConfig::parse(&text, dir.path().join("unattended.toml"), &kinds).unwrap();
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let grant = SecretString::from(oauth.grant());
    store.blocking(|db| db.save_credential("google", &grant, clock.wall())).unwrap();
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
    let outcome = clock
        .timeout(Duration::from_secs(60), runner.once("uploads"))
        .await
        .expect("the run ends")
        .unwrap();
    assert_eq!(outcome.end.outcome, RunOutcome::Succeeded, "{:?}", outcome.end);

    let uploads = yt.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!((uploads[0].bytes, uploads[0].sha256.as_str()), (size, sha256_hex(&data).as_str()));
    assert_eq!(yt.sessions_started(), 1);
    let sent: u64 = yt.log().to(&Method::PUT, "/upload").iter().map(|r| r.body_len as u64).sum();
    // Three interruptions, each costing at most one 512 KiB chunk.
    assert!(sent - size <= 3 * 2 * CHUNK, "sent again: {}", sent - size);
    assert!(dir.path().join("videos/done/clip.webm").exists());
}
