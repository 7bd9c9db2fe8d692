//! Each layer alone, dropped into a plain `tower::ServiceBuilder` around hyper-util's client.
//!
//! `cargo run --release --example layers_alone`

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use unattended::gate::WhenClosed;
use unattended::token::StaticToken;
use unattended::{
    BoxError, CircuitBreakerLayer, GateLayer, RateLimitLayer, RetryConfig, RetryLayer, TokenCache,
    TokenLayer, WindowCalendar,
};
use unattended_testkit::socket::{Reply, ScriptedServer};

fn get(url: &str) -> Result<Request<Full<Bytes>>, http::Error> {
    Request::get(url).body(Full::new(Bytes::new()))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    // Retry: two 503s, then 200.
    let server = ScriptedServer::start(vec![Reply::status(503); 2], Reply::ok("ok")).await?;
    let retry =
        RetryConfig::standard().backoff(Duration::from_millis(50), 2.0, Duration::from_secs(1));
    let svc = ServiceBuilder::new().layer(RetryLayer::new(retry)?).service(hyper.clone());
    let res = svc.oneshot(get(&server.url())?).await?;
    println!("retry: {} after {} requests", res.status(), server.connections());

    // Rate limit: a 429 with `Retry-After: 1` pauses the host for every caller of the layer.
    let server =
        ScriptedServer::start(vec![Reply::with_header(429, "retry-after", "1")], Reply::ok("ok"))
            .await?;
    let svc = ServiceBuilder::new().layer(RateLimitLayer::new()).service(hyper.clone());
    let first = svc.clone().oneshot(get(&server.url())?).await?;
    let second = svc.oneshot(get(&server.url())?).await?; // held until the pause ends
    println!("rate limit: {} then {}", first.status(), second.status());

    // Circuit breaker: a dead port opens it, and further calls fail fast.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let svc = ServiceBuilder::new().layer(CircuitBreakerLayer::standard()).service(hyper.clone());
    for _ in 0..6 {
        let _ = svc.clone().oneshot(get(&format!("http://{dead}/"))?).await;
    }
    match svc.oneshot(get(&format!("http://{dead}/"))?).await {
        Err(err) if err.is::<unattended::BreakerOpen>() => println!("breaker: {err}"),
        other => println!("breaker: {:?}", other.map(|r| r.status())),
    }

    // Gate: writes only in a window that is closed right now (reads pass).
    let server = ScriptedServer::start(vec![], Reply::ok("ok")).await?;
    let never =
        WindowCalendar::new("UTC", &["daily 00:00-24:00"], &["2000-01-01T00:00/2100-01-01T00:00"])?;
    let svc = ServiceBuilder::new()
        .layer(GateLayer::new().class("write", never, WhenClosed::Reject))
        .service(hyper.clone());
    let post = Request::post(server.url()).body(Full::new(Bytes::from_static(b"{}")))?;
    match svc.oneshot(post).await {
        Err(err) => println!("gate: {err}"),
        Ok(res) => println!("gate: let through with {}", res.status()),
    }

    // Token: a bearer token on every request.
    let server = ScriptedServer::start(vec![], Reply::ok("ok")).await?;
    let cache =
        Arc::new(TokenCache::new(StaticToken::new("secret-key"), unattended::Clock::system()));
    let svc = ServiceBuilder::new().layer(TokenLayer::new(cache)).service(hyper);
    let res = svc.oneshot(get(&server.url())?).await?;
    println!("token: {}", res.status());
    Ok(())
}
