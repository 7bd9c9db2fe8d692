//! The world the engines work in: the mocks, the folder of videos and posts they are fed, and
//! the config that points every engine at the mocks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use unattended_core::Clock;
use unattended_runner::{EngineKinds, RunnerBuilder, RunnerConfig, RunnerError, transport};
use unattended_store::{Store, StoreConfig, StoreError};
use unattended_testkit::dev::DevTo;
use unattended_testkit::gmail::Gmail;
use unattended_testkit::hashnode::Hashnode;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::serve::{Served, serve};
use unattended_testkit::website::{Robots, Website};
use unattended_testkit::youtube::{YouTube, sha256_hex};

/// The Google credential both Google services share.
pub(crate) const CREDENTIAL: &str = "google";
/// The variable the DEV and Hashnode services read their key from (given by the runner's
/// environment, never the process's).
const KEY_ENV: &str = "UNATTENDED_DEMO_API_KEY";
/// The key both mocks know.
pub(crate) const KEY: &str = "demo-api-key";
/// The shop's pages the scrape task watches.
pub(crate) const PAGES: [&str; 3] = ["/item/1", "/item/2", "/item/3"];
/// A video's size: five 256 KiB chunks and a bit.
const VIDEO_BYTES: usize = 5 * 256 * 1024 + 4321;

/// The engines the demo configures.
pub(crate) fn kinds() -> EngineKinds {
    let kinds = unattended_engine_youtube::register(EngineKinds::new());
    let kinds = unattended_engine_email::register(kinds);
    let kinds = unattended_engine_blog::register(kinds);
    unattended_engine_scrape::register(kinds)
}

/// The mocks; clones share their state.
#[derive(Clone, Debug)]
pub(crate) struct Mocks {
    pub(crate) oauth: GoogleOAuth,
    pub(crate) youtube: YouTube,
    pub(crate) gmail: Gmail,
    pub(crate) dev: DevTo,
    pub(crate) hashnode: Hashnode,
    pub(crate) shop: Website,
    publication: String,
}

impl Mocks {
    fn new(clock: Clock, seed: u64, token_lifetime: Duration) -> Self {
        let oauth = GoogleOAuth::new(clock);
        oauth.token_lifetime(token_lifetime);
        let youtube = YouTube::new(clock, seed ^ 1).with_auth(oauth.clone());
        let gmail = Gmail::new(clock, seed ^ 2).with_auth(oauth.clone());
        let dev = DevTo::new(clock, seed ^ 3);
        dev.key(KEY);
        let hashnode = Hashnode::new(clock, seed ^ 4);
        hashnode.token(KEY);
        let publication = hashnode.publication("blog.example.dev");
        let robots = Robots::Text("User-agent: *\nCrawl-delay: 1\n".into());
        let shop = Website::at("https://shop.example", clock, robots, seed ^ 5);
        Self { oauth, youtube, gmail, dev, hashnode, shop, publication }
    }

    /// The requests `target` received.
    pub(crate) fn log_of(
        &self,
        target: crate::chaos::Target,
    ) -> &unattended_testkit::log::RequestLog {
        use crate::chaos::Target;
        match target {
            Target::YouTube => self.youtube.log(),
            Target::Gmail => self.gmail.log(),
            Target::Dev => self.dev.log(),
            Target::Hashnode => self.hashnode.log(),
            Target::Shop => self.shop.log(),
        }
    }
}

/// Where the engines reach each mock.
#[derive(Clone, Debug)]
pub(crate) struct Urls {
    youtube: String,
    gmail: String,
    token: String,
    dev: String,
    hashnode: String,
    shop: String,
}

impl Urls {
    /// In-process: names only, every request goes to the mock through its transport.
    fn in_process() -> Self {
        Self {
            youtube: "https://youtube.example".into(),
            gmail: "https://gmail.example".into(),
            token: "https://oauth2.example".into(),
            dev: "https://dev.example".into(),
            hashnode: "https://gql.hashnode.example".into(),
            shop: "https://shop.example".into(),
        }
    }
}

