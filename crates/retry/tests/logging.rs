//! The tracing events of the retry layer. Alone in its test binary: tracing caches whether a
//! callsite is enabled process-wide, so a scoped subscriber races with other tests' threads.

mod support;

use tower::{Layer, ServiceExt};
use unattended_retry::{Jitter, RetryConfig, RetryLayer};
use unattended_testkit::capture::Buffer;

use support::{Answer, Script, clock, get};

fn layer(config: RetryConfig) -> RetryLayer {
    RetryLayer::new(config).unwrap().clock(clock())
}

fn plain() -> RetryConfig {
    RetryConfig::standard().jitter(Jitter::None)
}

/// Retries are logged at WARN with attempt, delay, reason and key; the give-up at INFO.
#[tokio::test(start_paused = true)]
async fn retries_are_logged_with_attempt_delay_reason_and_key() {
    let buffer = Buffer::default();
    let _guard = tracing::subscriber::set_default(Buffer::subscriber(&buffer));

    let script = Script::new(clock(), vec![Answer::Status(503); 2]);
    let svc = layer(plain().max_attempts(2)).layer(script);
    let _ = svc.oneshot(get("https://a.example/")).await.unwrap_err();

    let lines = buffer.lines();
    let logged = lines.join(
        "
",
    );
    assert_eq!(lines.len(), 2, "{logged}");
    assert!(lines[0].trim_start().starts_with("WARN"), "{logged}");
    for field in [
        "retrying after a failed attempt",
        "key=\"https://a.example:443\"",
        "attempt=1",
        "delay=250ms",
        "reason=transient failure (HTTP 503)",
    ] {
        assert!(lines[0].contains(field), "missing {field} in {}", lines[0]);
    }
    assert!(
        lines[1].trim_start().starts_with("INFO") && lines[1].contains("gave up retrying"),
        "{logged}"
    );
    assert!(lines[1].contains("attempts=2"), "{logged}");
}
