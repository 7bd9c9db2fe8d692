//! The client over real sockets on 127.0.0.1 against wiremock, in real time with short waits.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use unattended_client::{Client, ServiceConfig};
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth, TokenEndpoint};
use unattended_testkit::socket::{Reply, ScriptedServer};
use unattended_token::{OAuth2Client, OAuth2Source, Placement};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Short backoffs and timeouts: these tests run in real time.
fn client(base: &str, extra: &str) -> Client {
    let text = format!(
        "base_url = \"{base}\"\n[timeouts]\nattempt = \"500ms\"\nconnect = \"1s\"\n\
         [retry]\nbase_delay = \"10ms\"\nmax_delay = \"50ms\"\n{extra}"
    );
    Client::builder(ServiceConfig::from_toml(&text).unwrap()).build().unwrap()
}

fn ok_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(r#"{"ok":true}"#, "application/json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_burst_then_200_with_our_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET")).respond_with(ok_json()).mount(&server).await;
    let got: serde_json::Value = client(&server.uri(), "").get_json("/v1/items").await.unwrap();
    assert_eq!(got["ok"], true);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let ua = received[0].headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(ua.starts_with("unattended/"), "{ua}");
    let accept = received[0].headers.get("accept-encoding").unwrap().to_str().unwrap();
    assert!(accept.contains("gzip"), "{accept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_and_date_are_honoured() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429).insert_header("retry-after", "1");
    Mock::given(method("GET")).respond_with(limited).up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET")).respond_with(ok_json()).mount(&server).await;
    let clock = Clock::system();
    let start = clock.now();
    let _: serde_json::Value = client(&server.uri(), "").get_json("/x").await.unwrap();
    assert!(clock.now() - start >= Duration::from_secs(1));

    let server = MockServer::start().await;
    let at = clock.wall() + jiff::SignedDuration::from_secs(2);
    let date = httpdate_of(at);
    let limited = ResponseTemplate::new(503).insert_header("retry-after", date.as_str());
    Mock::given(method("GET")).respond_with(limited).up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET")).respond_with(ok_json()).mount(&server).await;
    let start = clock.now();
    let _: serde_json::Value = client(&server.uri(), "").get_json("/x").await.unwrap();
    assert!(clock.now() - start >= Duration::from_millis(900), "waited for the date");
}

fn httpdate_of(at: jiff::Timestamp) -> String {
    at.in_tz("UTC").unwrap().strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_response_hits_the_attempt_timeout() {
    let server = MockServer::start().await;
    let hung = ok_json().set_delay(Duration::from_secs(10));
    Mock::given(method("GET")).respond_with(hung).up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET")).respond_with(ok_json()).mount(&server).await;
    let clock = Clock::system();
    let start = clock.now();
    let _: serde_json::Value = client(&server.uri(), "").get_json("/x").await.unwrap();
    let took = clock.now() - start;
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_is_retried() {
    let server =
        ScriptedServer::start(vec![Reply::Reset], Reply::ok(r#"{"ok":true}"#)).await.unwrap();
    let got: serde_json::Value = client(&server.url(), "").get_json("/x").await.unwrap();
    assert_eq!(got["ok"], true);
    assert_eq!(server.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_decoded() {
    let server = MockServer::start().await;
    let body = br#"{"ok":true,"zipped":1}"#;
    let zipped = ResponseTemplate::new(200)
        .insert_header("content-encoding", "gzip")
        .set_body_raw(gzip_stored(body), "application/json");
    Mock::given(method("GET")).respond_with(zipped).mount(&server).await;
    let got: serde_json::Value = client(&server.uri(), "").get_json("/x").await.unwrap();
    assert_eq!(got["zipped"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros in about 64 KiB: the limit counts what comes out of the decompressor.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &vec![0; 64 << 20]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let server = MockServer::start().await;
    let zipped = ResponseTemplate::new(200)
        .insert_header("content-encoding", "gzip")
        .set_body_raw(bomb, "application/json");
    Mock::given(method("GET")).respond_with(zipped).mount(&server).await;
    let client = client(&server.uri(), "[limits]\nmax_response_bytes = 4194304");
    let err = client.get_json::<serde_json::Value>("/x").await.unwrap_err();
    assert!(err.is_body(), "{err}");
    assert!(format!("{err:#}").contains("over the limit of 4194304 bytes"), "{err:#}");
    let res = client.send(http::Request::get("/x").body(Full::<Bytes>::default()).unwrap());
    let err = http_body_util::BodyExt::collect(res.await.unwrap().into_body()).await.unwrap_err();
    assert!(err.is::<http_body_util::LengthLimitError>(), "{err}");
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01];
    let len = u16::try_from(data.len()).unwrap();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_replayed() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(401)
        .insert_header("www-authenticate", r#"Bearer realm="x", error="invalid_token""#);
    Mock::given(header("authorization", "Bearer ya29.access-2"))
        .respond_with(refused)
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer ya29.access-3"))
        .respond_with(ok_json())
        .mount(&server)
        .await;
    let clock = Clock::system();
    let mock = GoogleOAuth::new(clock);
    let oauth =
        OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.googleapis.com/token").unwrap();
    let source: OAuth2Source<TokenEndpoint, Full<Bytes>> =
        OAuth2Source::refresh_token(oauth, mock.grant(), mock.token_endpoint(), clock);
    let text = format!("base_url = \"{}\"", server.uri());
    let client = Client::builder(ServiceConfig::from_toml(&text).unwrap())
        .token_source(source, Placement::Bearer)
        .build()
        .unwrap();
    let got: serde_json::Value = client.get_json("/x").await.unwrap();
    assert_eq!(got["ok"], true);
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "refused once, replayed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_closes_over_sockets() {
    let server = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(5)
        .mount(&server)
        .await;
    Mock::given(path("/x")).respond_with(ok_json()).mount(&server).await;
    let client =
        client(&server.uri(), "max_attempts = 1\n[breaker]\nmin_calls = 5\nopen_for = \"300ms\"");
    for _ in 0..5 {
        let err = client.get_json::<serde_json::Value>("/x").await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    }
    let err = client.get_json::<serde_json::Value>("/x").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(matches!(err.disposition(), Disposition::Skip(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
    Clock::system().sleep(Duration::from_millis(450)).await;
    let got: serde_json::Value = client.get_json("/x").await.unwrap();
    assert_eq!(got["ok"], true, "the probe went through and closed it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_thread_that_sends_shares_one_breaker() {
    // Each sending thread keeps a stack of its own: tasks on both workers and a plain thread
    // must still see the one breaker of the service.
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let client =
        client(&server.uri(), "max_attempts = 1\n[breaker]\nmin_calls = 5\nopen_for = \"60s\"");
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_json::<serde_json::Value>("/x").await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap_err();
    }
    let sent = server.received_requests().await.unwrap().len();
    assert!((5..=8).contains(&sent), "{sent} requests before the breaker opened");

    let elsewhere = {
        let (client, handle) = (client.clone(), tokio::runtime::Handle::current());
        std::thread::spawn(move || handle.block_on(client.get_json::<serde_json::Value>("/x")))
    };
    let err = tokio::task::spawn_blocking(move || elsewhere.join().unwrap()).await.unwrap();
    assert!(err.unwrap_err().is_unavailable(), "a thread that never sent sees the open breaker");
    for _ in 0..4 {
        let client = client.clone();
        let err = tokio::spawn(async move { client.get_json::<serde_json::Value>("/x").await });
        assert!(err.await.unwrap().unwrap_err().is_unavailable());
    }
    assert_eq!(server.received_requests().await.unwrap().len(), sent, "nothing more was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{addr}"), "max_attempts = 2")
        .get_json::<serde_json::Value>("/x")
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(err.attempts(), Some(2));
}