/// How often each task runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cadences {
    pub(crate) uploads: Duration,
    pub(crate) mail: Duration,
    pub(crate) blog: Duration,
    pub(crate) prices: Duration,
    pub(crate) jitter: Duration,
    /// The per-attempt timeout of every service: what a hang costs.
    pub(crate) attempt: Duration,
}

impl Cadences {
    /// `unattended demo`'s: every task every few seconds, a hang costs 2 s.
    pub(crate) const DEMO: Self = Self {
        uploads: Duration::from_secs(4),
        mail: Duration::from_secs(3),
        blog: Duration::from_secs(5),
        prices: Duration::from_secs(4),
        jitter: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
    };
}

/// What the world was fed, to audit against.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fed {
    /// Videos by title, with the SHA-256 of their bytes.
    pub(crate) videos: Vec<(String, String)>,
    /// Post titles.
    pub(crate) posts: Vec<String>,
    /// Gmail message ids.
    pub(crate) mails: Vec<String>,
    /// Page changes: the page and its new price.
    pub(crate) prices: Vec<(String, String)>,
}

/// The mocks, the files, and the config pointing at them.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) clock: Clock,
    pub(crate) mocks: Mocks,
    pub(crate) dir: PathBuf,
    pub(crate) fed: Fed,
    /// Whether the clients are the naive ones.
    pub(crate) naive: bool,
    /// Laid after the config's text.
    pub(crate) config_tail: String,
    /// The one task the config enables (`None`: all of them).
    pub(crate) only: Option<&'static str>,
    rng: fastrand::Rng,
    served: Vec<Served>,
    urls: Urls,
    cadences: Cadences,
}

