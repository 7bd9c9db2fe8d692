//! A reqwest codebase gets the same policies: `ResilienceMiddleware` in a
//! `reqwest-middleware` chain, against a local server that answers 503, then 429 with
//! `Retry-After: 1`, then hangs, then gives JSON.
//!
//! `cargo run --release --example reqwest_middleware`

use unattended::client::{ResilienceMiddleware, ServiceConfig};
use unattended::{BoxError, Clock};
use unattended_testkit::socket::{Reply, ScriptedServer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let script = vec![Reply::status(503), Reply::with_header(429, "retry-after", "1"), Reply::Hang];
    let server = ScriptedServer::start(script, Reply::ok(r#"{"items":[1,2,3]}"#)).await?;
    let config = ServiceConfig::from_toml(
        "[timeouts]\nattempt = \"2s\"\n[retry]\nmax_attempts = 5\nbase_delay = \"100ms\"",
    )?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ResilienceMiddleware::from_config(&config)?)
        .build();
    let clock = Clock::system();
    let start = clock.now();
    let res = client.get(format!("{}/v1/items", server.url())).send().await?;
    println!("{} {} after {:?}", res.status(), res.text().await?, clock.now() - start);
    Ok(())
}
