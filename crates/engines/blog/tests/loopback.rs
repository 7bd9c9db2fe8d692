//! The engine against the DEV and Hashnode mocks served on 127.0.0.1, through the client's own
//! HTTP transport, in real time: publishing cross-posted, and answers lost when the server drops
//! the connection after its write.

mod support;

use std::time::Duration;

use http::Method;
use support::KEY;
use unattended_core::Clock;
use unattended_runner::{EngineKinds, Runner, RunnerConfig};
use unattended_store::RunOutcome;
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::hashnode::Hashnode;
use unattended_testkit::serve::serve;

struct Served {
    dev: DevTo,
    hashnode: Hashnode,
    dir: tempfile::TempDir,
    config: String,
    _servers: (unattended_testkit::serve::Served, unattended_testkit::serve::Served),
}

async fn served() -> Served {
    let clock = Clock::system();
    let dev = DevTo::new(clock, 1);
    dev.key(KEY);
    let hashnode = Hashnode::new(clock, 2);
    hashnode.token(KEY);
    let publication = hashnode.publication("blog.example.dev");
    let (dev_at, hashnode_at) =
        (serve(dev.clone()).await.unwrap(), serve(hashnode.clone()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("posts")).unwrap();
    let config = format!(
        r#"
[state]
path = "state.db"

[services.dev]
base_url = "{}"

[services.hashnode]
base_url = "{}"

[tasks.blog]
engine = "blog"
every = "15m"
folder = "posts"
targets = ["dev", "hashnode"]
hashnode_publication = "{publication}"
"#,
        dev_at.url(),
        hashnode_at.url()
    );
    Served { dev, hashnode, dir, config, _servers: (dev_at, hashnode_at) }
}

fn post(s: &Served, name: &str, title: &str) {
    let text = format!(
        "---\ntitle: {title}\ntags: rust, http\npublish: true\n---\nThe body of {title}.\n"
    );
    std::fs::write(s.dir.path().join("posts").join(name), text).unwrap();
}

async fn runner(s: &Served) -> Runner {
    let kinds = unattended_engine_blog::register(EngineKinds::new());
    let config = RunnerConfig::parse(&s.config, s.dir.path().join("unattended.toml"), &kinds)
        .unwrap_or_else(|e| panic!("{e}"));
    Runner::builder(config).seed(3).environment(support::env).build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_cross_posted_over_real_sockets() {
    let s = served().await;
    post(&s, "a.md", "Over sockets");
    post(&s, "b.md", "Second one");
    let mut runner = runner(&s).await;
    let out = runner.once("blog").await.unwrap();
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let dev = s.dev.articles();
    let hashnode = s.hashnode.posts();
    assert_eq!((dev.len(), hashnode.len()), (2, 2));
    for (article, copy) in dev.iter().zip(&hashnode) {
        assert_eq!(copy["title"], article["title"]);
        assert_eq!(copy["canonicalUrl"], article["url"], "pointing at DEV's copy");
    }
    assert_eq!(dev[0]["tag_list"], serde_json::json!(["rust", "http"]));
    let creates = s.dev.log().to(&Method::POST, "/api/articles");
    assert!(creates.windows(2).all(|w| w[1].at - w[0].at >= Duration::from_secs(1)), "paced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_after_the_writes_leave_one_copy_each() {
    let s = served().await;
    post(&s, "lost.md", "Lost over a socket");
    s.dev.fault(
        Route::of(Method::POST, "/api/articles"),
        Trigger::Nth(1, 1),
        Fault::CommitThenDrop,
    );
    // The first Hashnode call looks at the posts already there; the second publishes.
    s.hashnode.fault(Route::any("/"), Trigger::Nth(2, 2), Fault::CommitThenDrop);
    let mut runner = runner(&s).await;
    let out = runner.once("blog").await.unwrap();
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert!(out.end.summary.unwrap().contains("2 found after a lost answer"));
    assert_eq!(s.dev.articles().len(), 1);
    assert_eq!(s.hashnode.posts().len(), 1);
    assert_eq!(s.hashnode.count("publishPost"), 1);
    assert_eq!(s.hashnode.posts()[0]["canonicalUrl"], s.dev.articles()[0]["url"]);
}
