//! What a mock received, for assertions.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

/// One request, as the mock saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// When it arrived, on the mock's clock.
    pub at: Instant,
    /// Its method.
    pub method: Method,
    /// Its path.
    pub path: String,
    /// Its query, if any.
    pub query: Option<String>,
    /// Its body's length.
    pub body_len: usize,
    /// The status answered (`None` when the fault gave no answer).
    pub status: Option<StatusCode>,
    /// The fault that answered, if one did.
    pub fault: Option<&'static str>,
}

/// Every request a mock received, in order. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<Recorded>>>,
}

impl RequestLog {
    pub(crate) fn push(&self, entry: Recorded) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
    }

    /// All requests so far.
    pub fn all(&self) -> Vec<Recorded> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Requests of `method` whose path starts with `prefix`.
    pub fn to(&self, method: &Method, prefix: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| r.method == *method && r.path.starts_with(prefix))
            .collect()
    }

    /// How many requests of `method` to `prefix`.
    pub fn count(&self, method: &Method, prefix: &str) -> usize {
        self.to(method, prefix).len()
    }

    /// The gaps between consecutive requests of `method` to `prefix`.
    pub fn gaps(&self, method: &Method, prefix: &str) -> Vec<Duration> {
        self.to(method, prefix).windows(2).map(|w| w[1].at - w[0].at).collect()
    }

    /// Requests a fault answered.
    pub fn faulted(&self) -> Vec<Recorded> {
        self.all().into_iter().filter(|r| r.fault.is_some()).collect()
    }
}
