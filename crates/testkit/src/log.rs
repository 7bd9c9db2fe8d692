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
    /// The headers the protocols turn on (`content-range`, `if-none-match`,
    /// `if-modified-since`, `idempotency-key`, `x-upload-content-length`, `user-agent`); credentials
    /// (`authorization`, `api-key`) only as `[present]`.
    pub headers: Vec<(&'static str, String)>,
    /// The status answered (`None` when the fault gave no answer).
    pub status: Option<StatusCode>,
    /// The fault that answered, if one did.
    pub fault: Option<&'static str>,
}

/// The headers recorded, in order; the credentials among them only as present.
const RECORDED: [(&str, bool); 8] = [
    ("authorization", true),
    ("api-key", true),
    ("content-range", false),
    ("if-none-match", false),
    ("if-modified-since", false),
    ("idempotency-key", false),
    ("x-upload-content-length", false),
    ("user-agent", false),
];

impl Recorded {
    /// The record of a request with `parts` and a body of `body_len` bytes, arrived `at`,
    /// answered by `fault` if one fired (its status is set once known).
    pub(crate) fn new(
        at: Instant,
        parts: &http::request::Parts,
        body_len: usize,
        fault: Option<&crate::fault::Fault>,
    ) -> Self {
        let headers = RECORDED
            .iter()
            .filter_map(|(name, secret)| {
                let value = parts.headers.get(*name)?;
                let shown =
                    if *secret { "[present]".to_owned() } else { value.to_str().ok()?.to_owned() };
                Some((*name, shown))
            })
            .collect();
        Self {
            at,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            body_len,
            headers,
            status: None,
            fault: fault.map(crate::fault::Fault::name),
        }
    }
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

    /// The value of the recorded header `name`, if the request had it.
    pub fn header(entry: &Recorded, name: &str) -> Option<String> {
        entry.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }

    /// Requests a fault answered.
    pub fn faulted(&self) -> Vec<Recorded> {
        self.all().into_iter().filter(|r| r.fault.is_some()).collect()
    }
}
