//! The `unattended-youtube` binary killed (SIGKILL) while a chunk is on the wire: the next
//! process asks YouTube where the upload stands and goes on from the confirmed offset, in the
//! same session, and the video exists once with identical bytes.

use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use secrecy::SecretString;
use unattended_core::Clock;
use unattended_engine_youtube::Checkpoint;
use unattended_store::{StateStore, Store, StoreConfig};
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::serve::serve;
use unattended_testkit::youtube::{YouTube, sha256_hex};

const BIN: &str = env!("CARGO_BIN_EXE_unattended-youtube");
const CHUNK: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_chunk_resumes_from_the_confirmed_offset() {
    let clock = Clock::system();
    let oauth = GoogleOAuth::new(clock);
    let yt = YouTube::new(clock, 3).with_auth(oauth.clone());
    let chunks = Route::of(Method::PUT, "/upload");
    // The fourth chunk is never answered: the process waits on it until it is killed.
    yt.fault(chunks, Trigger::Nth(4, 4), Fault::Hang);
    let (yt_at, oauth_at) =
        (serve(yt.clone()).await.unwrap(), serve(oauth.token_endpoint()).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("videos")).unwrap();
    let size = 6 * CHUNK + 4_321;
    let mut data = vec![0; usize::try_from(size).unwrap()];
    fastrand::Rng::with_seed(11).fill(&mut data);
    std::fs::write(dir.path().join("videos/talk.webm"), &data).unwrap();
    std::fs::write(dir.path().join("videos/talk.toml"), "title = \"talk\"\n").unwrap();
    let config = dir.path().join("unattended.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\npath = \"state.db\"\n\n[services.youtube]\nbase_url = \"{}\"\n\
             [services.youtube.oauth]\ntoken_url = \"{}/token\"\n\n[tasks.uploads]\n\
             engine = \"youtube\"\nevery = \"5m\"\nfolder = \"videos\"\nchunk_size = \"256KiB\"\n\
             settle = \"0s\"\n",
            yt_at.url(),
            oauth_at.url()
        ),
    )
    .unwrap();
    // The refresh token `unattended auth google` would have saved.
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let grant = SecretString::from(oauth.grant());
    store.blocking(|db| db.save_credential("google", &grant, clock.wall())).unwrap();
    drop(store);

    let once = move || {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&config)
            .args(["once", "uploads"])
            .env("GOOGLE_CLIENT_ID", CLIENT_ID)
            .env("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let chunk_puts = || {
        yt.log()
            .to(&Method::PUT, "/upload")
            .iter()
            .filter(|r| !content_range(r).contains('*'))
            .map(content_range)
            .collect::<Vec<_>>()
    };

    let mut child = once().spawn().unwrap();
    let start = clock.now();
    while chunk_puts().len() < 4 {
        assert!(clock.now() - start < Duration::from_secs(30), "the fourth chunk never came");
        clock.sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no last save
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success());
    assert!(yt.uploads().is_empty());

    // What the killed process left: the session and the three chunks YouTube confirmed.
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    let saved = store.load_checkpoint("uploads").await.unwrap().expect("a checkpoint");
    let checkpoint: Checkpoint = serde_json::from_value(saved.value).unwrap();
    let upload = checkpoint.upload.expect("the upload in flight");
    assert_eq!((upload.confirmed, upload.sessions), (3 * CHUNK, 1));
    drop(store);

    let mut again = once();
    let out = tokio::task::spawn_blocking(move || again.output().unwrap()).await.unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let uploads = yt.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!((uploads[0].bytes, uploads[0].sha256.as_str()), (size, sha256_hex(&data).as_str()));
    assert_eq!(yt.sessions_started(), 1, "the same session");
    let starts: Vec<u64> = chunk_puts()
        .iter()
        .map(|r| r.trim_start_matches("bytes ").split('-').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        starts,
        [0, 1, 2, 3, 3, 4, 5, 6].map(|n| n * CHUNK),
        "only the chunk in flight again"
    );
    assert!(dir.path().join("videos/done/talk.webm").exists());
}

fn content_range(r: &unattended_testkit::log::Recorded) -> String {
    r.headers
        .iter()
        .find(|(k, _)| *k == "content-range")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
