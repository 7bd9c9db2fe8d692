//! The Gmail mock: incremental sync by history, pages, a history too old, the rate limit.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::gmail::{Gmail, NewMail, USER_RATE_LIMIT_BODY};

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

async fn post(mail: &Gmail, path: &str, body: Value) -> (StatusCode, String) {
    let req = Request::post(format!("https://gmail.googleapis.com/gmail/v1/users/me/{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let res = mail.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (
        status,
        String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn metadata_gives_the_headers_asked_for_and_the_top_mime_type() {
    let mail = Gmail::new(clock(), 7);
    let with =
        mail.deliver_mail(NewMail::new("Billing <b@example.com>", "Invoice").attachment(true));
    let without = mail.deliver("a@example.com", "hello");
    let m = json(
        &mail,
        &format!("messages/{with}?format=metadata&metadataHeaders=From&metadataHeaders=subject"),
    )
    .await;
    let names: Vec<&str> = m["payload"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["From", "Subject"]);
    assert_eq!(m["payload"]["mimeType"], "multipart/mixed");
    assert!(m["payload"].get("parts").is_none(), "metadata has no parts");
    assert_eq!(m["internalDate"], clock().wall().as_millisecond().to_string());
    assert_eq!(m["labelIds"], serde_json::json!(["INBOX", "UNREAD"]));
    let m = json(&mail, &format!("messages/{without}?format=metadata")).await;
    assert_eq!(m["payload"]["mimeType"], "multipart/alternative");
    assert_eq!(m["payload"]["headers"].as_array().unwrap().len(), 6, "all headers when none named");
    let full = json(&mail, &format!("messages/{with}")).await;
    assert_eq!(full["payload"]["parts"][1]["filename"], "invoice.pdf");
    let minimal = json(&mail, &format!("messages/{with}?format=minimal")).await;
    assert!(minimal.get("payload").is_none());
}

#[tokio::test(start_paused = true)]
async fn modify_changes_labels_once_and_records_history() {
    let mail = Gmail::new(clock(), 7);
    let label = mail.create_label("Receipts");
    let id = mail.deliver("a@example.com", "x");
    let start = json(&mail, "profile").await["historyId"].as_str().unwrap().to_owned();
    let change = serde_json::json!({"addLabelIds": [label], "removeLabelIds": ["UNREAD"]});
    let (status, body) = post(&mail, &format!("messages/{id}/modify"), change.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["labelIds"], serde_json::json!(["INBOX", label]));
    assert_eq!(mail.labels_of(&id).unwrap(), ["INBOX", label.as_str()]);
    let after = json(&mail, "profile").await["historyId"].as_str().unwrap().to_owned();

    // The same change again changes nothing and makes no record.
    assert_eq!(post(&mail, &format!("messages/{id}/modify"), change).await.0, StatusCode::OK);
    assert_eq!(json(&mail, "profile").await["historyId"].as_str().unwrap(), after);

    let page = json(&mail, &format!("history?startHistoryId={start}")).await;
    let kinds: Vec<bool> = page["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("labelsAdded").is_some())
        .collect();
    assert_eq!(kinds, [true, false], "one added, one removed");
    let only_added =
        json(&mail, &format!("history?startHistoryId={start}&historyTypes=messageAdded")).await;
    assert!(only_added.get("history").is_none(), "{only_added}");

    let (status, body) = post(
        &mail,
        &format!("messages/{id}/modify"),
        serde_json::json!({"addLabelIds": ["Label_9"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Invalid label: Label_9"), "{body}");
    assert_eq!(
        post(&mail, "messages/nope/modify", serde_json::json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(start_paused = true)]
async fn history_and_lists_filter_by_label_and_pages_survive_new_mail() {
    let mail = Gmail::new(clock(), 7);
    let inbox: Vec<String> =
        (0..3).map(|n| mail.deliver("a@example.com", &n.to_string())).collect();
    mail.deliver_mail(NewMail::new("me@example.com", "sent").labels(&["SENT"]));
    let page =
        json(&mail, "history?startHistoryId=1000&labelId=INBOX&historyTypes=messageAdded").await;
    assert_eq!(page["history"].as_array().unwrap().len(), 3);

    let first = json(&mail, "messages?labelIds=INBOX&maxResults=2").await;
    let ids = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), [inbox[2].clone(), inbox[1].clone()], "newest first");
    mail.deliver("a@example.com", "late");
    let token = first["nextPageToken"].as_str().unwrap();
    let second =
        json(&mail, &format!("messages?labelIds=INBOX&maxResults=2&pageToken={token}")).await;
    assert_eq!(ids(&second), [inbox[0].clone()], "new mail does not shift the pages");
    assert!(second.get("nextPageToken").is_none());

    mail.delete(&inbox[0]);
    assert_eq!(get(&mail, &format!("messages/{}", inbox[0])).await.0, StatusCode::NOT_FOUND);
    assert_eq!(mail.labels_of(&inbox[0]), None);
}
