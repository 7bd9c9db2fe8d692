//! The client publishing to the DEV mock in-process under a paused clock: throttles waited out,
//! a lost answer after a committed write not repeated blindly.

use std::time::Duration;

use serde_json::{Value, json};
use unattended_client::{Client, ServiceConfig};
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_token::{Placement, StaticToken};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

fn client(mock: &DevTo, key: &str) -> Client {
    let config = ServiceConfig::from_toml("base_url = \"https://dev.to\"").unwrap();
    Client::builder(config)
        .clock(clock())
        .seed(3)
        .token_source(StaticToken::new(key), Placement::header("api-key".parse().unwrap()))
        .build_with(mock.clone())
        .unwrap()
}

fn article(title: &str) -> Value {
    json!({"article": {"title": title, "body_markdown": "Hi", "published": true}})
}

#[tokio::test(start_paused = true)]
async fn a_write_throttle_is_waited_out_and_the_post_sent_again() {
    let mock = DevTo::new(clock(), 1);
    let client = client(&mock, &mock.key("k"));
    let start = clock().now();
    let first: Value = client.post_json("/api/articles", &article("one")).await.unwrap();
    let second: Value = client.post_json("/api/articles", &article("two")).await.unwrap();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(mock.titles(), ["one", "two"]);
    let posts = mock.log().to(&http::Method::POST, "/api/articles");
    let statuses: Vec<_> = posts.iter().map(|r| r.status.map(|s| s.as_u16())).collect();
    assert_eq!(statuses, [Some(201), Some(429), Some(201)], "the 429 was refused before any work");
    // As Retry-After said, plus the spread after a server's instant.
    let (second, waited) = (Duration::from_secs(1), posts[2].at - posts[1].at);
    assert!(waited >= second && waited < 2 * second, "{waited:?}");
    assert_eq!(clock().now() - start, waited);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_after_a_committed_write_is_not_repeated_blindly() {
    let mock = DevTo::new(clock(), 1);
    let client = client(&mock, &mock.key("k"));
    mock.fault(
        Route::of(http::Method::POST, "/api/articles"),
        Trigger::Nth(1, 1),
        Fault::CommitThenDrop,
    );
    let err = client.post_json::<_, Value>("/api/articles", &article("once")).await.unwrap_err();
    assert!(matches!(err.disposition(), Disposition::RetryAt(_)), "{err}");
    assert_eq!(mock.titles(), ["once"], "written once, not twice");
    // What an engine does next: look before writing again.
    clock().sleep(Duration::from_secs(1)).await;
    let mine: Vec<Value> = client.get_json("/api/articles/me/all").await.unwrap();
    assert_eq!(mine[0]["title"], "once");
}
