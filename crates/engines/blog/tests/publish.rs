//! Whole runs of the blog engine through the real runner, under a paused clock, against the
//! DEV and Hashnode mocks: every fault the engine must live through, each checked from the
//! mocks' own state (one copy per target, the right canonical URL) and the run's disposition.

mod support;

use std::time::Duration;

use http::Method;
use support::World;
use unattended_engine_blog::{CopyState, Target};
use unattended_store::{RunOutcome, StateStore, TaskState};
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};

const START: &str = "2026-12-01T10:00:00Z";

fn dev_posts() -> Route {
    Route::of(Method::POST, "/api/articles")
}

fn dev_all() -> Route {
    Route::any("/api/articles")
}

fn hashnode_all() -> Route {
    Route::any("/")
}

/// DEV's updates that went through.
fn dev_updates(w: &World) -> usize {
    let puts = w.dev.log().to(&Method::PUT, "/api/articles/");
    puts.iter().filter(|r| r.status.is_some_and(|s| s.is_success())).count()
}

/// Hashnode's mutations run (every call is `POST /`: the mock counts operations).
fn hashnode_writes(w: &World) -> usize {
    w.hashnode.count("publishPost") + w.hashnode.count("updatePost")
}

#[tokio::test(start_paused = true)]
async fn ready_posts_go_to_the_primary_then_to_the_others_pointing_at_it() {
    let w = World::new(START);
    w.post("hello.md", "Hello", "series: Notes\ncover_image: https://img.example/c.png\n");
    w.write("draft.md", "---\ntitle: Not yet\npublish: false\n---\nbody\n");
    w.write("notes.md", "no front matter: not a post\n");
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);

    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1, "{dev:?}");
    let (title, dev_url, dev_canonical) = &dev[0];
    assert_eq!(title, "Hello");
    assert_eq!(dev_canonical, dev_url, "the primary is the original");
    let article = &w.dev.articles()[0];
    assert_eq!(article["tag_list"], serde_json::json!(["rust", "testing"]));
    assert_eq!(article["series"], "Notes");
    assert_eq!(article["cover_image"], "https://img.example/c.png");
    assert!(article["body_markdown"].as_str().unwrap().contains("<!-- unattended-blog:"));

    let hashnode = w.hashnode_posts();
    assert_eq!(
        hashnode,
        [("Hello".to_owned(), "https://blog.example.dev/hello".to_owned(), dev_url.clone())]
    );
    assert_eq!(w.hashnode.posts()[0]["coverImage"]["url"], "https://img.example/c.png");

    // The checkpoint says where each copy is.
    let ledger = w.ledger(&runner).await;
    let record = &ledger.posts["hello.md"];
    assert_eq!(record.original, Some(Target::Dev));
    assert!(record.targets.values().all(|c| matches!(c, CopyState::Published { .. })));

    // A second run changes nothing and writes nothing.
    let requests = (w.dev.log().all().len(), w.hashnode.log().all().len());
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded);
    assert!(out.end.summary.unwrap().contains("0 published, 0 updated"));
    assert_eq!((w.dev.log().all().len(), w.hashnode.log().all().len()), requests);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_after_the_create_on_both_targets_leaves_one_copy_each() {
    let w = World::new(START);
    w.post("lost.md", "Lost answers", "");
    w.dev.fault(dev_posts(), Trigger::Nth(1, 1), Fault::CommitThenDrop);
    // Hashnode's first call is the run's look at the posts already there; the second publishes.
    w.hashnode.fault(hashnode_all(), Trigger::Nth(2, 2), Fault::CommitThenDrop);
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert!(out.end.summary.as_deref().unwrap().contains("2 found after a lost answer"));

    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1, "one article on DEV: {dev:?}");
    let hashnode = w.hashnode_posts();
    assert_eq!(hashnode.len(), 1, "one post on Hashnode: {hashnode:?}");
    assert_eq!(hashnode[0].2, dev[0].1, "pointing at DEV's copy");
    assert_eq!(w.dev.log().count(&Method::POST, "/api/articles"), 1, "no second create");
    assert_eq!(w.hashnode.count("publishPost"), 1, "no second publishPost");
    let faulted: Vec<_> = w.dev.log().faulted().into_iter().map(|r| r.fault).collect();
    assert_eq!(faulted, [Some("commit_then_drop")]);

    // The next run finds both in step.
    let out = w.once(&mut runner).await;
    assert!(out.end.summary.unwrap().contains("2 up to date"));
    assert_eq!((w.dev_articles().len(), w.hashnode_posts().len()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_edited_post_is_updated_once_not_published_again() {
    let w = World::new(START);
    w.post("edit.md", "Before", "");
    let mut runner = w.runner(&w.config("", "")).await;
    w.once(&mut runner).await;
    let (dev_url, hashnode_url) = (w.dev_articles()[0].1.clone(), w.hashnode_posts()[0].1.clone());

    w.post("edit.md", "After", "");
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded);
    assert!(out.end.summary.unwrap().contains("0 published, 2 updated"));
    assert_eq!(w.dev_articles(), [("After".to_owned(), dev_url.clone(), dev_url.clone())]);
    assert_eq!(w.hashnode_posts(), [("After".to_owned(), hashnode_url, dev_url)]);
    assert_eq!(dev_updates(&w), 1, "one update");
    assert_eq!(w.dev.log().count(&Method::POST, "/api/articles"), 1, "not a new article");
    assert_eq!(
        (w.hashnode.count("publishPost"), w.hashnode.count("updatePost")),
        (1, 1),
        "one publishPost, one updatePost"
    );
    assert!(w.dev.articles()[0]["body_markdown"].as_str().unwrap().contains("The body of After"));

    // Unchanged again: no write.
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    w.once(&mut runner).await;
    assert_eq!(w.dev.log().count(&Method::PUT, "/api/articles/"), 1);
    assert_eq!(hashnode_writes(&w), 2);
}

#[tokio::test(start_paused = true)]
async fn dev_down_for_an_hour_hashnode_gets_the_post_and_dev_catches_up_with_its_url() {
    let w = World::new(START);
    w.post("outage.md", "During the outage", "");
    let now = w.clock.now();
    let hour = Duration::from_secs(3600);
    w.dev.fault(dev_all(), Trigger::Between(now, now + hour), Fault::Unavailable);
    let mut runner = w.runner(&w.config("", "")).await;
    w.run_for(&mut runner, Duration::from_secs(2 * 3600)).await;

    let hashnode = w.hashnode_posts();
    assert_eq!(hashnode.len(), 1, "{hashnode:?}");
    assert_eq!(hashnode[0].2, "", "Hashnode's copy became the original");
    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1, "DEV caught up once: {dev:?}");
    assert_eq!(dev[0].2, hashnode[0].1, "with the original's URL as canonical_url");
    let first_dev_write = w
        .dev
        .log()
        .to(&Method::POST, "/api/articles")
        .into_iter()
        .find(|r| r.status.is_some_and(|s| s.is_success()))
        .unwrap();
    assert!(first_dev_write.at >= now + hour, "not before DEV was back");

    let runs = runner.store().runs("blog", 20).await.unwrap();
    let outcomes: Vec<_> = runs.iter().rev().map(|r| r.end.as_ref().unwrap().outcome).collect();
    assert_eq!(outcomes[0], RunOutcome::Degraded, "DEV skipped, Hashnode done: {outcomes:?}");
    assert!(outcomes.contains(&RunOutcome::Succeeded));
    assert!(!outcomes.contains(&RunOutcome::Failed), "an outage is not a failure: {outcomes:?}");
    assert!(runner.alerts().is_empty(), "{:?}", runner.alerts());
}

