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
use tower::timeout::TimeoutLayer;
use tower::{ServiceBuilder, ServiceExt};
use unattended::gate::WhenClosed;
use unattended::{
    BoxError, CircuitBreakerLayer, GateLayer, HasDisposition, RateLimitLayer, RetryConfig,
    RetryLayer, WindowCalendar,
};
use unattended_testkit::socket::{Reply, ScriptedServer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // 503, then 429 with `Retry-After: 1`, then a response that never comes, then 200.
    let script = vec![Reply::status(503), Reply::with_header(429, "retry-after", "1"), Reply::Hang];
    let server = ScriptedServer::start(script, Reply::ok("hello\n")).await?;
    let url = format!("{}/", server.url());
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
