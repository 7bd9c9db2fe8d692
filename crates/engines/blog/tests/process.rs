//! The `unattended-blog` binary killed (SIGKILL) after DEV created the article and before the
//! process recorded it: the next process finds the article and publishes nothing twice.

use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use unattended_core::Clock;
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::hashnode::Hashnode;
use unattended_testkit::serve::serve;

const BIN: &str = env!("CARGO_BIN_EXE_unattended-blog");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_the_create_and_its_record_publishes_nothing_twice() {
    let clock = Clock::system();
    let dev = DevTo::new(clock, 1);
    dev.key("dev-key");
    let hashnode = Hashnode::new(clock, 2);
    hashnode.token("hashnode-token");
    let publication = hashnode.publication("blog.example.dev");
    // DEV applies the create and never answers: the process waits there until it is killed.
    dev.fault(Route::of(Method::POST, "/api/articles"), Trigger::Nth(1, 1), Fault::CommitThenHang);
    let (dev_at, hashnode_at) =
        (serve(dev.clone()).await.unwrap(), serve(hashnode.clone()).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("posts")).unwrap();
    std::fs::write(
        dir.path().join("posts/killed.md"),
        "---\ntitle: Killed mid-create\npublish: true\n---\nStill here.\n",
    )
    .unwrap();
    let config = dir.path().join("unattended.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\npath = \"state.db\"\n\n[services.dev]\nbase_url = \"{}\"\n\n\
             [services.hashnode]\nbase_url = \"{}\"\n\n[tasks.blog]\nengine = \"blog\"\n\
             every = \"15m\"\nfolder = \"posts\"\ntargets = [\"dev\", \"hashnode\"]\n\
             hashnode_publication = \"{publication}\"\n",
            dev_at.url(),
            hashnode_at.url()
        ),
    )
    .unwrap();
    let once = move || {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&config)
            .args(["once", "blog"])
            .env("DEV_API_KEY", "dev-key")
            .env("HASHNODE_TOKEN", "hashnode-token")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    let mut child = once().spawn().unwrap();
    let start = clock.now();
    while dev.articles().is_empty() {
        assert!(clock.now() - start < Duration::from_secs(30), "the create never came");
        clock.sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no last save
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success());
    assert_eq!(dev.articles().len(), 1);
    assert!(hashnode.posts().is_empty(), "killed before Hashnode's turn");

    let mut again = once();
    let out = tokio::task::spawn_blocking(move || again.output().unwrap()).await.unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 found after a lost answer"), "{stdout}");
    assert_eq!(dev.articles().len(), 1, "no second article");
    assert_eq!(dev.log().count(&Method::POST, "/api/articles"), 1, "no second create");
    let posts = hashnode.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["canonicalUrl"], dev.articles()[0]["url"]);
}
