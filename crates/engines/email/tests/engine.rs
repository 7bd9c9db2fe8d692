//! Whole runs of the email engine through the runner, under a paused clock, against the
//! testkit's Gmail and Google OAuth mocks: each message seen once, each action done once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use support::{HookMode, World, ids};
use unattended_engine_email::Position;
use unattended_store::{RunOutcome, StateStore as _, TaskState};

const RULES: &str = r#"
[[tasks.mail.rules]]
name = "all"
add_labels = ["Label_1"]
remove_labels = ["UNREAD"]
webhook = "https://hooks.example.com/mail/s3cret-path"
jsonl = "mail.jsonl"
"#;

fn config(task: &str) -> String {
    World::config_text(task, RULES)
}

#[tokio::test(start_paused = true)]
async fn the_first_run_starts_at_the_present_and_each_new_message_is_handled_once() {
    let w = World::new(1);
    w.gmail.create_label("Receipts");
    let old = w.gmail.deliver("a@example.com", "before the watch");
    let mut runner = w.runner(&config("")).await;
    let first = World::once(&mut runner).await;
    assert_eq!(first.end.outcome, RunOutcome::Succeeded, "{:?}", first.end);

    let new: Vec<String> =
        (0..3).map(|n| w.gmail.deliver("b@example.com", &format!("n{n}"))).collect();
    let second = World::once(&mut runner).await;
    assert_eq!(second.end.outcome, RunOutcome::Succeeded, "{:?}", second.end);
    assert_eq!(
        second.end.summary.as_deref(),
        Some("3 new message(s), 9 action(s) done, 0 pending")
    );
    for id in &new {
        assert_eq!(w.modified(id), 1, "{id}");
        assert_eq!(w.fetched(id), 1, "{id}");
        assert_eq!(w.gmail.labels_of(id).unwrap(), ["INBOX", "Label_1"]);
    }
    assert_eq!(w.modified(&old), 0, "mail from before the watch is not new");
    assert_eq!(ids(&w.hooks.arrived()), new);
    let lines = w.jsonl_lines("mail.jsonl");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["message"]["subject"], "n0");
    assert_eq!(lines[0]["rule"], "all");
    // Keys name one action of one rule for one message, the same at every try.
    assert_eq!(lines[0]["key"], format!("mail/{}/all/jsonl", new[0]));
    assert_eq!(w.hooks.accepted()[0], format!("mail/{}/all/webhook", new[0]));

    // Nothing new: nothing done again.
    let third = World::once(&mut runner).await;
    assert_eq!(third.end.summary.as_deref(), Some("0 new message(s), 0 action(s) done, 0 pending"));
    assert_eq!(w.hooks.arrived().len(), 3);
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn mail_arriving_while_gmail_is_down_at_the_first_run_is_handled_once_it_is_back() {
    use unattended_testkit::fault::{Fault, Route, Trigger};
    let w = World::new(3);
    w.gmail.create_label("Receipts");
    let old = w.gmail.deliver("a@example.com", "before the watch");
    w.clock.sleep(Duration::from_secs(1)).await;
    let start = w.clock.now();
    let down = Trigger::Between(start, start + Duration::from_secs(600));
    w.gmail.fault(Route::any("/gmail"), down, Fault::Unavailable);
    let mut runner = w.runner(&config("")).await;
    let first = World::once(&mut runner).await;
    assert_ne!(first.end.outcome, RunOutcome::Succeeded, "{:?}", first.end);
    assert_eq!(World::checkpoint(&runner).await.at, Position::Start);

    // Gmail is still down when these arrive; the watch began before them.
    w.clock.sleep(Duration::from_secs(60)).await;
    let during: Vec<String> =
        (0..2).map(|n| w.gmail.deliver("b@example.com", &format!("d{n}"))).collect();
    w.clock.sleep_until(start + Duration::from_secs(900)).await;
    let back = World::once(&mut runner).await;
    assert_eq!(back.end.outcome, RunOutcome::Succeeded, "{:?}", back.end);
    for id in &during {
        assert_eq!(w.modified(id), 1, "{id}");
    }
    assert_eq!(w.modified(&old), 0, "mail from before the watch is not new");
    assert!(matches!(World::checkpoint(&runner).await.at, Position::History { page: None, .. }));
    let again = World::once(&mut runner).await;
    assert_eq!(again.end.summary.as_deref(), Some("0 new message(s), 0 action(s) done, 0 pending"));
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_cannot_be_read_is_tried_again_later_not_a_stop() {
    use unattended_testkit::fault::{Fault, Route, Trigger};
    let w = World::new(4);
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&config("")).await;
    World::once(&mut runner).await;
    let id = w.gmail.deliver("b@example.com", "n0");
    let message = Route::of(Method::GET, "/gmail/v1/users/me/messages/");
    w.gmail.fault(message, Trigger::Nth(1, 1), Fault::MalformedJson);
    let failed = World::once(&mut runner).await;
    assert_eq!(failed.end.outcome, RunOutcome::Failed, "{:?}", failed.end);
    assert!(failed.end.disposition.as_deref().is_some_and(|d| d.starts_with("retry at")));
    let state = runner.store().task_state("mail").await.unwrap().unwrap();
    assert_eq!(state.state, TaskState::Cooldown, "{state:?}");
    w.clock.sleep(Duration::from_secs(60)).await;
    let again = World::once(&mut runner).await;
    assert_eq!(again.end.outcome, RunOutcome::Succeeded, "{:?}", again.end);
    assert_eq!(w.modified(&id), 1);
}

