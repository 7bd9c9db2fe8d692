//! The YouTube mock: resumable upload protocol, its faults, the quota's Pacific midnight, tokens.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::fault::{Fault, Route, Trigger};
use unattended_testkit::oauth::GoogleOAuth;
use unattended_testkit::youtube::{CHUNK, QUOTA_EXCEEDED_BODY, YouTube, sha256_hex};

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

fn initiate_with(resource: &str) -> Request<Full<Bytes>> {
    Request::post(INIT)
        .header("x-upload-content-length", "10")
        .body(Full::new(Bytes::from(resource.to_owned())))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn kept_bytes_are_hashed_and_a_reset_mid_chunk_keeps_half() {
    let mock = YouTube::new(clock(), 1);
    let chunks = Route::of(Method::PUT, "/upload");
    mock.fault(chunks.clone(), Trigger::Nth(2, 2), Fault::ResetMidChunk);
    mock.fault(chunks, Trigger::Nth(4, 4), Fault::ShortRange);
    let total = 5 * CHUNK + 10;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let session =
        call(&mock, initiate(total)).await.headers["location"].to_str().unwrap().to_owned();
    let send = |first: u64, last: u64| {
        Request::put(session.as_str())
            .header("content-range", format!("bytes {first}-{last}/{total}"))
            .body(Full::new(Bytes::copy_from_slice(&data[first as usize..=last as usize])))
            .unwrap()
    };
    call(&mock, send(0, CHUNK - 1)).await;
    // The connection breaks: nothing comes back, but the first half of four chunks was kept.
    let reset = mock.clone().oneshot(send(CHUNK, 5 * CHUNK - 1)).await;
    assert!(reset.is_err());
    let query = call(&mock, status_query(&session, total)).await;
    assert_eq!(range(&query), Some(format!("bytes=0-{}", 3 * CHUNK - 1).as_str()));
    // Two chunks sent; the answer says one of them was kept.
    let short = call(&mock, send(3 * CHUNK, 5 * CHUNK - 1)).await;
    assert_eq!(range(&short), Some(format!("bytes=0-{}", 4 * CHUNK - 1).as_str()));
    let last = call(&mock, send(4 * CHUNK, total - 1)).await;
    assert_eq!(last.status, StatusCode::CREATED);
    assert_eq!(mock.uploads().len(), 1);
    let upload = &mock.uploads()[0];
    assert_eq!((upload.bytes, upload.title.as_str()), (total, "talk"));
    assert_eq!(upload.sha256, sha256_hex(&data));
}

#[tokio::test(start_paused = true)]
async fn a_resent_overlap_and_a_lost_range_keep_the_hash_right() {
    let mock = YouTube::new(clock(), 1);
    mock.fault(Route::of(Method::PUT, "/upload"), Trigger::Nth(2, 2), Fault::NoRange);
    let total = 3 * CHUNK;
    let data: Vec<u8> = (0..total).map(|i| (i % 13) as u8).collect();
    let session =
        call(&mock, initiate(total)).await.headers["location"].to_str().unwrap().to_owned();
    let send = |first: u64, last: u64| {
        Request::put(session.as_str())
            .header("content-range", format!("bytes {first}-{last}/{total}"))
            .body(Full::new(Bytes::copy_from_slice(&data[first as usize..=last as usize])))
            .unwrap()
    };
    call(&mock, send(0, CHUNK - 1)).await;
    let lost = call(&mock, send(CHUNK, 2 * CHUNK - 1)).await;
    assert_eq!(range(&lost), None, "nothing kept: start again");
    call(&mock, send(0, 2 * CHUNK - 1)).await;
    // The same chunk twice: the bytes kept are not hashed twice.
    call(&mock, send(CHUNK, 2 * CHUNK - 1)).await;
    call(&mock, send(2 * CHUNK, total - 1)).await;
    assert_eq!(mock.uploads()[0].sha256, sha256_hex(&data));
    assert_eq!(mock.sessions_started(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_session_uri_leads_back_to_the_host_asked() {
    let mock = YouTube::new(clock(), 1);
    let req = Request::post("/upload/youtube/v3/videos?uploadType=resumable&part=snippet")
        .header("host", "127.0.0.1:4567")
        .header("x-upload-content-length", "10")
        .body(Full::new(Bytes::from_static(br#"{"snippet":{"title":"t"}}"#)))
        .unwrap();
    let location = call(&mock, req).await.headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:4567/upload/youtube/v3/videos?"), "{location}");
    let location = call(&mock, initiate(10)).await.headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://www.googleapis.com/upload/"), "{location}");
}

#[tokio::test(start_paused = true)]
async fn metadata_youtube_refuses_and_the_upload_limit() {
    let mock = YouTube::new(clock(), 1);
    let long_title = "x".repeat(101);
    let many_tags: Vec<String> = (0..60).map(|i| format!("tag-{i:05}")).collect();
    let cases = [
        (r#"{"snippet":{"title":""}}"#.to_owned(), "invalidTitle"),
        (format!(r#"{{"snippet":{{"title":"{long_title}"}}}}"#), "invalidTitle"),
        (r#"{"snippet":{"title":"a <b>"}}"#.to_owned(), "invalidTitle"),
        (r#"{"snippet":{"title":"t","description":"<script>"}}"#.to_owned(), "invalidDescription"),
        (
            serde_json::json!({"snippet": {"title": "t", "tags": many_tags}}).to_string(),
            "invalidTags",
        ),
        (r#"{"snippet":{"title":"t","categoryId":"9999"}}"#.to_owned(), "invalidCategoryId"),
        (
            r#"{"snippet":{"title":"t"},"status":{"privacyStatus":"public","publishAt":"2027-01-01T00:00:00Z"}}"#.to_owned(),
            "invalidPublishAt",
        ),
        (
            r#"{"snippet":{"title":"t"},"status":{"privacyStatus":"private","publishAt":"2026-01-01T00:00:00Z"}}"#.to_owned(),
            "invalidPublishAt",
        ),
    ];
    for (resource, reason) in cases {
        let answer = call(&mock, initiate_with(&resource)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{resource}");
        assert!(
            answer.body.contains(&format!(r#""reason":"{reason}""#)),
            "{resource}: {}",
            answer.body
        );
    }
    let fine = r#"{"snippet":{"title":"t","categoryId":"22"},"status":{"privacyStatus":"private","publishAt":"2027-01-01T00:00:00Z"}}"#;
    assert_eq!(call(&mock, initiate_with(fine)).await.status, StatusCode::OK);
    mock.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(1, 1), Fault::UploadLimitExceeded);
    let limited = call(&mock, initiate_with(fine)).await;
    assert_eq!(limited.status, StatusCode::BAD_REQUEST);
    assert!(limited.body.contains("uploadLimitExceeded"), "{}", limited.body);
    mock.clear_faults();
    assert_eq!(call(&mock, initiate_with(fine)).await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn videos_list_finds_completed_uploads() {
    let mock = YouTube::new(clock(), 1);
    let session = call(&mock, initiate(10)).await.headers["location"].to_str().unwrap().to_owned();
    let done = call(&mock, chunk(&session, 0, 10, 10)).await;
    let id = serde_json::from_str::<serde_json::Value>(&done.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = |ids: &str| {
        Request::get(format!("https://www.googleapis.com/youtube/v3/videos?part=status&id={ids}"))
            .body(Full::default())
            .unwrap()
    };
    let found: serde_json::Value =
        serde_json::from_str(&call(&mock, list(&format!("{id},other"))).await.body).unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["status"]["uploadStatus"], "uploaded");
    let none: serde_json::Value =
        serde_json::from_str(&call(&mock, list("nope")).await.body).unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}
