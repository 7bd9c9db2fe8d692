//! A world for the engine's tests: a queue folder, the YouTube and Google OAuth mocks on one
//! paused clock, a store, and a runner wired to them in-process.
#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::Method;
use jiff::Timestamp;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_engine_youtube::Checkpoint;
use unattended_runner::{EngineKinds, OnceOutcome, Runner, RunnerConfig, Transport, transport};
use unattended_store::{StateStore, Store, StoreConfig};
use unattended_testkit::log::Recorded;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::youtube::{YouTube, sha256_hex};

/// The chunk size the tests upload with: four of YouTube's 256 KiB units.
pub const CHUNK: u64 = 1 << 20;

pub struct World {
    pub dir: tempfile::TempDir,
    pub clock: Clock,
    pub oauth: GoogleOAuth,
    pub yt: YouTube,
    pub kinds: EngineKinds,
}

impl World {
    pub fn new(start: &str) -> Self {
        let clock = Clock::starting_at(start.parse().unwrap());
        let oauth = GoogleOAuth::new(clock);
        let yt = YouTube::new(clock, 7).with_auth(oauth.clone());
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("videos")).unwrap();
        Self { dir, clock, oauth, yt, kinds: unattended_engine_youtube::kinds() }
    }

    pub fn queue(&self) -> PathBuf {
        self.dir.path().join("videos")
    }

    /// Puts `name` (`size` bytes, made from its name) and its sidecar in the queue, written an
    /// hour ago on the clock; returns the bytes.
    pub fn video(&self, name: &str, size: u64, sidecar: &str) -> Vec<u8> {
        let seed = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut data = vec![0; usize::try_from(size).unwrap()];
        rng.fill(&mut data);
        let stem = Path::new(name).file_stem().unwrap().to_str().unwrap();
        self.write(name, &data);
        self.write(&format!("{stem}.toml"), sidecar.as_bytes());
        data
    }

    /// Writes `name` in the queue, dated an hour ago on the clock.
    pub fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.queue().join(name);
        fs::write(&path, bytes).unwrap();
        let an_hour_ago =
            self.clock.wall().checked_sub(jiff::SignedDuration::from_hours(1)).unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::try_from(an_hour_ago).unwrap()).unwrap();
    }

    pub fn config_text(&self, extra: &str) -> String {
        format!(
            "[tasks.uploads]\nengine = \"youtube\"\nevery = \"5m\"\ntz = \"UTC\"\n\
             folder = \"videos\"\nchunk_size = \"1MiB\"\nsettle = \"1m\"\n{extra}\n"
        )
    }

    pub fn config(&self, extra: &str) -> RunnerConfig {
        RunnerConfig::parse(
            &self.config_text(extra),
            self.dir.path().join("unattended.toml"),
            &self.kinds,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn store(&self) -> Store {
        let config = StoreConfig::new().inline(true);
        Store::open(self.dir.path().join("state.db"), config, self.clock).await.unwrap()
    }

    /// A runner on the mocks, with a refresh token saved as `unattended auth google` would.
    pub async fn runner(&self, extra: &str) -> Runner {
        self.runner_with(extra, transport(self.yt.clone())).await
    }

    /// The same, YouTube reached through `youtube` (the mock wrapped by the test).
    pub async fn runner_with(&self, extra: &str, youtube: Transport) -> Runner {
        let store = self.store().await;
        let grant = SecretString::from(self.oauth.grant());
        let now = self.clock.wall();
        store.blocking(|db| db.save_credential("google", &grant, now)).unwrap();
        Runner::builder(self.config(extra))
            .clock(self.clock)
            .seed(5)
            .store(store)
            .transport("youtube", youtube)
            .transport("oauth:google", transport(self.oauth.token_endpoint()))
            .environment(|var| match var {
                "GOOGLE_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
                "GOOGLE_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
                _ => None,
            })
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    /// One run of the task, now.
    pub async fn once(&self, runner: &mut Runner) -> OnceOutcome {
        runner.once("uploads").await.unwrap()
    }

    /// The runner on its schedule for `d` of clock time.
    pub async fn run_for(&self, runner: &mut Runner, d: Duration) {
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let clock = self.clock;
        let timer = tokio::spawn(async move {
            clock.sleep(d).await;
            stopper.cancel();
        });
        runner.run(stop).await.unwrap();
        timer.await.unwrap();
    }

    pub async fn checkpoint(&self, runner: &Runner) -> Option<Checkpoint> {
        let saved = runner.store().load_checkpoint("uploads").await.unwrap()?;
        Some(serde_json::from_value(saved.value).unwrap())
    }

    /// The chunk `PUT`s YouTube received (status queries left out).
    pub fn chunks(&self) -> Vec<Recorded> {
        self.yt
            .log()
            .to(&Method::PUT, "/upload")
            .into_iter()
            .filter(|r| !content_range(r).contains('*'))
            .collect()
    }

    /// The status queries YouTube received.
    pub fn status_queries(&self) -> usize {
        self.yt
            .log()
            .to(&Method::PUT, "/upload")
            .iter()
            .filter(|r| content_range(r).contains('*'))
            .count()
    }

    /// The sessions started (`POST`s answered `200`).
    pub fn sessions(&self) -> u64 {
        self.yt.sessions_started()
    }

    /// Bytes of video sent in all.
    pub fn bytes_sent(&self) -> u64 {
        self.chunks().iter().map(|r| r.body_len as u64).sum()
    }

    /// The first byte of each chunk sent, in order.
    pub fn chunk_starts(&self) -> Vec<u64> {
        self.chunks()
            .iter()
            .map(|r| {
                let range = content_range(r);
                range.trim_start_matches("bytes ").split('-').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    /// YouTube holds exactly these videos, once each, with these bytes; each is in `done/` with
    /// its record, and gone from the queue.
    pub fn assert_uploaded(&self, videos: &[(&str, &[u8])]) {
        let uploads = self.yt.uploads();
        assert_eq!(uploads.len(), videos.len(), "videos on YouTube: {uploads:?}");
        for (name, data) in videos {
            let hash = sha256_hex(data);
            let found: Vec<_> = uploads.iter().filter(|u| u.sha256 == hash).collect();
            assert_eq!(found.len(), 1, "{name} on YouTube exactly once, with identical bytes");
            assert_eq!(found[0].bytes, data.len() as u64);
            let done = self.queue().join("done");
            assert_eq!(&fs::read(done.join(name)).unwrap(), data, "{name} in done/");
            let record: toml::Table = toml::from_str(
                &fs::read_to_string(done.join(format!("{name}.uploaded.toml"))).unwrap(),
            )
            .unwrap();
            assert_eq!(record["video_id"].as_str(), Some(found[0].id.as_str()), "{name}'s record");
            assert!(!self.queue().join(name).exists(), "{name} left the queue");
        }
    }
}

fn content_range(r: &Recorded) -> String {
    r.headers
        .iter()
        .find(|(k, _)| *k == "content-range")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A plain sidecar.
pub fn sidecar(title: &str) -> String {
    format!(
        "title = \"{title}\"\ndescription = \"about {title}\"\ntags = [\"test\"]\ncategory = 22\nprivacy = \"unlisted\"\n"
    )
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}
