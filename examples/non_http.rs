//! The circuit breaker and retry layers around a service that is not HTTP: a flaky key-value
//! store client. A classifier says which outcomes are failures; requests replay by `Clone`.
//!
//! `cargo run --release --example non_http`

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt, service_fn};
use unattended::breaker::{BreakerConfig, FailurePolicy};
use unattended::core::{Classifier, Clock, FailureClass, TransientCause};
use unattended::retry::CloneReplay;
use unattended::{BoxError, CircuitBreakerLayer, RetryConfig, RetryLayer};

/// A lookup's answer: a value, or "the store is busy, try again".
#[derive(Debug)]
enum Answer {
    Value(String),
    Busy,
}

/// `Busy` is a transient failure; everything else is fine.
#[derive(Clone, Copy, Debug)]
struct BusyIsTransient;

impl Classifier<Answer> for BusyIsTransient {
    fn classify_response(&self, answer: &Answer, _: &Clock) -> Result<(), FailureClass> {
        match answer {
            Answer::Busy => Err(FailureClass::Transient(TransientCause::Other)),
            Answer::Value(_) => Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The store is busy for the first two calls of every three.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let store = service_fn(move |key: String| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok::<_, BoxError>(if n % 3 == 2 {
                Answer::Value(format!("{key}=42"))
            } else {
                Answer::Busy
            })
        }
    });
    let retry = RetryLayer::new(RetryConfig::standard().backoff(
        Duration::from_millis(20),
        2.0,
        Duration::from_millis(200),
    ))?
    .classifier(BusyIsTransient)
    .replay(CloneReplay::keyed("kv-store"));
    let breaker =
        CircuitBreakerLayer::new(BreakerConfig::standard().policy(FailurePolicy::consecutive(5)))?
            .classifier(BusyIsTransient)
            .key(|_: &String| Some(unattended::ServiceKey::new("kv-store")));
    let client = ServiceBuilder::new().layer(retry).layer(breaker).service(store);

    for key in ["a", "b"] {
        match client.clone().oneshot(key.to_owned()).await? {
            Answer::Value(value) => println!("{key}: {value}"),
            Answer::Busy => println!("{key}: still busy after the retries"),
        }
    }
    println!("{} calls to the store", calls.load(Ordering::SeqCst));
    Ok(())
}
