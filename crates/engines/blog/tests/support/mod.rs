//! What the blog engine's tests share: the DEV and Hashnode mocks, a folder of posts, a runner
//! on an inline store in a temporary directory.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part of it

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_engine_blog::Ledger;
use unattended_runner::{EngineKinds, OnceOutcome, Runner, RunnerConfig, Transport, transport};
use unattended_store::{Store, StoreConfig};
use unattended_testkit::dev::DevTo;
use unattended_testkit::hashnode::Hashnode;

/// DEV's key and Hashnode's token, which both mocks know.
pub const KEY: &str = "key-of-the-tests";

/// The environment the runner reads the engine's default variables from: `DEV_API_KEY` and
/// `HASHNODE_TOKEN` are [`KEY`].
pub fn env(name: &str) -> Option<String> {
    matches!(name, "DEV_API_KEY" | "HASHNODE_TOKEN").then(|| KEY.to_owned())
}

/// The mocks, the folder and the clock of one test.
pub struct World {
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub dev: DevTo,
    pub hashnode: Hashnode,
    pub publication: String,
}

impl World {
    pub fn new(start: &str) -> Self {
        let clock = Clock::starting_at(start.parse().unwrap());
        let dev = DevTo::new(clock, 1);
        dev.key(KEY);
        let hashnode = Hashnode::new(clock, 2);
        hashnode.token(KEY);
        let publication = hashnode.publication("blog.example.dev");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("posts")).unwrap();
        Self { clock, dir, dev, hashnode, publication }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("posts").join(name)
    }

    /// Writes `posts/<name>` as it is.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Writes a ready post `posts/<name>` titled `title`, with more front matter lines.
    pub fn post(&self, name: &str, title: &str, front: &str) {
        self.write(
            name,
            &format!("---\ntitle: {title}\ntags: [rust, testing]\n{front}publish: true\n---\n# {title}\n\nThe body of {title}.\n"),
        );
    }

    /// A config with the `blog` task publishing to both targets (the services as the engine
    /// sets them up), `task` added to its table and `services` to the file.
    pub fn config(&self, task: &str, services: &str) -> String {
        format!(
            r#"
{services}

[tasks.blog]
engine = "blog"
every = "15m"
tz = "UTC"
folder = "posts"
targets = ["dev", "hashnode"]
hashnode_publication = "{}"
{task}
"#,
            self.publication
        )
    }

    pub async fn store(&self) -> Store {
        let config = StoreConfig::new().inline(true);
        Store::open(self.dir.path().join("state.db"), config, self.clock).await.unwrap()
    }

    pub async fn runner(&self, config: &str) -> Runner {
        self.runner_with(config, transport(self.dev.clone())).await
    }

    /// A runner whose DEV service goes through `dev`.
    pub async fn runner_with(&self, config: &str, dev: Transport) -> Runner {
        let kinds = unattended_engine_blog::register(EngineKinds::new());
        let config = RunnerConfig::parse(config, self.dir.path().join("unattended.toml"), &kinds)
            .unwrap_or_else(|e| panic!("{e}"));
        Runner::builder(config)
            .clock(self.clock)
            .seed(5)
            .store(self.store().await)
            .environment(env)
            .transport("dev", dev)
            .transport("hashnode", transport(self.hashnode.clone()))
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    /// Runs the task once now.
    pub async fn once(&self, runner: &mut Runner) -> OnceOutcome {
        runner.once("blog").await.unwrap()
    }

    /// Runs `runner` for `d` of simulated time, then shuts it down.
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

    /// The task's records of its posts.
    pub async fn ledger(&self, runner: &Runner) -> Ledger {
        Ledger::load(runner.store(), "blog").await.unwrap()
    }

    /// DEV's articles as `(title, url, canonical_url)`.
    pub fn dev_articles(&self) -> Vec<(String, String, String)> {
        self.dev
            .articles()
            .iter()
            .map(|a| {
                let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
                (s("title"), s("url"), s("canonical_url"))
            })
            .collect()
    }

    /// Hashnode's posts as `(title, url, canonicalUrl or "")`.
    pub fn hashnode_posts(&self) -> Vec<(String, String, String)> {
        self.hashnode
            .posts()
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                (s("title"), s("url"), s("canonicalUrl"))
            })
            .collect()
    }
}
