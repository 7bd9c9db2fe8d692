//! The WARN events of header parsing. Alone in its test binary: tracing caches whether a
//! callsite is enabled process-wide, so a scoped subscriber races with other tests' threads.

use http::{HeaderMap, HeaderValue};
use unattended_core::HeaderLimits;
use unattended_core::headers::server_wait;

/// Capping and ignoring are logged at WARN, so an operator can see a misbehaving server.
#[test]
fn implausible_and_malformed_values_are_logged() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
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
    let wait = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static(value));
        server_wait(&headers, "2026-11-28T10:00:00Z".parse().unwrap(), HeaderLimits::default())
    };
    tracing::subscriber::with_default(subscriber, || {
        wait("315360000");
        wait("tomorrow-ish");
        wait("30");
    });
    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = logged.lines().collect();
    assert_eq!(lines.len(), 2, "{logged}");
    assert!(lines[0].contains("WARN") && lines[0].contains("capping"), "{logged}");
    assert!(lines[1].contains("WARN") && lines[1].contains("malformed Retry-After"), "{logged}");
}
