//! The scrape engine through the whole runner, in-process under a paused clock: robots.txt,
//! pacing, conditional GET, change records, pushback, body limits, crash and resume.

mod support;

use std::time::Duration;

use http::Method;
use unattended_store::{RunOutcome, TaskState};
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};
use unattended_testkit::log::RequestLog;
use unattended_testkit::website::Robots;

use support::{AGENT, World, gets, item};

fn rules(text: &str) -> Robots {
    Robots::Text(text.to_owned())
}

#[tokio::test(start_paused = true)]
async fn robots_txt_allows_and_disallows_for_our_group() {
    let w = World::new(
        rules("User-agent: pricewatch\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n"),
        Robots::Missing,
    );
    w.a.page("/shop", &item("£10"));
    w.a.page("/private/stock", &item("£1"));
    w.b.page("/x", &item("£3"));
    let pages = [w.a.url("/shop"), w.a.url("/private/stock"), w.b.url("/x")];
    let out = w.once(&w.config(&pages, "")).await;

    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!(gets(&w.a, "/shop"), 1);
    assert_eq!(gets(&w.a, "/private/stock"), 0, "disallowed: never asked");
    assert_eq!(gets(&w.b, "/x"), 1, "a robots.txt 404 allows everything");
    let summary = out.end.summary.unwrap();
    assert!(summary.contains("1 disallowed"), "{summary}");
    let lines = w.lines();
    assert_eq!(lines.len(), 2, "two new pages: {lines:?}");
    assert_eq!(w.stored().await.len(), 2);
    // Every request says who is asking and how to reach them.
    for r in w.a.log().all().iter().chain(&w.b.log().all()) {
        assert_eq!(RequestLog::header(r, "user-agent").as_deref(), Some(AGENT), "{r:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_robots_txt_disallows_everything_until_it_answers() {
    let w = World::new(Robots::Unreachable, Robots::Missing);
    w.a.page("/p", &item("£10"));
    w.b.page("/q", &item("£20"));
    let text = w.config(&[w.a.url("/p"), w.b.url("/q")], "");
    let mut runner = w.runner(&text).await;
    let out = runner.once("watch").await.unwrap();

    assert_eq!(gets(&w.a, "/p"), 0, "nothing is crawled while robots.txt is down");
    assert_eq!(gets(&w.b, "/q"), 1, "the other host goes on");
    assert!(w.a.log().count(&Method::GET, "/robots.txt") >= 1);
    // The client gave up on the 503s with a time to come back: the run says so.
    assert_eq!(out.end.outcome, RunOutcome::Failed, "{:?}", out.end);
    assert_eq!(out.state, TaskState::Cooldown);
    assert!(out.end.error.as_deref().unwrap().contains("robots.txt unreachable"), "{:?}", out.end);

    w.a.set_robots(rules("User-agent: *\nAllow: /\n"));
    w.clock.sleep(Duration::from_secs(60)).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!(gets(&w.a, "/p"), 1, "crawled once it answered");
    assert_eq!(gets(&w.b, "/q"), 1, "the done page is not fetched again in the same round");
    assert_eq!(w.lines().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn crawl_delay_spaces_each_hosts_requests_and_hosts_go_side_by_side() {
    let w = World::new(rules("User-agent: *\nCrawl-delay: 2\n"), Robots::Missing);
    let mut pages = Vec::new();
    for i in 0..5 {
        w.a.page(&format!("/a{i}"), &item("£1"));
        w.b.page(&format!("/b{i}"), &item("£2"));
        pages.push(w.a.url(&format!("/a{i}")));
        pages.push(w.b.url(&format!("/b{i}")));
    }
    let out = w.once(&w.config(&pages, "")).await;
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);

    // All requests to a host (robots.txt included), in order: at least 2 s apart.
    let gaps_a: Vec<Duration> = w.a.log().all().windows(2).map(|p| p[1].at - p[0].at).collect();
    assert_eq!(gaps_a.len(), 5);
    assert!(gaps_a.iter().all(|g| *g >= Duration::from_secs(2)), "{gaps_a:?}");
    // The other host has no Crawl-delay: the default 1 s minimum, not a.example's 2 s.
    let gaps_b: Vec<Duration> = w.b.log().all().windows(2).map(|p| p[1].at - p[0].at).collect();
    assert!(gaps_b.iter().all(|g| *g >= Duration::from_secs(1)), "{gaps_b:?}");
    assert!(gaps_b.iter().any(|g| *g < Duration::from_secs(2)), "{gaps_b:?}");
    // Side by side: b.example finished while a.example was still being crawled.
    let (last_a, last_b) = (w.a.log().all().last().unwrap().at, w.b.log().all().last().unwrap().at);
    assert!(last_b < last_a);
    assert_eq!(w.lines().len(), 10);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_page_costs_a_304_and_reports_nothing() {
    let w = World::new(Robots::Missing, Robots::Missing);
    w.a.page("/p", &item("£10"));
    let text = w.config(&[w.a.url("/p")], "");
    let mut runner = w.runner(&text).await;
    runner.once("watch").await.unwrap();
    let sent = w.a.bytes_sent("/p");
    assert!(sent > 0);
    assert_eq!(w.lines().len(), 1, "the first look is a new page");

    w.clock.sleep(Duration::from_secs(3600)).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    let second = w.a.log().to(&Method::GET, "/p").pop().unwrap();
    assert_eq!(second.status, Some(http::StatusCode::NOT_MODIFIED));
    assert_eq!(RequestLog::header(&second, "if-none-match").as_deref(), Some("\"v1\""));
    assert!(RequestLog::header(&second, "if-modified-since").is_some());
    assert_eq!(w.a.bytes_sent("/p"), sent, "no body downloaded");
    assert_eq!(w.lines().len(), 1, "no change reported");
    assert_eq!(w.stored().await.len(), 1);
    assert!(out.end.summary.unwrap().contains("1 unchanged"));
}

#[tokio::test(start_paused = true)]
async fn a_changed_page_gives_exactly_one_change_record() {
    let w = World::new(Robots::Missing, Robots::Missing);
    w.a.page("/p", &item("£10"));
    w.a.page("/same", &item("£5"));
    let text = w.config(&[w.a.url("/p"), w.a.url("/same")], "");
    let mut runner = w.runner(&text).await;
    runner.once("watch").await.unwrap();

    w.clock.sleep(Duration::from_secs(3600)).await;
    w.a.page("/p", &item("£12"));
    // A new version whose fields are the same: fetched (new ETag), no change.
    w.a.page("/same", &item("£5"));
    runner.once("watch").await.unwrap();
    w.clock.sleep(Duration::from_secs(3600)).await;
    runner.once("watch").await.unwrap();

    let lines = w.lines();
    let changed: Vec<_> =
        lines.iter().filter(|c| c.kind == unattended_engine_scrape::ChangeKind::Changed).collect();
    assert_eq!(changed.len(), 1, "{lines:#?}");
    let c = changed[0];
    assert_eq!(c.url, w.a.url("/p"));
    assert_eq!(c.changed, ["price"]);
    assert_eq!(c.previous.as_ref().unwrap()["price"], "£10");
    assert_eq!(c.fields.as_ref().unwrap()["price"], "£12");
    assert_eq!(lines.len(), 3, "two new pages, one change");
    let stored = w.stored().await;
    assert_eq!(
        stored.iter().map(|c| &c.id).collect::<Vec<_>>(),
        lines.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_page_that_goes_is_reported_gone_once() {
    let w = World::new(Robots::Missing, Robots::Missing);
    w.a.page("/p", &item("£10"));
    let text = w.config(&[w.a.url("/p")], "");
    let mut runner = w.runner(&text).await;
    runner.once("watch").await.unwrap();
    w.a.remove("/p");
    for _ in 0..2 {
        w.clock.sleep(Duration::from_secs(3600)).await;
        runner.once("watch").await.unwrap();
    }
    let kinds: Vec<_> = w.lines().iter().map(|c| c.kind).collect();
    use unattended_engine_scrape::ChangeKind::{Gone, New};
    assert_eq!(kinds, [New, Gone]);
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_that_host_only_while_the_other_goes_on() {
    let w = World::new(Robots::Missing, Robots::Missing);
    let mut pages = Vec::new();
    for i in 0..4 {
        w.a.page(&format!("/a{i}"), &item("£1"));
        w.b.page(&format!("/b{i}"), &item("£2"));
        pages.push(w.a.url(&format!("/a{i}")));
        pages.push(w.b.url(&format!("/b{i}")));
    }
    w.a.fault(
        Route::any("/a1"),
        Trigger::Nth(1, 1),
        Fault::RateLimited(Some(RetryAfter::Seconds(30))),
    );
    let out = w.once(&w.config(&pages, "")).await;
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);

    let log_a = w.a.log().all();
    let limited = log_a.iter().find(|r| r.fault.is_some()).unwrap().at;
    let after: Vec<_> = log_a.iter().filter(|r| r.at > limited).collect();
    assert!(
        after.iter().all(|r| r.at - limited >= Duration::from_secs(30)),
        "a.example waited out its pause"
    );
    let during =
        w.b.log()
            .all()
            .iter()
            .filter(|r| r.at > limited && r.at - limited < Duration::from_secs(30))
            .count();
    assert!(during >= 2, "b.example went on during a.example's pause ({during} requests)");
    // Nothing lost, nothing twice: each page answered once, each new page reported once.
    for i in 0..4 {
        let ok_a =
            w.a.log()
                .to(&Method::GET, &format!("/a{i}"))
                .iter()
                .filter(|r| r.status == Some(http::StatusCode::OK))
                .count();
        assert_eq!(ok_a, 1);
        assert_eq!(gets(&w.b, &format!("/b{i}")), 1);
    }
    assert_eq!(w.lines().len(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_long_503_pause_defers_the_host_and_the_run_comes_back_for_it() {
    let w = World::new(Robots::Missing, Robots::Missing);
    let mut pages = Vec::new();
    for i in 0..3 {
        w.a.page(&format!("/a{i}"), &item("£1"));
        w.b.page(&format!("/b{i}"), &item("£2"));
        pages.push(w.a.url(&format!("/a{i}")));
        pages.push(w.b.url(&format!("/b{i}")));
    }
    w.a.fault(
        Route::any("/a1"),
        Trigger::Nth(1, 1),
        Fault::UnavailableFor(RetryAfter::Seconds(3600)),
    );
    let text = w.config(&pages, "");
    let mut runner = w.runner(&text).await;
    let t0 = w.clock.wall();
    let out = runner.once("watch").await.unwrap();

    assert_eq!(out.state, TaskState::Cooldown, "{:?}", out.end);
    assert!(
        out.end.disposition.as_deref().unwrap().contains("retry at 2026-12-01T11:00"),
        "{:?}",
        out.end
    );
    assert_eq!((gets(&w.a, "/a0"), gets(&w.a, "/a1"), gets(&w.a, "/a2")), (1, 1, 0));
    assert!((0..3).all(|i| gets(&w.b, &format!("/b{i}")) == 1), "the other host was done");
    assert_eq!(w.lines().len(), 4);

    // The runner comes back when the pause ends: only a.example's two pages are left.
    let next = runner.tasks()[0].next_start.unwrap();
    assert!(next >= t0 + Duration::from_secs(3600), "{next}");
    w.clock.sleep(w.clock.until(next)).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!((gets(&w.a, "/a0"), gets(&w.a, "/a1"), gets(&w.a, "/a2")), (1, 2, 1));
    assert!((0..3).all(|i| gets(&w.b, &format!("/b{i}")) == 1), "done pages not fetched again");
    assert_eq!(w.lines().len(), 6, "each page reported once");
}

#[tokio::test(start_paused = true)]
async fn a_big_page_and_a_gzip_bomb_are_cut_at_the_limit() {
    let w = World::new(Robots::Missing, Robots::Missing);
    w.a.big_page("/big", 5 << 20);
    w.a.gzip_bomb("/bomb", 50 << 20);
    w.a.page("/ok", &item("£1"));
    let pages = [w.a.url("/big"), w.a.url("/bomb"), w.a.url("/ok")];
    let out = w.once(&w.config(&pages, "max_page_bytes = 1048576")).await;

    assert_eq!(
        out.state,
        TaskState::Succeeded,
        "one page too big is not the task's failure: {:?}",
        out.end
    );
    let summary = out.end.summary.unwrap();
    assert!(
        summary.contains("2 failed") && summary.contains("over the limit of 1048576 bytes"),
        "{summary}"
    );
    // Reading stopped at the limit: at most one more 64 KiB piece was pulled.
    assert!(w.a.bytes_sent("/big") <= (1 << 20) + (64 << 10), "{}", w.a.bytes_sent("/big"));
    assert_eq!(gets(&w.a, "/big"), 1, "a page too big is not asked again in the round");
    assert_eq!(w.lines().len(), 1, "only the page that could be read");
    let state: unattended_engine_scrape::PageState =
        w.store().await.entry("watch", "page", &w.a.url("/bomb")).await.unwrap().unwrap().value;
    assert!(state.error.unwrap().contains("over the limit"));
}

#[tokio::test(start_paused = true)]
async fn cut_mid_crawl_it_resumes_without_fetching_done_pages_or_reporting_twice() {
    let w = World::new(rules("User-agent: *\nCrawl-delay: 2\n"), Robots::Missing);
    let mut pages = Vec::new();
    for i in 0..10 {
        w.a.page(&format!("/p{i}"), &item(&format!("£{i}")));
        pages.push(w.a.url(&format!("/p{i}")));
    }
    // The run is cut (its future dropped, as a kill would) 9 s in, mid-crawl.
    let text = w.config(&pages, "max_runtime = \"9s\"");
    let mut first = w.runner(&text).await;
    w.run_for(&mut first, Duration::from_secs(10)).await;
    let fetched_first: usize = (0..10).map(|i| gets(&w.a, &format!("/p{i}"))).sum();
    assert!((2..10).contains(&fetched_first), "cut mid-crawl: {fetched_first}");
    drop(first);

    // A new runner (a new process) on the same store.
    let mut second = w.runner(&w.config(&pages, "")).await;
    // It comes back at the next slot (11:00), from the checkpoint.
    w.run_for(&mut second, Duration::from_secs(5400)).await;
    for i in 0..10 {
        assert_eq!(gets(&w.a, &format!("/p{i}")), 1, "page {i} fetched once over both processes");
    }
    let lines = w.lines();
    assert_eq!(lines.len(), 10, "{lines:#?}");
    let mut ids: Vec<_> = lines.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "no change twice");
    assert_eq!(w.stored().await.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn webhook_changes_carry_their_id_and_wait_out_an_outage() {
    let w = World::new(Robots::Missing, Robots::Missing);
    w.a.page("/p", &item("£10"));
    w.a.page("/q", &item("£20"));
    let text = w.config(&[w.a.url("/p"), w.a.url("/q")], "")
        + "webhook = \"https://hooks.example/changes\"\n";
    *w.hook.down.lock().unwrap() = true;
    let mut runner = w.runner(&text).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Degraded, "{:?}", out.end);
    assert!(w.hook.keys().is_empty());
    assert_eq!(w.lines().len(), 2, "the other sinks got theirs");

    *w.hook.down.lock().unwrap() = false;
    w.clock.sleep(Duration::from_secs(3600)).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    let ids: Vec<String> = w.lines().iter().map(|c| c.id.clone()).collect();
    assert_eq!(w.hook.keys(), ids, "each change once, keyed by its id");
    assert_eq!(w.lines().len(), 2, "nothing appended twice");
}

#[tokio::test(start_paused = true)]
async fn a_robots_txt_past_500_kib_is_read_up_to_the_limit_and_the_rest_ignored() {
    // RFC 9309 §2.5: crawlers may ignore what follows the first 500 KiB.
    let padding = "# a comment line, kept to pad the file past its limit\n".repeat(11_000);
    assert!(padding.len() > unattended_engine_scrape::ROBOTS_LIMIT);
    let w = World::new(
        rules(&format!("User-agent: *\nDisallow: /early\n{padding}Disallow: /late\n")),
        Robots::Missing,
    );
    w.a.page("/early", &item("£1"));
    w.a.page("/late", &item("£2"));
    let out = w.once(&w.config(&[w.a.url("/early"), w.a.url("/late")], "")).await;
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!(gets(&w.a, "/early"), 0, "a rule within the limit holds");
    assert_eq!(gets(&w.a, "/late"), 1, "a rule past the limit is not read");
    assert_eq!(w.lines().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_pages_a_sitemap_lists_are_watched_and_a_page_added_later_joins_the_next_round() {
    let w = World::new(rules("User-agent: *\nDisallow: /drafts\n"), Robots::Missing);
    w.a.page("/news/1", &item("£1"));
    w.a.page("/news/2", &item("£2"));
    w.a.page("/drafts/3", &item("£3"));
    let text = w.config(&[], &format!("sitemaps = [{:?}]", w.a.url("/sitemap.xml")));
    let mut runner = w.runner(&text).await;
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!((gets(&w.a, "/news/1"), gets(&w.a, "/news/2")), (1, 1));
    assert_eq!(gets(&w.a, "/drafts/3"), 0, "listed, but disallowed");
    let urls: Vec<String> = w.lines().into_iter().map(|c| c.url).collect();
    assert_eq!(urls, [w.a.url("/news/1"), w.a.url("/news/2")]);

    w.clock.sleep(Duration::from_secs(3600)).await;
    w.a.page("/news/4", &item("£4"));
    let out = runner.once("watch").await.unwrap();
    assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
    assert_eq!(gets(&w.a, "/sitemap.xml"), 2, "read again for the new round");
    assert_eq!(gets(&w.a, "/news/4"), 1);
    let lines = w.lines();
    assert_eq!(lines.len(), 3, "only the new page is news: {lines:#?}");
    assert_eq!(lines[2].url, w.a.url("/news/4"));
    assert_eq!(lines[2].kind, unattended_engine_scrape::ChangeKind::New);
}

#[tokio::test(start_paused = true)]
async fn a_value_that_flips_back_or_a_page_that_comes_back_is_a_new_change_each_time() {
    let w = World::new(Robots::Missing, Robots::Missing);
    let text = w.config(&[w.a.url("/p")], "") + "webhook = \"https://hooks.example/changes\"\n";
    let mut runner = w.runner(&text).await;
    // A price that goes back and forth; then the page goes, comes back, goes, comes back.
    for step in ["£10", "£12", "£10", "£12", "", "£12", "", "£12"] {
        if step.is_empty() {
            w.a.remove("/p");
        } else {
            w.a.page("/p", &item(step));
        }
        let out = runner.once("watch").await.unwrap();
        assert_eq!(out.state, TaskState::Succeeded, "{:?}", out.end);
        w.clock.sleep(Duration::from_secs(3600)).await;
    }
    use unattended_engine_scrape::ChangeKind::{Changed, Gone, New};
    let lines = w.lines();
    let kinds: Vec<_> = lines.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [New, Changed, Changed, Changed, Gone, New, Gone, New]);
    let mut ids: Vec<&str> = lines.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every change has its own id: {lines:#?}");
    // The store and a receiver that dedupes by key keep each one too.
    assert_eq!(w.stored().await.len(), 8);
    let mut keys = w.hook.keys();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 8);
}
