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
use tower::{ServiceBuilder, ServiceExt};
use unattended::ratelimit::RateLimitEvent;
use unattended::retry::RetryEvent;
use unattended::{BoxError, RateLimitLayer, RetryConfig, RetryLayer};
use unattended_testkit::socket::{Reply, ScriptedServer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // 503, then 429 with `Retry-After: 1`, then 200.
    let script = vec![Reply::status(503), Reply::with_header(429, "retry-after", "1")];
    let server = ScriptedServer::start(script, Reply::ok("hello\n")).await?;
    let url = format!("{}/", server.url());
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
