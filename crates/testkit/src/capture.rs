//! Capturing what `tracing` logs.
//!
//! tracing caches process-wide whether a callsite is enabled, so a scoped subscriber in one test
//! can race with other tests' threads: keep a test that asserts on logs alone in its test binary.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// The lines logged (plain text, no colours, no timestamps) while `f` ran on this thread.
pub fn logs_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    (value, buffer.lines())
}

/// A log sink for a scoped subscriber (for async tests, where [`logs_of`] does not fit):
/// `tracing::subscriber::set_default(Buffer::subscriber(&buffer))`.
#[derive(Clone, Debug, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// A plain-text subscriber writing into `buffer`.
    pub fn subscriber(buffer: &Self) -> impl tracing::Subscriber + Send + Sync + use<> {
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish()
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }
}

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
