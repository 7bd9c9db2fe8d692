//! The tracing events of the retry layer. Alone in its test binary: tracing caches whether a
//! callsite is enabled process-wide, so a scoped subscriber races with other tests' threads.

mod support;

use std::io;
use std::sync::{Arc, Mutex};

use tower::{Layer, ServiceExt};
use unattended_retry::{Jitter, RetryConfig, RetryLayer};

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
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let script = Script::new(clock(), vec![Answer::Status(503); 2]);
    let svc = layer(plain().max_attempts(2)).layer(script);
    let _ = svc.oneshot(get("https://a.example/")).await.unwrap_err();

    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
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
