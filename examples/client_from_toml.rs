//! The assembled client, configured from TOML, against a local server that answers 503, then
//! 429 with `Retry-After: 1`, then hangs, then gives JSON.
//!
//! `cargo run --release --example client_from_toml [service.toml]` (without a file, the
//! config below is used, pointed at the local server).

use unattended::client::ServiceConfig;
use unattended::{BoxError, Client, Clock, HasDisposition};
use unattended_testkit::socket::{Reply, ScriptedServer};

const CONFIG: &str = r#"
user_agent = "nightly-jobs/1.0"

[timeouts]
attempt = "2s"
overall = "30s"

[retry]
max_attempts = 5
base_delay = "100ms"

[gate.write]                 # writes only on weekdays, business hours, New York time
tz = "America/New_York"
open = ["mon-fri 09:00-22:00"]
"#;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let script = vec![Reply::status(503), Reply::with_header(429, "retry-after", "1"), Reply::Hang];
    let server = ScriptedServer::start(script, Reply::ok(r#"{"items":[1,2,3]}"#)).await?;
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(path)?,
        None => format!("base_url = \"{}\"\n{CONFIG}", server.url()),
    };
    let config = ServiceConfig::from_toml(&text)?;
    let client = Client::builder(config).build()?;

    let clock = Clock::system();
    let start = clock.now();
    match client.get_json::<serde_json::Value>("/v1/items").await {
        Ok(items) => println!("{items} after {:?}", clock.now() - start),
        Err(err) => println!("failed: {err}\nthe runner would: {}", err.disposition()),
    }
    match client.post_json::<_, serde_json::Value>("/v1/items", &[4]).await {
        Ok(answer) => println!("posted: {answer}"),
        Err(err) if err.is_outside_window() => println!("not now: {}", err.disposition()),
        Err(err) => println!("failed: {err}"),
    }
    Ok(())
}
