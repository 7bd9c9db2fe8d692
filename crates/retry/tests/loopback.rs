//! Real sockets on 127.0.0.1, real time, short waits: the layer around hyper-util's client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use unattended_retry::{Jitter, RetryConfig, RetryLayer};

#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Read the request, then abort the connection with a TCP reset.
    Reset,
    /// Read the request and say nothing.
    Hang,
}

/// A server that answers each connection with the next reply of `script` (then 200).
async fn scripted_server(script: Vec<Reply>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let reply = script.get(n).copied().unwrap_or(Reply::Status(200));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match reply {
                    Reply::Status(code) => {
                        let body = if code == 200 { "ok" } else { "" };
                        let res = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(res.as_bytes()).await;
                        let _ = conn.shutdown().await;
                    }
                    Reply::Reset => {
                        conn.set_zero_linger().unwrap();
                        drop(conn);
                    }
                    Reply::Hang => {
                        // Hold the connection open, silent, until the client gives up.
                        let _ = conn.read(&mut buf).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Short backoff; `attempt_timeout` generous enough that a loaded machine never times out a
/// healthy loopback answer.
fn layer(attempt_timeout: Duration) -> RetryLayer {
    let config = RetryConfig::standard()
        .jitter(Jitter::None)
        .backoff(Duration::from_millis(10), 2.0, Duration::from_millis(50))
        .attempt_timeout(Some(attempt_timeout))
        .deadline(Some(Duration::from_secs(30)));
    RetryLayer::new(config).unwrap()
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[tokio::test]
async fn a_503_then_a_reset_then_200() {
    let (addr, seen) = scripted_server(vec![Reply::Status(503), Reply::Reset]).await;
    let svc = layer(Duration::from_secs(10)).layer(client());
    let req = Request::get(format!("http://{addr}/v")).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_response_that_never_comes_becomes_a_retry() {
    let (addr, seen) = scripted_server(vec![Reply::Hang]).await;
    let svc = layer(Duration::from_secs(1)).layer(client());
    let req = Request::get(format!("http://{addr}/v")).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn wiremock_503_burst_then_200() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .with_priority(2)
        .mount(&server)
        .await;
    let svc = layer(Duration::from_secs(10)).layer(client());
    let req =
        Request::get(format!("{}/items", server.uri())).body(Full::new(Bytes::new())).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}
