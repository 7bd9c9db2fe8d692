//! Every layer in the design's order around hyper-util's client, against a local server that
//! misbehaves: `Gate → Retry → RateLimit → CircuitBreaker → attempt Timeout → transport`.
//!
//! `cargo run --release --example full_stack`

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::timeout::TimeoutLayer;
use tower::{ServiceBuilder, ServiceExt};
use unattended::gate::WhenClosed;
use unattended::{
    BoxError, CircuitBreakerLayer, GateLayer, HasDisposition, RateLimitLayer, RetryConfig,
    RetryLayer, WindowCalendar,
};

/// 503, then 429 with `Retry-After: 1`, then a response that never comes, then 200.
async fn misbehaving_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let reply = match n {
                    0 => {
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    }
                    1 => {
                        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    }
                    2 => {
                        // Say nothing: the attempt timeout turns this into a retry.
                        let _ = conn.read(&mut buf).await;
                        return;
                    }
                    _ => "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n",
                };
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = misbehaving_server().await?;
    let always = WindowCalendar::new("UTC", &["daily 00:00-24:00"], &[])?;
    let client = ServiceBuilder::new()
        .layer(GateLayer::new().class("write", always, WhenClosed::Reject))
        .layer(RetryLayer::new(
            RetryConfig::standard()
                .backoff(Duration::from_millis(100), 2.0, Duration::from_secs(5))
                .attempt_timeout(None),
        )?)
        .layer(RateLimitLayer::new())
        .layer(CircuitBreakerLayer::standard())
        .layer(TimeoutLayer::new(Duration::from_secs(2)))
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    let started = unattended::Clock::system();
    let start = started.now();
    match client.oneshot(Request::get(&url).body(Full::new(Bytes::new()))?).await {
        Ok(res) => println!("{url} answered {} after {:?}", res.status(), started.now() - start),
        Err(err) => {
            let disposition = err
                .downcast_ref::<unattended::GaveUp>()
                .map(|gave_up| gave_up.disposition().to_string())
                .unwrap_or_else(|| "stop".to_owned());
            println!("failed: {err} ({disposition})");
        }
    }
    Ok(())
}
