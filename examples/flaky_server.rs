//! The retry and rate-limit layers in a plain tower stack around hyper-util's client, against a
//! local server that fails twice before it answers.
//!
//! `cargo run --release --example flaky_server`

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use unattended::ratelimit::RateLimitEvent;
use unattended::retry::RetryEvent;
use unattended::{BoxError, RateLimitLayer, RetryConfig, RetryLayer};

/// Answers its first request with 503, its second with 429 and `Retry-After: 1`, then 200.
async fn flaky_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let replies = [
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ];
        for n in 0.. {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let reply = replies.get(n).copied().unwrap_or(
                "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n",
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    Ok(format!("http://{addr}/"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = flaky_server().await?;
    let retry = RetryLayer::new(RetryConfig::standard().backoff(
        Duration::from_millis(100),
        2.0,
        Duration::from_secs(5),
    ))?
    .on_event(|event| match event {
        RetryEvent::Retrying { attempt, delay, reason, .. } => {
            println!("attempt {attempt}: {reason}; retrying in {delay:?}");
        }
        RetryEvent::GaveUp { attempts, reason, .. } => {
            println!("gave up after {attempts}: {reason}")
        }
        _ => {}
    });
    let pause = RateLimitLayer::new().on_event(|event| {
        if let RateLimitEvent::PauseSet { key, until, source, .. } = event {
            println!("{key} asked for a pause ({source}) until {until}; every caller waits");
        }
    });
    let client = ServiceBuilder::new()
        .layer(retry)
        .layer(pause)
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    let res = client.oneshot(Request::get(&url).body(Full::new(Bytes::new()))?).await?;
    println!("{url} answered {}", res.status());
    Ok(())
}