#[tokio::test(start_paused = true)]
async fn history_in_several_pages_with_ids_that_skip_is_read_to_the_end_once() {
    let w = World::new(2);
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&config("page_size = 100")).await;
    World::once(&mut runner).await;
    let start = match World::checkpoint(&runner).await.at {
        Position::History { history_id, page: None, .. } => history_id,
        other => panic!("{other:?}"),
    };
    let new: Vec<String> =
        (0..250).map(|n| w.gmail.deliver("b@example.com", &n.to_string())).collect();
    let before = w.count(&Method::GET, "/gmail/v1/users/me/history");
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert_eq!(
        w.count(&Method::GET, "/gmail/v1/users/me/history") - before,
        3,
        "250 in pages of 100"
    );
    let tokens: Vec<Option<String>> = w
        .gmail
        .log()
        .to(&Method::GET, "/gmail/v1/users/me/history")
        .into_iter()
        .skip(before)
        .map(|r| {
            r.query
                .unwrap()
                .split('&')
                .find_map(|p| p.strip_prefix("pageToken=").map(str::to_owned))
        })
        .collect();
    assert_eq!(tokens, [None, Some("100".to_owned()), Some("200".to_owned())]);
    assert!(new.iter().all(|id| w.modified(id) == 1 && w.fetched(id) == 1));
    assert_eq!(ids(&w.hooks.arrived()), new, "in the order of the history");
    // The saved id is the mailbox's, past the last page; the mock's ids skip, so it is more
    // than 250 past the start.
    let Position::History { history_id, page: None, .. } = World::checkpoint(&runner).await.at
    else {
        panic!()
    };
    assert!(history_id > start + 250, "{start} → {history_id}");
    World::once(&mut runner).await;
    assert_eq!(w.hooks.arrived().len(), 250);
}