#[tokio::test(start_paused = true)]
async fn bursts_of_429_are_waited_out_and_a_long_throttle_waits_for_the_next_run() {
    let w = World::new(START);
    w.post("a.md", "First", "");
    w.post("b.md", "Second", "");
    // DEV: three 429s in a row on the first create, two seconds each.
    w.dev.fault(dev_posts(), Trigger::Nth(1, 3), Fault::RateLimited(Some(RetryAfter::Seconds(2))));
    // Hashnode: its edge throttles once, then the API says TOO_MANY_REQUESTS for ten minutes.
    w.hashnode.fault(
        hashnode_all(),
        Trigger::Nth(2, 2),
        Fault::RateLimited(Some(RetryAfter::Seconds(1))),
    );
    w.hashnode.limits(1, 1000);
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Degraded, "{:?}", out.end);
    assert_eq!(w.dev_articles().len(), 2, "both on DEV after the burst");
    let creates = w.dev.log().to(&Method::POST, "/api/articles");
    let statuses: Vec<u16> = creates.iter().filter_map(|r| r.status.map(|s| s.as_u16())).collect();
    assert_eq!(statuses, [429, 429, 429, 201, 201], "each create sent until it went, none twice");
    assert!(creates[3].at - creates[0].at >= Duration::from_secs(6), "each Retry-After waited out");
    assert_eq!(w.hashnode_posts().len(), 1, "one mutation a minute: the second waits");
    assert!(out.end.summary.unwrap().contains("hashnode skipped"));

    w.hashnode.limits(500, 1000);
    w.clock.sleep(Duration::from_secs(60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let titles: Vec<String> = w.hashnode_posts().into_iter().map(|p| p.0).collect();
    assert_eq!(titles, ["First", "Second"], "each once");
    assert_eq!(w.dev_articles().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn bad_front_matter_is_reported_with_its_line_and_the_other_posts_go_on() {
    let w = World::new(START);
    w.write("bad-yaml.md", "---\ntitle: Broken\ntags: [rust\npublish: true\n---\nbody\n");
    w.write("no-title.md", "---\ntags: [x]\npublish: true\n---\nbody\n");
    w.write(
        "wrong-target.md",
        "---\ntitle: Where\ntargets: [dev, medium]\npublish: true\n---\nbody\n",
    );
    w.write("open.md", "---\ntitle: Never closed\npublish: true\n");
    w.post("good.md", "Good", "");
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded);
    assert_eq!(w.dev_articles().len(), 1);
    assert_eq!(w.hashnode_posts().len(), 1);
    let summary = out.end.summary.unwrap();
    assert!(summary.contains("4 file(s) with errors"), "{summary}");
    for expected in [
        "bad-yaml.md:4:8: illegal placement of ':'", // the unclosed list runs into line 4
        "no-title.md:2:1: a post to publish needs a `title`",
        "wrong-target.md:3:16: unknown variant `medium`",
        "open.md:1:1: the front matter opened here is never closed",
    ] {
        assert!(summary.contains(expected), "{expected} in {summary}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_revoked_dev_key_disables_the_task_with_one_alert() {
    let w = World::new(START);
    w.post("a.md", "A", "");
    let mut runner = w.runner(&w.config("", "")).await;
    w.once(&mut runner).await;
    w.dev.revoke(support::KEY);
    w.post("b.md", "B", "");
    w.run_for(&mut runner, Duration::from_secs(3 * 3600)).await;
    let state = runner.store().task_state("blog").await.unwrap().unwrap();
    assert_eq!(state.state, TaskState::Disabled, "{state:?}");
    let alerts = runner.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].incident, "task:blog:credentials");
    assert!(alerts[0].help.as_deref().unwrap().contains("DEV_API_KEY"), "{alerts:?}");
    assert_eq!(runner.store().runs("blog", 50).await.unwrap().len(), 2, "no run after the refusal");
    // Hashnode still got the post before the task stopped.
    let titles: Vec<String> = w.hashnode_posts().into_iter().map(|p| p.0).collect();
    assert_eq!(titles, ["A", "B"]);
    assert_eq!(w.dev_articles().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_hashnode_token_is_reauthorize_too() {
    let w = World::new(START);
    w.post("a.md", "A", "");
    w.hashnode.revoke(support::KEY);
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.state, TaskState::Disabled);
    assert_eq!(out.end.disposition.as_deref(), Some("re-authorize"), "{:?}", out.end);
    assert!(out.end.error.unwrap().contains("hashnode refused the token"));
    let alerts = runner.alerts();
    assert_eq!(alerts.len(), 1);
    let help = alerts[0].help.as_deref().unwrap_or_default();
    assert!(help.contains("HASHNODE_TOKEN") && help.contains("unattended reset blog"), "{help}");
    assert!(!help.contains("DEV_API_KEY"), "DEV's key was not refused: {help}");
    assert_eq!(w.dev_articles().len(), 1, "DEV got it");
    assert!(w.hashnode_posts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hundred_posts_go_out_at_each_targets_pace_with_no_429_beyond_the_first() {
    let w = World::new(START);
    for n in 0..100 {
        w.post(&format!("p{n:03}.md"), &format!("Post {n}"), "");
    }
    // Someone wrote to DEV with the same key a moment ago: the first create meets the throttle.
    let key = support::KEY;
    let earlier = http::Request::post("https://dev.to/api/articles")
        .header("api-key", key)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"article":{"title":"Written by hand","body_markdown":"x","published":false}}"#,
        )))
        .unwrap();
    tower::ServiceExt::oneshot(w.dev.clone(), earlier).await.unwrap();
    let start = w.clock.now();
    let mut runner = w.runner(&w.config("max_runtime = \"2h\"", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert_eq!(w.dev_articles().len(), 101);
    assert_eq!(w.hashnode_posts().len(), 100);

    let creates = w.dev.log().to(&Method::POST, "/api/articles");
    let throttled = creates.iter().filter(|r| r.status.map(|s| s.as_u16()) == Some(429)).count();
    assert_eq!(throttled, 1, "only the first create met the throttle");
    let ok: Vec<_> = creates.iter().filter(|r| r.status.is_some_and(|s| s.is_success())).collect();
    assert_eq!(ok.len(), 101);
    for pair in ok[1..].windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_secs(1), "DEV's pace: a write a second");
    }
    let took = w.clock.now() - start;
    assert!(took >= Duration::from_secs(99) && took < Duration::from_secs(130), "{took:?}");
    assert_eq!(w.hashnode.count("publishPost"), 100, "none throttled, none sent twice");
    assert!(w.hashnode.log().all().iter().all(|r| r.status.map(|s| s.as_u16()) == Some(200)));
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_between_the_create_and_its_record_is_resumed_without_a_second_copy() {
    let w = World::new(START);
    w.post("cut.md", "Cut short", "");
    // Hashnode applies the create and never answers (its first call looks at the posts already
    // there): the run is stopped by max_runtime while it waits, as a process killed at that
    // point would be. Hashnode has no duplicate guard: only the recorded intent saves the day.
    w.hashnode.fault(hashnode_all(), Trigger::Nth(2, 2), Fault::CommitThenHang);
    let config = w.config(
        "max_runtime = \"5m\"",
        "[services.hashnode.timeouts]\nattempt = \"1h\"\noverall = \"2h\"\n",
    );
    let mut runner = w.runner(&config).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Failed, "{:?}", out.end);
    assert!(out.end.error.unwrap().contains("max_runtime"));
    assert_eq!(w.hashnode_posts().len(), 1, "the create was applied");
    let ledger = w.ledger(&runner).await;
    assert!(
        matches!(ledger.posts["cut.md"].targets[&Target::Hashnode], CopyState::Sending { .. }),
        "the intent is in the store: {ledger:?}"
    );
    drop(runner);

    // A new runner on the same store: it looks before it creates.
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let mut runner = w.runner(&config).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert!(out.end.summary.unwrap().contains("1 found after a lost answer"));
    assert_eq!(w.hashnode_posts().len(), 1, "no duplicate");
    assert_eq!(w.hashnode.count("publishPost"), 1);
    assert_eq!(w.hashnode_posts()[0].2, w.dev_articles()[0].1);
    assert_eq!(w.dev_articles().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_primary_found_after_the_others_went_ahead_is_pointed_at_the_original() {
    let w = World::new(START);
    w.post("late.md", "Found late", "");
    // DEV's answer to the create is lost, and DEV fails the look that follows (its four
    // attempts; the first GET is the run's look at the copies already there): whether DEV has
    // the post is unknown, so Hashnode goes ahead as the original.
    w.dev.fault(dev_posts(), Trigger::Nth(1, 1), Fault::CommitThenDrop);
    w.dev.fault(Route::of(Method::GET, "/api/articles"), Trigger::Nth(2, 5), Fault::Unavailable);
    // (Four attempts a call and no breaker here: this is about what the engine knows, not
    // about the client's defaults.)
    let config = w.config(
        "",
        "[services.dev.retry]\nmax_attempts = 4\n[services.dev.breaker]\nenabled = false\n",
    );
    let mut runner = w.runner(&config).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Degraded, "{:?}", out.end);
    let hashnode = w.hashnode_posts();
    assert_eq!(hashnode.len(), 1);
    assert_eq!(hashnode[0].2, "", "Hashnode's copy is the original");

    // Later DEV answers: its copy is found, and pointed at Hashnode's.
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1, "found, not created again: {dev:?}");
    assert_eq!(dev[0].2, hashnode[0].1, "its canonical URL is the original's");
    assert_eq!(dev_updates(&w), 1);
    assert_eq!(w.hashnode.count("updatePost"), 0, "the original is left as it is");
}

#[tokio::test(start_paused = true)]
async fn forgotten_records_adopt_the_copies_already_there() {
    let w = World::new(START);
    w.post("again.md", "Again", "");
    let mut runner = w.runner(&w.config("", "")).await;
    w.once(&mut runner).await;
    // The task's records are gone (a new machine, a new state file): the copies are found by
    // their marker, not published again.
    runner.store().delete_entries("blog").await.unwrap();
    runner.store().delete_checkpoint("blog").await.unwrap();
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert!(out.end.summary.unwrap().contains("2 found"));
    assert_eq!(w.dev_articles().len(), 1);
    assert_eq!(w.hashnode_posts().len(), 1, "Hashnode has no duplicate guard of its own");
    assert_eq!(w.dev.log().count(&Method::POST, "/api/articles"), 1);
    assert_eq!(w.hashnode.count("publishPost"), 1);
    let ledger = w.ledger(&runner).await;
    let record = &ledger.posts["again.md"];
    assert!(record.targets.values().all(|c| matches!(c, CopyState::Published { .. })));
    assert_eq!(w.hashnode_posts()[0].2, w.dev_articles()[0].1, "still pointing at DEV");
}

#[tokio::test(start_paused = true)]
async fn dev_already_taken_is_published_after_a_lookup() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let w = World::new(START);
    w.post("race.md", "Raced", "");
    // Another writer with the same key publishes the same article just before this run's
    // create reaches DEV (after the run looked): DEV's guard answers 422 "already taken".
    let dev = w.dev.clone();
    let raced = Arc::new(AtomicBool::new(false));
    let racing = tower::service_fn(move |req: http::Request<unattended_client::RequestBody>| {
        let (dev, raced) = (dev.clone(), raced.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let create = parts.method == Method::POST && parts.uri.path() == "/api/articles";
            if create && !raced.swap(true, Ordering::SeqCst) {
                let mut first = http::Request::post(parts.uri.clone());
                for (name, value) in &parts.headers {
                    first = first.header(name, value);
                }
                let first = first.body(http_body_util::Full::new(bytes.clone())).unwrap();
                assert_eq!(dev.clone().oneshot(first).await.unwrap().status(), 201);
            }
            let req = http::Request::from_parts(parts, http_body_util::Full::new(bytes));
            dev.oneshot(req).await
        }
    });
    let mut runner = w.runner_with(&w.config("", ""), unattended_runner::transport(racing)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let statuses: Vec<_> = w
        .dev
        .log()
        .to(&Method::POST, "/api/articles")
        .iter()
        .map(|r| r.status.map(|s| s.as_u16()))
        .collect();
    assert_eq!(
        statuses,
        [Some(201), Some(429), Some(422)],
        "the other's create, ours throttled, refused"
    );
    assert_eq!(w.dev_articles().len(), 1, "the other's article is adopted");
    let ledger = w.ledger(&runner).await;
    assert!(matches!(ledger.posts["race.md"].targets[&Target::Dev], CopyState::Published { .. }));
    assert_eq!(w.hashnode_posts()[0].2, w.dev_articles()[0].1);
}

#[tokio::test(start_paused = true)]
async fn a_canonical_url_taken_by_another_article_fails_the_post_with_devs_message() {
    let w = World::new(START);
    w.post("own.md", "Own", "canonical_url: https://blog.example/own\n");
    // An article of the writer's, published by hand, already names that original.
    let by_hand = http::Request::post("https://dev.to/api/articles")
        .header("api-key", support::KEY)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"article":{"title":"By hand","body_markdown":"x","published":true,"canonical_url":"https://blog.example/own"}}"#,
        )))
        .unwrap();
    tower::ServiceExt::oneshot(w.dev.clone(), by_hand).await.unwrap();
    w.clock.sleep(Duration::from_secs(2)).await;
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let summary = out.end.summary.unwrap();
    assert!(summary.contains("refused: "), "{summary}");
    assert!(summary.contains("on dev: Canonical url has already been taken"), "{summary}");
    assert_eq!(w.dev_articles().len(), 1, "only the one by hand");
    assert_eq!(w.hashnode_posts()[0].2, "https://blog.example/own", "Hashnode names the original");
    // Not tried again until the file changes.
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    w.once(&mut runner).await;
    assert_eq!(w.dev.log().count(&Method::POST, "/api/articles"), 2);
}

