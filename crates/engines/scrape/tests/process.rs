//! The `unattended-scrape` binary killed (SIGKILL) mid-crawl: the next process finishes the
//! round from its checkpoint, fetching no page it had done and reporting no change twice.

use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use unattended_core::Clock;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::serve::serve;
use unattended_testkit::website::{Robots, Website};

const BIN: &str = env!("CARGO_BIN_EXE_unattended-scrape");

fn gets(site: &Website, path: &str) -> usize {
    site.log().to(&Method::GET, path).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_crawl_resumes_without_fetching_done_pages() {
    let clock = Clock::system();
    let site = Website::new(clock, Robots::Missing, 1);
    for i in 0..6 {
        site.page(&format!("/p{i}"), &format!("<span class=\"price\">£{i}</span>"));
    }
    // The fourth page is never answered: the process waits there until it is killed.
    site.fault(Route::of(Method::GET, "/p3"), Trigger::Nth(1, 1), Fault::Hang);
    let served = serve(site.clone()).await.unwrap();
    let pages: Vec<String> = (0..6).map(|i| format!("\"{}/p{i}\"", served.url())).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("unattended.toml");
    std::fs::write(
        &config,
        format!(
            "[tasks.watch]\nengine = \"scrape\"\nevery = \"1h\"\n\
             user_agent = \"pricewatch/1.0 (+https://example.com/bot)\"\npages = [{}]\n\
             min_delay = \"50ms\"\n[tasks.watch.fields]\nprice = \".price\"\n\
             [tasks.watch.report]\njsonl = \"changes.jsonl\"\n",
            pages.join(", ")
        ),
    )
    .unwrap();
    let once = || {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&config)
            .args(["once", "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    let mut child = once().spawn().unwrap();
    let start = clock.now();
    while gets(&site, "/p3") == 0 {
        assert!(clock.now() - start < Duration::from_secs(30), "the fourth page was never asked");
        clock.sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no last save
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success());

    let mut again = once();
    let out = tokio::task::spawn_blocking(move || again.output().unwrap()).await.unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let fetched: Vec<usize> = (0..6).map(|i| gets(&site, &format!("/p{i}"))).collect();
    assert_eq!(fetched, [1, 1, 1, 2, 1, 1], "only the page in flight again");
    let text = std::fs::read_to_string(dir.path().join("changes.jsonl")).unwrap();
    let mut urls: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["url"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(urls.len(), 6, "one new page each: {text}");
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 6, "no change twice: {text}");
}