impl World {
    /// A world in `dir` on `clock`; its mocks and content draw from `seed`.
    pub(crate) fn new(
        dir: &Path,
        clock: Clock,
        seed: u64,
        cadences: Cadences,
        token_lifetime: Duration,
        naive: bool,
    ) -> std::io::Result<Self> {
        for sub in ["videos", "posts"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let mocks = Mocks::new(clock, seed, token_lifetime);
        Ok(Self {
            clock,
            mocks,
            dir: dir.to_path_buf(),
            fed: Fed::default(),
            naive,
            config_tail: String::new(),
            only: None,
            rng: fastrand::Rng::with_seed(seed),
            served: Vec::new(),
            urls: Urls::in_process(),
            cadences,
        })
    }

    /// Serves every mock on 127.0.0.1 and points the config at those sockets.
    pub(crate) async fn serve(&mut self) -> std::io::Result<()> {
        let m = &self.mocks;
        let youtube = serve(m.youtube.clone()).await?;
        let gmail = serve(m.gmail.clone()).await?;
        let token = serve(m.oauth.token_endpoint()).await?;
        let dev = serve(m.dev.clone()).await?;
        let hashnode = serve(m.hashnode.clone()).await?;
        let shop = serve(m.shop.clone()).await?;
        self.urls = Urls {
            youtube: youtube.url(),
            gmail: gmail.url(),
            token: token.url(),
            dev: dev.url(),
            hashnode: hashnode.url(),
            shop: shop.url(),
        };
        self.served = vec![youtube, gmail, token, dev, hashnode, shop];
        Ok(())
    }

    /// Whether the mocks are on sockets.
    fn on_sockets(&self) -> bool {
        !self.served.is_empty()
    }

    /// The store file.
    pub(crate) fn state_path(&self) -> PathBuf {
        self.dir.join("state.db")
    }

    /// The config file's text.
    pub(crate) fn config_text(&self) -> String {
        let (u, c) = (&self.urls, &self.cadences);
        let state = self.state_path();
        let pages: Vec<String> =
            PAGES.iter().map(|p| format!("{:?}", u.shop.clone() + p)).collect();
        let mut text = format!(
            r#"# Every engine against the local mocks.
[state]
path = {state:?}
keep_runs = 1000000

[services.youtube]
base_url = "{youtube}"
[services.youtube.timeouts]
attempt = "{attempt}"
[services.youtube.oauth]
token_url = "{token}/token"

[services.gmail]
base_url = "{gmail}"
[services.gmail.timeouts]
attempt = "{attempt}"
[services.gmail.oauth]
token_url = "{token}/token"

[services.dev]
base_url = "{dev}"
[services.dev.timeouts]
attempt = "{attempt}"
[services.dev.auth]
token_env = "{KEY_ENV}"

[services.hashnode]
base_url = "{hashnode}"
[services.hashnode.timeouts]
attempt = "{attempt}"
[services.hashnode.auth]
token_env = "{KEY_ENV}"

[services.web.timeouts]
attempt = "{attempt}"

[tasks.uploads]
engine = "youtube"
every = "{uploads}"
jitter = "{jitter}"
folder = "videos"
chunk_size = "256KiB"
settle = "0s"

[tasks.mail]
engine = "email"
every = "{mail}"
jitter = "{jitter}"

[[tasks.mail.rules]]
name = "star"
add_labels = ["STARRED"]
jsonl = "mail.jsonl"

[tasks.blog]
engine = "blog"
every = "{blog}"
jitter = "{jitter}"
folder = "posts"
targets = ["dev", "hashnode"]
hashnode_publication = "{publication}"

[tasks.prices]
engine = "scrape"
every = "{prices}"
jitter = "{jitter}"
user_agent = "unattended-demo/1.0 (+https://example.com/bot)"
pages = [{pages}]
min_delay = "100ms"
[tasks.prices.fields]
price = ".price"
[tasks.prices.report]
jsonl = "changes.jsonl"
"#,
            youtube = u.youtube,
            gmail = u.gmail,
            token = u.token,
            dev = u.dev,
            hashnode = u.hashnode,
            publication = self.mocks.publication,
            pages = pages.join(", "),
            attempt = humantime(c.attempt),
            jitter = humantime(c.jitter),
            uploads = humantime(c.uploads),
            mail = humantime(c.mail),
            blog = humantime(c.blog),
            prices = humantime(c.prices),
        );
        if self.naive {
            for service in ["youtube", "gmail", "dev", "hashnode", "web"] {
                let _ = write!(
                    text,
                    "\n[services.{service}.retry]\nmax_attempts = 3\nbase_delay = \"1s\"\n\
                     max_delay = \"1s\"\nbudget = false\n[services.{service}.breaker]\nenabled = false\n"
                );
            }
        }
        if let Some(only) = self.only {
            for task in crate::report::TASKS.into_iter().filter(|t| *t != only) {
                let table = format!("[tasks.{task}]\n");
                text = text.replace(&table, &format!("{table}enabled = false\n"));
            }
        }
        text.push_str(&self.config_tail);
        text
    }

    /// The runner's config.
    pub(crate) fn config(&self, kinds: &EngineKinds) -> Result<RunnerConfig, RunnerError> {
        let path = self.dir.join("unattended.toml");
        let text = self.config_text();
        // Kept beside the store, so `unattended status -c <dir>/unattended.toml` works.
        std::fs::write(&path, &text).map_err(|e| RunnerError::Invalid {
            what: path.display().to_string(),
            problem: e.to_string(),
        })?;
        RunnerConfig::parse(&text, path, kinds).map_err(|e| RunnerError::Invalid {
            what: "the demo's config".into(),
            problem: e.to_string(),
        })
    }

    /// The store, holding the Google grant (as `unattended auth google` would leave it).
    pub(crate) async fn store(&self, inline: bool) -> Result<Store, StoreError> {
        let store =
            Store::open(self.state_path(), StoreConfig::new().inline(inline), self.clock).await?;
        self.authorize(&store).await?;
        Ok(store)
    }

    /// Saves a fresh Google grant in the store: what a human's `unattended auth google` does.
    pub(crate) async fn authorize(&self, store: &Store) -> Result<(), StoreError> {
        let grant = SecretString::from(self.mocks.oauth.grant());
        let now = self.clock.wall();
        store.blocking(move |db| db.save_credential(CREDENTIAL, &grant, now))
    }

    /// A runner builder on this world's clock, [`environment`] and (in-process) transports.
    pub(crate) fn builder(&self, config: RunnerConfig, seed: u64, store: Store) -> RunnerBuilder {
        let mut b =
            Runner::builder(config).clock(self.clock).seed(seed).store(store).environment(|var| {
                environment().into_iter().find(|(name, _)| *name == var).map(|(_, value)| value)
            });
        if !self.on_sockets() {
            let m = &self.mocks;
            b = b
                .transport("youtube", transport(m.youtube.clone()))
                .transport("gmail", transport(m.gmail.clone()))
                .transport(&format!("oauth:{CREDENTIAL}"), transport(m.oauth.token_endpoint()))
                .transport("dev", transport(m.dev.clone()))
                .transport("hashnode", transport(m.hashnode.clone()))
                .transport("web", transport(m.shop.clone()));
        }
        b
    }

    /// A new video (and its sidecar) in the queue folder.
    pub(crate) fn feed_video(&mut self) -> std::io::Result<String> {
        let n = self.fed.videos.len() + 1;
        let title = format!("clip {n:03}");
        let mut bytes = vec![0; VIDEO_BYTES + self.rng.usize(0..4096)];
        self.rng.fill(&mut bytes);
        let videos = self.dir.join("videos");
        let sidecar = videos.join(format!("clip-{n:03}.toml"));
        let video = videos.join(format!("clip-{n:03}.webm"));
        std::fs::write(&sidecar, format!("title = {title:?}\n"))?;
        std::fs::write(&video, &bytes)?;
        // Written "now" on the world's clock, which a simulation runs in the past.
        self.touch(&sidecar)?;
        self.touch(&video)?;
        self.fed.videos.push((title.clone(), sha256_hex(&bytes)));
        Ok(title)
    }

    fn touch(&self, path: &Path) -> std::io::Result<()> {
        let at =
            std::time::SystemTime::try_from(self.clock.wall()).map_err(std::io::Error::other)?;
        std::fs::File::options().write(true).open(path)?.set_modified(at)
    }

    /// A new post, ready to publish, in the posts folder.
    pub(crate) fn feed_post(&mut self) -> std::io::Result<String> {
        let n = self.fed.posts.len() + 1;
        let title = format!("Notes {n:03}");
        let text = format!(
            "---\ntitle: {title}\ntags: [rust, automation]\npublish: true\n---\n# {title}\n\n\
             What the night's jobs did, part {n}.\n"
        );
        let path = self.dir.join("posts").join(format!("notes-{n:03}.md"));
        std::fs::write(&path, text)?;
        self.touch(&path)?;
        self.fed.posts.push(title.clone());
        Ok(title)
    }

    /// A new mail in the inbox.
    pub(crate) fn feed_mail(&mut self) -> String {
        let n = self.fed.mails.len() + 1;
        let id = self.mocks.gmail.deliver("orders@shop.example", &format!("Order {n}"));
        self.fed.mails.push(id.clone());
        id
    }

    /// A new price on one of the shop's pages.
    pub(crate) fn change_price(&mut self) -> String {
        let page = PAGES[self.rng.usize(0..PAGES.len())];
        let price = format!("£{}.{:02}", self.rng.u32(5..200), self.rng.u32(0..100));
        self.set_price(page, &price);
        format!("{page} now {price}")
    }

    fn set_price(&mut self, page: &str, price: &str) {
        self.mocks.shop.page(page, &format!("<h1>Item</h1><span class=\"price\">{price}</span>"));
        self.fed.prices.push((self.urls.shop.clone() + page, price.to_owned()));
    }

    /// The first content: two videos, two posts, the shop's pages. (Mail comes later: the
    /// mail task handles what arrives after its first run.)
    pub(crate) fn seed_content(&mut self) -> std::io::Result<()> {
        for _ in 0..2 {
            self.feed_video()?;
            self.feed_post()?;
        }
        for (i, page) in PAGES.iter().enumerate() {
            self.set_price(page, &format!("£{}.00", 10 * (i + 1)));
        }
        Ok(())
    }
}

use unattended_runner::Runner;

/// The variables the world's config names: the Google OAuth client and the blogs' key.
pub(crate) fn environment() -> Vec<(&'static str, String)> {
    vec![
        ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (KEY_ENV, KEY.to_owned()),
    ]
}

/// A duration as the config reads it (`"90s"`, `"250ms"`).
pub(crate) fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
