//! The YouTube mock: resumable upload protocol, its faults, the quota's Pacific midnight, tokens.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::oauth::GoogleOAuth;
use unattended_testkit::youtube::{CHUNK, QUOTA_EXCEEDED_BODY, YouTube};

const INIT: &str =
    "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status";

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn call(mock: &YouTube, req: Request<Full<Bytes>>) -> Answer {
    let res = mock.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
    Answer { status: parts.status, headers: parts.headers, body }
}

fn initiate(total: u64) -> Request<Full<Bytes>> {
    Request::post(INIT)
        .header("x-upload-content-length", total.to_string())
        .header("x-upload-content-type", "video/mp4")
        .body(Full::new(Bytes::from(
            r#"{"snippet":{"title":"talk"},"status":{"privacyStatus":"private"}}"#,
        )))
        .unwrap()
}

fn chunk(session: &str, first: u64, len: u64, total: u64) -> Request<Full<Bytes>> {
    Request::put(session)
        .header("content-range", format!("bytes {first}-{}/{total}", first + len - 1))
        .body(Full::new(Bytes::from(vec![7u8; usize::try_from(len).unwrap()])))
        .unwrap()
}

fn status_query(session: &str, total: u64) -> Request<Full<Bytes>> {
    Request::put(session)
        .header("content-range", format!("bytes */{total}"))
        .body(Full::default())
        .unwrap()
}

fn range(answer: &Answer) -> Option<&str> {
    answer.headers.get("range").map(|v| v.to_str().unwrap())
}

#[tokio::test(start_paused = true)]
async fn an_upload_in_chunks_with_a_status_query() {
    let mock = YouTube::new(clock(), 1);
    let total = 2 * CHUNK + 1000;
    let init = call(&mock, initiate(total)).await;
    assert_eq!(init.status, StatusCode::OK);
    let session = init.headers["location"].to_str().unwrap().to_owned();
    assert!(session.contains("uploadType=resumable&upload_id="), "{session}");

    let first = call(&mock, chunk(&session, 0, CHUNK, total)).await;
    assert_eq!(
        (first.status, range(&first)),
        (StatusCode::PERMANENT_REDIRECT, Some("bytes=0-262143"))
    );
    // A chunk that is not a multiple of 256 KiB (and not the last) is refused.
    assert_eq!(
        call(&mock, chunk(&session, CHUNK, 1000, total)).await.status,
        StatusCode::BAD_REQUEST
    );
    let query = call(&mock, status_query(&session, total)).await;
    assert_eq!(
        (query.status, range(&query)),
        (StatusCode::PERMANENT_REDIRECT, Some("bytes=0-262143"))
    );
    call(&mock, chunk(&session, CHUNK, CHUNK, total)).await;
    let done = call(&mock, chunk(&session, 2 * CHUNK, 1000, total)).await;
    assert_eq!(done.status, StatusCode::CREATED);
    let video: serde_json::Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(video["status"]["uploadStatus"], "uploaded");
    // A lost final answer is recovered by asking.
    let again = call(&mock, status_query(&session, total)).await;
    assert_eq!((again.status, again.body), (StatusCode::CREATED, done.body));
    assert_eq!(mock.videos().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn short_and_missing_ranges_and_an_expired_session() {
    let mock = YouTube::new(clock(), 1);
    let chunks = Route::of(Method::PUT, "/upload");
    mock.fault(chunks.clone(), Trigger::Nth(2, 2), Fault::ShortRange);
    mock.fault(chunks.clone(), Trigger::Nth(3, 3), Fault::NoRange);
    mock.fault(chunks, Trigger::Nth(4, 4), Fault::SessionExpired);
    let total = 4 * CHUNK;
    let session =
        call(&mock, initiate(total)).await.headers["location"].to_str().unwrap().to_owned();
    call(&mock, chunk(&session, 0, CHUNK, total)).await;
    let short = call(&mock, chunk(&session, CHUNK, 2 * CHUNK, total)).await;
    assert_eq!(range(&short), Some("bytes=0-524287"), "less than was sent: resume from there");
    let none = call(&mock, chunk(&session, 2 * CHUNK, CHUNK, total)).await;
    assert_eq!(
        (none.status, range(&none)),
        (StatusCode::PERMANENT_REDIRECT, None),
        "nothing stored"
    );
    let gone = call(&mock, chunk(&session, 0, CHUNK, total)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(mock.log().faulted().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_quota_resets_at_midnight_pacific() {
    // 23:30 in Los Angeles on 2026-11-27 (PST, UTC-8).
    let clock = Clock::starting_at("2026-11-28T07:30:00Z".parse().unwrap());
    let mock = YouTube::new(clock, 1);
    mock.quota(2);
    for _ in 0..2 {
        assert_eq!(call(&mock, initiate(10)).await.status, StatusCode::OK);
    }
    let spent = call(&mock, initiate(10)).await;
    assert_eq!((spent.status, spent.body.as_str()), (StatusCode::FORBIDDEN, QUOTA_EXCEEDED_BODY));
    clock.sleep(Duration::from_secs(29 * 60)).await; // 23:59
    assert_eq!(call(&mock, initiate(10)).await.status, StatusCode::FORBIDDEN);
    clock.sleep(Duration::from_secs(60)).await; // midnight Pacific, 08:00 UTC
    assert_eq!(call(&mock, initiate(10)).await.status, StatusCode::OK);
    // The fault spends the day's quota at once.
    mock.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(1, 1), Fault::QuotaExceeded);
    assert_eq!(call(&mock, initiate(10)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(call(&mock, initiate(10)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_checked_against_the_oauth_mock() {
    let oauth = GoogleOAuth::new(clock());
    let mock = YouTube::new(clock(), 1).with_auth(oauth);
    let refused = call(&mock, initiate(10)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert!(refused.body.contains("UNAUTHENTICATED"));
}
