//! The Gmail mock: incremental sync by history, pages, a history too old, the rate limit.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::gmail::{Gmail, USER_RATE_LIMIT_BODY};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

async fn get(mail: &Gmail, path: &str) -> (StatusCode, String) {
    let req = Request::get(format!("https://gmail.googleapis.com/gmail/v1/users/me/{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = mail.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (
        status,
        String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned(),
    )
}

async fn json(mail: &Gmail, path: &str) -> Value {
    let (status, body) = get(mail, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(start_paused = true)]
async fn incremental_sync_from_a_saved_history_id() {
    let mail = Gmail::new(clock(), 7);
    mail.deliver("a@example.com", "first");
    let start = json(&mail, "profile").await["historyId"].as_str().unwrap().to_owned();
    let ids: Vec<String> =
        (0..5).map(|n| mail.deliver("b@example.com", &format!("news {n}"))).collect();

    // Two pages of two, then one; the last page carries no token.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page =
            json(&mail, &format!("history?startHistoryId={start}&maxResults=2{token}")).await;
        for record in page["history"].as_array().unwrap() {
            seen.push(record["messagesAdded"][0]["message"]["id"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(next) => token = format!("&pageToken={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let message = json(&mail, &format!("messages/{}", ids[0])).await;
    assert_eq!(message["payload"]["headers"][1]["value"], "news 0");
    let list = json(&mail, "messages?maxResults=3").await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 3);
    assert_eq!(list["resultSizeEstimate"], 6);
    assert_eq!(get(&mail, "messages/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn a_history_id_too_old_is_404() {
    let mail = Gmail::new(clock(), 7);
    let start = json(&mail, "profile").await["historyId"].as_str().unwrap().to_owned();
    mail.deliver("a@example.com", "x");
    mail.expire_history();
    let (status, body) = get(&mail, &format!("history?startHistoryId={start}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("notFound"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn history_ids_grow_but_skip() {
    let mail = Gmail::new(clock(), 7);
    for _ in 0..20 {
        mail.deliver("a@example.com", "x");
    }
    let page = json(&mail, "history?startHistoryId=1000&maxResults=500").await;
    let history: Vec<u64> = page["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(history.windows(2).all(|w| w[1] > w[0]));
    assert!(history.windows(2).any(|w| w[1] - w[0] > 1), "not contiguous: {history:?}");
}

#[tokio::test(start_paused = true)]
async fn the_per_user_rate_limit_answers_403_until_the_minute_passes() {
    let mail = Gmail::new(clock(), 7);
    mail.units_per_minute(12);
    assert_eq!(get(&mail, "messages").await.0, StatusCode::OK); // 5
    assert_eq!(get(&mail, "messages").await.0, StatusCode::OK); // 10
    let (status, body) = get(&mail, "messages").await;
    assert_eq!((status, body.as_str()), (StatusCode::FORBIDDEN, USER_RATE_LIMIT_BODY));
    assert_eq!(
        get(&mail, "history?startHistoryId=1000").await.0,
        StatusCode::OK,
        "2 units still fit"
    );
    clock().sleep(Duration::from_secs(60)).await;
    assert_eq!(get(&mail, "messages").await.0, StatusCode::OK);
}