#[tokio::test(start_paused = true)]
async fn history_too_old_means_a_bounded_resync_that_repeats_nothing() {
    let w = World::new(3);
    w.gmail.create_label("Receipts");
    let before_watch: Vec<String> =
        (0..4).map(|n| w.gmail.deliver("a@example.com", &format!("old {n}"))).collect();
    w.clock.sleep(Duration::from_secs(60)).await;
    let mut runner = w.runner(&config("")).await;
    World::once(&mut runner).await;
    let handled: Vec<String> =
        (0..5).map(|n| w.gmail.deliver("a@example.com", &format!("seen {n}"))).collect();
    World::once(&mut runner).await;

    // The runner is down for over a week: history from the saved id is gone.
    w.clock.sleep(Duration::from_secs(8 * 86_400)).await;
    let missed: Vec<String> =
        (0..3).map(|n| w.gmail.deliver("a@example.com", &format!("missed {n}"))).collect();
    w.gmail.expire_history();
    let gets_before = w.count(&Method::GET, "/gmail/v1/users/me/messages/");
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert_eq!(end.summary.as_deref(), Some("3 new message(s), 9 action(s) done, 0 pending"));
    for id in handled.iter().chain(&missed) {
        assert_eq!(w.modified(id), 1, "{id}");
        assert_eq!(w.fetched(id), 1, "{id}: seen messages are not fetched again");
    }
    for id in &before_watch {
        assert_eq!(w.modified(id), 0, "{id} was never new to the task");
    }
    // Listed newest first: the three missed, the five seen (skipped without a fetch), then the
    // newest of the old ones, fetched to learn it is older than the watch, which ends the resync.
    assert_eq!(w.count(&Method::GET, "/gmail/v1/users/me/messages/") - gets_before, 3 + 1);
    let accepted = w.hooks.accepted();
    assert_eq!(accepted.len(), 8, "{accepted:?}");
    let Position::History { page: None, .. } = World::checkpoint(&runner).await.at else {
        panic!()
    };

    // History goes on from the id the profile gave.
    let after = w.gmail.deliver("a@example.com", "after");
    World::once(&mut runner).await;
    assert_eq!(w.modified(&after), 1);
    assert_eq!(w.hooks.accepted().len(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_resync_stops_at_its_limit() {
    let w = World::new(4);
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&config("resync_limit = 5\npage_size = 2")).await;
    World::once(&mut runner).await;
    let missed: Vec<String> =
        (0..8).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    w.gmail.expire_history();
    World::once(&mut runner).await;
    let acted: Vec<bool> = missed.iter().map(|id| w.modified(id) == 1).collect();
    assert_eq!(acted, [false, false, false, true, true, true, true, true], "the newest five");
    assert_eq!(w.count(&Method::GET, "/gmail/v1/users/me/messages?"), 0);
    let lists = w.gmail.log().to(&Method::GET, "/gmail/v1/users/me/messages");
    let lists: Vec<_> = lists.iter().filter(|r| r.path == "/gmail/v1/users/me/messages").collect();
    assert_eq!(lists.len(), 3, "2 + 2 + 1");
    assert!(lists[2].query.as_deref().unwrap().contains("maxResults=1"), "{:?}", lists[2]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_while_paging_pauses_and_the_next_run_resumes_at_the_page() {
    let w = World::new(5);
    w.gmail.create_label("Receipts");
    // The engine may spend more than the mailbox allows: Gmail says no, mid-way.
    let mut runner = w
        .runner(&World::config_text(
            "page_size = 10\nquota_per_minute = 100000",
            "[[tasks.mail.rules]]\nname = \"tag\"\nadd_labels = [\"Label_1\"]\n",
        ))
        .await;
    World::once(&mut runner).await;
    let new: Vec<String> =
        (0..40).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    w.gmail.units_per_minute(120); // a page costs 2 + 10 × (5 + 5)
    let started = w.clock.wall();
    let first = World::once(&mut runner).await;
    assert_eq!(first.end.outcome, RunOutcome::Failed, "{:?}", first.end);
    assert_eq!(first.state, TaskState::Cooldown, "run again once the pause is over");
    assert!(
        first.end.error.as_deref().unwrap().contains("userRateLimitExceeded"),
        "{:?}",
        first.end
    );
    let Position::History { page: Some(page), .. } = World::checkpoint(&runner).await.at else {
        panic!()
    };
    assert_eq!(page, "10", "the second page was under way");
    let done_first: usize = new.iter().filter(|id| w.modified(id) == 1).count();
    assert!((10..20).contains(&done_first), "{done_first}");

    // On its schedule, the runner runs it again after the pause, from that page.
    w.run_for(&mut runner, Duration::from_secs(30 * 60)).await;
    assert!(new.iter().all(|id| w.modified(id) == 1), "each once");
    assert!(new.iter().all(|id| w.fetched(id) <= 2), "at most the cut message twice");
    let refused: Vec<_> = w
        .gmail
        .log()
        .all()
        .into_iter()
        .filter(|r| r.status == Some(http::StatusCode::FORBIDDEN))
        .collect();
    let after_pause = refused.last().unwrap().at;
    let next = w.gmail.log().all().into_iter().find(|r| r.at > after_pause).unwrap();
    assert!(next.at - after_pause >= Duration::from_secs(60), "the host was paused a minute");
    assert!(w.clock.wall() > started);
}

#[tokio::test(start_paused = true)]
async fn paced_to_the_mailbox_limit_no_call_is_refused() {
    let w = World::new(6);
    w.gmail.create_label("Receipts");
    let mut runner = w
        .runner(&World::config_text(
            "page_size = 10\nquota_per_minute = 120",
            "[[tasks.mail.rules]]\nname = \"tag\"\nadd_labels = [\"Label_1\"]\n",
        ))
        .await;
    World::once(&mut runner).await;
    let new: Vec<String> =
        (0..40).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    w.gmail.units_per_minute(120);
    let t0 = w.clock.now();
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert!(new.iter().all(|id| w.modified(id) == 1));
    assert_eq!(
        w.gmail
            .log()
            .all()
            .iter()
            .filter(|r| r.status == Some(http::StatusCode::FORBIDDEN))
            .count(),
        0
    );
    // 40 × 10 units + 4 pages × 2 = 408 units at 120 a minute: over three minutes.
    assert!(w.clock.now() - t0 >= Duration::from_secs(180), "{:?}", w.clock.now() - t0);
}

#[tokio::test(start_paused = true)]
async fn a_token_expiring_and_one_revoked_mid_run_are_renewed_without_losing_a_message() {
    let w = World::new(7);
    w.gmail.create_label("Receipts");
    w.oauth.token_lifetime(Duration::from_secs(90));
    let oauth = w.oauth.clone();
    // At Gmail's 20th request, the server forgets every token it issued (before expiry).
    let tapped = support::Tap::new(w.gmail.clone(), move |n| {
        if n == 20 {
            oauth.invalidate_access_tokens();
        }
    });
    let text = World::config_text(
        "page_size = 10\nquota_per_minute = 120",
        "[[tasks.mail.rules]]\nname = \"tag\"\nadd_labels = [\"Label_1\"]\n",
    );
    let mut runner = w.runner_over(&text, unattended_runner::transport(tapped)).await;
    World::once(&mut runner).await;
    let new: Vec<String> =
        (0..30).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert!(new.iter().all(|id| w.modified(id) == 1));
    let grants = w.oauth.token_calls().len();
    assert!(grants >= 3, "the first, the renewal before expiry, the one after the 401: {grants}");
    let refused = w
        .gmail
        .log()
        .all()
        .iter()
        .filter(|r| r.status == Some(http::StatusCode::UNAUTHORIZED))
        .count();
    assert_eq!(refused, 1, "one 401, answered by a new token and a replay");
}

#[tokio::test(start_paused = true)]
async fn a_webhook_that_is_down_is_retried_next_run_neither_lost_nor_doubled() {
    let w = World::new(8);
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&config("")).await;
    World::once(&mut runner).await;
    let new: Vec<String> =
        (0..3).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    w.hooks.set(HookMode::Unavailable);
    let first = World::once(&mut runner).await;
    assert_eq!(first.end.outcome, RunOutcome::Degraded, "{:?}", first.end);
    assert_eq!(first.end.summary.as_deref(), Some("3 new message(s), 6 action(s) done, 3 pending"));
    assert!(new.iter().all(|id| w.modified(id) == 1), "labels do not wait for the webhook");
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 3);
    assert!(w.hooks.accepted().is_empty());
    let tried = w.hooks.arrived().len();
    assert!((3..=9).contains(&tried), "each tried, up to three times within the run: {tried}");

    // Refused connections next: still pending.
    w.hooks.set(HookMode::Refused);
    let second = World::once(&mut runner).await;
    assert_eq!(second.end.outcome, RunOutcome::Degraded, "{:?}", second.end);

    // Runs come every five minutes: the breaker that opened on the failures lets a probe by.
    w.hooks.set(HookMode::Up);
    w.clock.sleep(Duration::from_secs(300)).await;
    let third = World::once(&mut runner).await;
    assert_eq!(third.end.outcome, RunOutcome::Succeeded, "{:?}", third.end);
    assert_eq!(third.end.summary.as_deref(), Some("0 new message(s), 3 action(s) done, 0 pending"));
    let accepted = w.hooks.accepted();
    let want: Vec<String> = new.iter().map(|id| format!("mail/{id}/all/webhook")).collect();
    assert_eq!(accepted, want, "each once, in order");
    // Every try of a message carried its one key.
    for (key, id, _) in w.hooks.arrived() {
        assert_eq!(key, format!("mail/{id}/all/webhook"));
    }
    World::once(&mut runner).await;
    assert_eq!(w.hooks.accepted().len(), 3);
    assert!(new.iter().all(|id| w.modified(id) == 1 && w.fetched(id) == 1));
}

#[tokio::test(start_paused = true)]
async fn a_webhook_that_refuses_deliveries_stops_the_task_for_a_human() {
    let w = World::new(9);
    w.gmail.create_label("Receipts");
    let mut runner = w.runner(&config("")).await;
    World::once(&mut runner).await;
    w.gmail.deliver("a@example.com", "x");
    w.hooks.set(HookMode::NotFound);
    let out = World::once(&mut runner).await;
    assert_eq!(out.state, TaskState::Disabled, "{:?}", out.end);
    let error = out.end.error.unwrap();
    assert!(error.contains("https://hooks.example.com") && error.contains("404"), "{error}");
    assert!(!error.contains("s3cret"), "the webhook's path stays out of errors: {error}");
}

#[tokio::test(start_paused = true)]
async fn mail_arriving_while_history_is_paged_is_seen_next_run_if_gmail_pages_a_snapshot() {
    let w = World::new(9);
    w.gmail.create_label("Receipts");
    w.gmail.snapshot_paging(true);
    let gmail = w.gmail.clone();
    let late = Arc::new(std::sync::Mutex::new(None));
    let arrived = late.clone();
    // At Gmail's 5th request of the run, while the first page's messages are handled.
    let tapped = support::Tap::new(w.gmail.clone(), move |n| {
        if n == 5 {
            *arrived.lock().unwrap() = Some(gmail.deliver("late@example.com", "during paging"));
        }
    });
    let text = World::config_text(
        "page_size = 10",
        "[[tasks.mail.rules]]\nname = \"tag\"\nadd_labels = [\"Label_1\"]\n",
    );
    let mut first = w.runner(&text).await;
    World::once(&mut first).await;
    drop(first);
    let new: Vec<String> =
        (0..25).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    let mut runner = w.runner_over(&text, unattended_runner::transport(tapped)).await;
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert!(new.iter().all(|id| w.modified(id) == 1));
    let late = late.lock().unwrap().clone().expect("delivered during the run");
    assert_eq!(w.modified(&late), 0, "not in the snapshot the pages listed");

    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    assert_eq!(w.modified(&late), 1, "the next run finds it");
    assert!(new.iter().all(|id| w.modified(id) == 1), "and nothing else again");
}
