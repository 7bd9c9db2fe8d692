//! Every fault over a real socket (the in-process side is tested with each mock): the mocks
//! served on 127.0.0.1, real time, short waits.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use unattended_core::Clock;
use unattended_testkit::dev::DevTo;
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};
use unattended_testkit::serve::serve;
use unattended_testkit::youtube::{CHUNK, YouTube};

type Outcome = Result<(StatusCode, http::HeaderMap, Bytes), String>;

/// One request on a fresh connection, with a 1 s limit.
async fn send(
    url: String,
    method: Method,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Outcome {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).unwrap();
    let call = async {
        let res = client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    Clock::system()
        .timeout(Duration::from_secs(1), call)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_generic_fault_over_a_socket() {
    let mock = DevTo::new(Clock::system(), 1);
    let key = mock.key("k");
    let faults = [
        Fault::Unavailable,
        Fault::RateLimited(Some(RetryAfter::Seconds(7))),
        Fault::QuotaHeaders { reset: 9 },
        Fault::MalformedJson,
        Fault::Oversized(100_000),
        Fault::SlowBody { every: Duration::from_millis(50) },
        Fault::Transport,
        Fault::Hang,
    ];
    for (n, fault) in faults.iter().enumerate() {
        let n = n as u64 + 1;
        mock.fault(Route::of(Method::GET, "/api"), Trigger::Nth(n, n), fault.clone());
    }
    let served = serve(mock.clone()).await.unwrap();
    let url = format!("{}/api/articles/me/all", served.url());
    let mut outcomes = Vec::new();
    for _ in 0..faults.len() {
        outcomes.push(send(url.clone(), Method::GET, &[("api-key", &key)], Bytes::new()).await);
        Clock::system().sleep(Duration::from_millis(350)).await; // under the read throttle
    }
    let ok = |i: usize| outcomes[i].as_ref().unwrap_or_else(|e| panic!("{i}: {e}"));
    assert_eq!(ok(0).0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (ok(1).0, ok(1).1["retry-after"].to_str().unwrap()),
        (StatusCode::TOO_MANY_REQUESTS, "7")
    );
    assert_eq!(ok(2).1["ratelimit"].to_str().unwrap(), "\"default\";r=0;t=9");
    assert!(serde_json::from_slice::<serde_json::Value>(&ok(3).2).is_err());
    assert_eq!(ok(4).2.len(), 100_000);
    assert_eq!(&ok(5).2[..], b"{\"slow\":true}");
    assert!(outcomes[6].is_err(), "transport: {:?}", outcomes[6]);
    assert_eq!(outcomes[7].as_ref().unwrap_err(), "timed out", "hang");

    // Commit then drop: the article exists, the client saw no answer.
    mock.fault(Route::of(Method::POST, "/api"), Trigger::Nth(1, 1), Fault::CommitThenDrop);
    let body = Bytes::from_static(br#"{"article":{"title":"kept","body_markdown":"x"}}"#);
    let res =
        send(format!("{}/api/articles", served.url()), Method::POST, &[("api-key", &key)], body)
            .await;
    assert!(res.is_err());
    assert_eq!(mock.titles(), ["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_faults_over_a_socket() {
    let mock = YouTube::new(Clock::system(), 1);
    mock.fault(Route::of(Method::PUT, "/upload"), Trigger::Nth(1, 1), Fault::NoRange);
    mock.fault(Route::of(Method::PUT, "/upload"), Trigger::Nth(2, 2), Fault::ShortRange);
    mock.fault(Route::of(Method::PUT, "/upload"), Trigger::Nth(3, 3), Fault::SessionExpired);
    mock.fault(Route::of(Method::POST, "/upload"), Trigger::Nth(2, 2), Fault::QuotaExceeded);
    let served = serve(mock.clone()).await.unwrap();
    let init =
        format!("{}/upload/youtube/v3/videos?uploadType=resumable&part=snippet", served.url());
    let meta = Bytes::from_static(br#"{"snippet":{"title":"t"}}"#);
    let total = (2 * CHUNK).to_string();
    let (status, headers, _) =
        send(init.clone(), Method::POST, &[("x-upload-content-length", &total)], meta.clone())
            .await
            .unwrap();
    assert_eq!(status, StatusCode::OK);
    let session =
        headers["location"].to_str().unwrap().replace("https://www.googleapis.com", &served.url());
    let chunk = Bytes::from(vec![1u8; usize::try_from(CHUNK).unwrap()]);
    let put = |first: u64, body: Bytes| {
        let range = format!("bytes {first}-{}/{}", first + body.len() as u64 - 1, 2 * CHUNK);
        let session = session.clone();
        async move { send(session, Method::PUT, &[("content-range", range.as_str())], body).await }
    };
    let (status, headers, _) = put(0, chunk.clone()).await.unwrap();
    assert_eq!(
        (status, headers.get("range")),
        (StatusCode::PERMANENT_REDIRECT, None),
        "nothing stored"
    );
    let (status, headers, _) = put(0, chunk.clone()).await.unwrap();
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers.get("range"), None, "the chunk was not kept (short of what was sent)");
    let (status, _, _) = put(0, chunk).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "the session expired");
    let faults: Vec<_> = mock.log().all().iter().map(|r| r.fault).collect();
    assert_eq!(faults, [None, Some("no_range"), Some("short_range"), Some("session_expired")]);
    let (status, _, body) =
        send(init, Method::POST, &[("x-upload-content-length", "1")], meta).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("quotaExceeded"));
}
