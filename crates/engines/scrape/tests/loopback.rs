//! The scrape engine against sites served on 127.0.0.1, in real time: the same politeness,
//! conditional GET and body limit through real sockets and the client's own transport.

use std::time::Duration;

use http::{Method, StatusCode};
use unattended_core::Clock;
use unattended_engine_scrape::ChangeKind;
use unattended_runner::{Runner, RunnerConfig};
use unattended_store::{Store, StoreConfig, TaskState};
use unattended_testkit::log::RequestLog;
use unattended_testkit::serve::serve;
use unattended_testkit::website::{Robots, Website};

const AGENT: &str = "pricewatch/1.0 (+https://example.com/bot; ops@example.com)";

fn config(pages: &[String], extra: &str) -> String {
    let pages: Vec<String> = pages.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[tasks.watch]\nengine = \"scrape\"\nevery = \"1h\"\ntz = \"UTC\"\n\
         user_agent = {AGENT:?}\npages = [{}]\nmin_delay = \"100ms\"\n{extra}\n\
         [tasks.watch.fields]\nprice = \".price\"\n\
         [tasks.watch.report]\njsonl = \"changes.jsonl\"\n",
        pages.join(", ")
    )
}

async fn runner(dir: &tempfile::TempDir, text: &str) -> Runner {
    let kinds = unattended_engine_scrape::kinds();
    let config = RunnerConfig::parse(text, dir.path().join("unattended.toml"), &kinds)
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Clock::system();
    let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), clock).await.unwrap();
    Runner::builder(config).clock(clock).seed(3).store(store).build().await.unwrap()
}

fn lines(dir: &tempfile::TempDir) -> Vec<unattended_engine_scrape::Change> {
    let text = std::fs::read_to_string(dir.path().join("changes.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn over_sockets_requests_are_paced_and_an_unchanged_page_is_a_304() {
    let clock = Clock::system();
    let slow = Website::new(clock, Robots::Text("User-agent: *\nCrawl-delay: 1\n".into()), 1);
    let open = Website::new(clock, Robots::Missing, 2);
    for i in 0..3 {
        slow.page(&format!("/p{i}"), &format!("<span class=\"price\">£{i}</span>"));
    }
    open.page("/q", "<span class=\"price\">£9</span>");
    let (s, o) = (serve(slow.clone()).await.unwrap(), serve(open.clone()).await.unwrap());
    let mut pages: Vec<String> = (0..3).map(|i| format!("{}/p{i}", s.url())).collect();
    pages.push(format!("{}/q", o.url()));
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner(&dir, &config(&pages, "")).await;

    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    let all = slow.log().all();
    assert_eq!(all.len(), 4, "robots.txt and three pages");
    let gaps: Vec<Duration> = all.windows(2).map(|p| p[1].at - p[0].at).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_secs(1)), "{gaps:?}");
    assert!(all.iter().all(|r| RequestLog::header(r, "user-agent").as_deref() == Some(AGENT)));
    assert_eq!(lines(&dir).len(), 4);
    assert!(lines(&dir).iter().all(|c| c.kind == ChangeKind::New));

    let sent = open.bytes_sent("/q");
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    let again = open.log().to(&Method::GET, "/q");
    assert_eq!(again.last().unwrap().status, Some(StatusCode::NOT_MODIFIED));
    assert_eq!(open.bytes_sent("/q"), sent, "no body the second time");
    assert_eq!(
        open.log().count(&Method::GET, "/robots.txt"),
        1,
        "robots.txt kept from the first run"
    );
    assert_eq!(lines(&dir).len(), 4, "nothing changed, nothing reported");
}

#[tokio::test]
async fn over_sockets_a_big_page_and_a_gzip_bomb_are_cut_at_the_limit() {
    let clock = Clock::system();
    let site = Website::new(clock, Robots::Missing, 1);
    site.big_page("/big", 5 << 20);
    site.gzip_bomb("/bomb", 40 << 20);
    site.page("/ok", "<span class=\"price\">£1</span>");
    let served = serve(site.clone()).await.unwrap();
    let pages: Vec<String> =
        ["/big", "/bomb", "/ok"].iter().map(|p| format!("{}{p}", served.url())).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner(&dir, &config(&pages, "max_page_bytes = 1048576")).await;

    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    let summary = out.end.summary.unwrap();
    assert!(
        summary.contains("2 failed") && summary.contains("over the limit of 1048576"),
        "{summary}"
    );
    assert!(site.bytes_sent("/bomb") < 1 << 20, "the bomb is small on the wire");
    assert_eq!(lines(&dir).len(), 1);
}