#[tokio::test(start_paused = true)]
async fn writes_outside_the_window_wait_for_it() {
    let w = World::new("2026-12-01T22:30:00Z");
    w.post("late.md", "Late", "");
    let gate = "[services.dev.gate.write]\ntz = \"UTC\"\nopen = [\"daily 09:00-22:00\"]\n\
                [services.hashnode.gate.write]\ntz = \"UTC\"\nopen = [\"daily 09:00-22:00\"]\n";
    let mut runner = w.runner(&w.config("", gate)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Failed);
    assert!(out.end.disposition.unwrap().contains("2026-12-02T09:00:00Z"));
    assert!(w.dev_articles().is_empty() && w.hashnode_posts().is_empty());
    assert_eq!(w.dev.log().count(&Method::POST, "/"), 0, "no write was sent, only reads");
    assert_eq!(w.hashnode.count("publishPost"), 0, "no write was sent, only reads");

    w.run_for(&mut runner, Duration::from_secs(11 * 3600)).await;
    assert_eq!(w.dev_articles().len(), 1);
    assert_eq!(w.hashnode_posts().len(), 1);
    let first = w.dev.log().to(&Method::POST, "/")[0].at;
    assert_eq!(w.clock.wall_at(first).to_string(), "2026-12-02T09:00:00Z", "at the opening");
}

#[tokio::test(start_paused = true)]
async fn a_5xx_or_a_timeout_after_the_create_is_looked_up_before_any_second_create() {
    let w = World::new(START);
    w.post("ambiguous.md", "Ambiguous answers", "");
    // DEV applies the create and answers 502; Hashnode applies it and says nothing until the
    // attempt times out (its first call is the run's look at the posts already there). Neither
    // answer says whether the post is there.
    w.dev.fault(dev_posts(), Trigger::Nth(1, 1), Fault::CommitThenStatus(502));
    w.hashnode.fault(hashnode_all(), Trigger::Nth(2, 2), Fault::CommitThenHang);
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    assert!(out.end.summary.unwrap().contains("2 found after a lost answer"));
    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1, "{dev:?}");
    assert_eq!(w.hashnode_posts().len(), 1, "Hashnode has no duplicate guard of its own");
    assert_eq!(w.hashnode_posts()[0].2, dev[0].1, "DEV's copy stayed the original");
    assert_eq!(w.dev.log().count(&Method::POST, "/api/articles"), 1, "no second create");
    assert_eq!(w.hashnode.count("publishPost"), 1, "no second publishPost");
    let faults: Vec<_> = w.dev.log().faulted().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [Some("commit_then_status")]);
}

#[tokio::test(start_paused = true)]
async fn a_503_on_the_primarys_create_keeps_the_intent_and_the_next_run_looks_first() {
    let w = World::new(START);
    w.post("busy.md", "DEV was busy", "");
    // DEV refuses the create with a 503 and applies nothing; nothing in the answer says so.
    w.dev.fault(dev_posts(), Trigger::Nth(1, 1), Fault::Unavailable);
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Degraded, "DEV skipped: {:?}", out.end);
    assert!(out.end.summary.unwrap().contains("dev skipped"));
    assert!(w.dev_articles().is_empty());
    let hashnode = w.hashnode_posts();
    assert_eq!(hashnode.len(), 1, "Hashnode still gets the post: {hashnode:?}");
    assert_eq!(hashnode[0].2, "", "as the original");
    let ledger = w.ledger(&runner).await;
    assert!(
        matches!(ledger.posts["busy.md"].targets[&Target::Dev], CopyState::Sending { .. }),
        "whether DEV has it is unknown: the intent stays: {ledger:?}"
    );

    // The next run looks on DEV before it creates there, once, pointing at Hashnode's copy.
    let before = w.dev.log().all().len();
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let calls: Vec<_> =
        w.dev.log().all()[before..].iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        calls,
        [
            (Method::GET, "/api/articles/me/all".to_owned()),
            (Method::POST, "/api/articles".to_owned())
        ]
    );
    let dev = w.dev_articles();
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0].2, hashnode[0].1, "canonical_url is the original's");
    assert_eq!(w.hashnode.count("publishPost"), 1);
    assert_eq!(w.hashnode.count("updatePost"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_post_hashnode_refuses_fails_with_its_message_until_the_file_changes() {
    let w = World::new(START);
    w.post("refused.md", "Refused", "");
    // Hashnode's first call is the run's look at the posts already there; the second publishes.
    w.hashnode.fault(hashnode_all(), Trigger::Nth(2, 2), Fault::GraphQlError("BAD_USER_INPUT"));
    let mut runner = w.runner(&w.config("", "")).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "the task goes on: {:?}", out.end);
    let summary = out.end.summary.unwrap();
    assert!(
        summary.contains("refused: ") && summary.contains("refused.md on hashnode: BAD_USER_INPUT"),
        "the file and Hashnode's message: {summary}"
    );
    assert_eq!(w.dev_articles().len(), 1, "DEV has it");
    assert!(w.hashnode_posts().is_empty());
    let ledger = w.ledger(&runner).await;
    assert!(matches!(
        ledger.posts["refused.md"].targets[&Target::Hashnode],
        CopyState::Refused { .. }
    ));

    // Not sent again while the file is as it was...
    let calls = w.hashnode.log().all().len();
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    w.once(&mut runner).await;
    assert_eq!(w.hashnode.log().all().len(), calls, "nothing sent to Hashnode");

    // ...and published once it changed, pointing at DEV's copy.
    w.post("refused.md", "Refused", "description: Now with a subtitle.\n");
    w.clock.sleep(Duration::from_secs(15 * 60)).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.end.outcome, RunOutcome::Succeeded, "{:?}", out.end);
    let hashnode = w.hashnode_posts();
    assert_eq!(hashnode.len(), 1);
    assert_eq!(hashnode[0].2, w.dev_articles()[0].1);
    assert_eq!(w.hashnode.posts()[0]["subtitle"], "Now with a subtitle.");
}

#[tokio::test(start_paused = true)]
async fn a_hashnode_publication_that_is_not_there_stops_the_task_and_says_what_to_fix() {
    let w = World::new(START);
    w.post("a.md", "A", "");
    w.post("b.md", "B", "");
    let config = w.config("", "").replace(&w.publication, "0123456789abcdef01234567");
    let mut runner = w.runner(&config).await;
    let out = w.once(&mut runner).await;
    assert_eq!(out.state, TaskState::Disabled, "{:?}", out.end);
    assert_eq!(out.end.disposition.as_deref(), Some("stop"), "{:?}", out.end);
    let alerts = runner.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let help = alerts[0].help.as_deref().unwrap_or_default();
    assert!(help.contains("hashnode_publication"), "{help}");
    assert!(help.contains("unattended reset blog"), "{help}");
    // Not a refusal of the posts: nothing is recorded as refused, so they go once it is fixed.
    let ledger = w.ledger(&runner).await;
    for record in ledger.posts.values() {
        assert!(!record.targets.contains_key(&Target::Hashnode), "{ledger:?}");
    }
    assert_eq!(w.dev_articles().len(), 2, "DEV got both");
    assert_eq!(w.hashnode.count("publishPost"), 1, "one refusal was enough");
}
