//! What the cache logs never contains a secret. Alone in its test binary: tracing caches whether
//! a callsite is enabled process-wide.

use std::time::Duration;

use unattended_core::Clock;
use unattended_testkit::capture::Buffer;
use unattended_token::{AccessToken, FetchError, FetchFuture, TokenCache, TokenSource};

struct Flaky;

impl TokenSource for Flaky {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async { Err(FetchError::Unavailable("connection refused".into())) })
    }
}

struct Once(std::sync::atomic::AtomicBool);

impl TokenSource for Once {
    fn fetch(&self) -> FetchFuture<'_> {
        let first = !self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if first {
                Ok(AccessToken::new(
                    "ya29.secret-value",
                    Some("2026-11-28T10:01:00Z".parse().unwrap()),
                ))
            } else {
                Err(FetchError::Revoked { reason: "invalid_grant".into() })
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn logs_hold_no_secret() {
    let buffer = Buffer::default();
    let _guard = tracing::subscriber::set_default(Buffer::subscriber(&buffer));
    let clock = Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap());
    let _ = TokenCache::new(Flaky, clock).get().await;
    let cache = TokenCache::new(Once(Default::default()), clock);
    let token = cache.get().await.unwrap();
    let _ = format!("{token:?}");
    clock.sleep(Duration::from_secs(59)).await;
    let _ = cache.get().await;
    let lines = buffer.lines();
    assert!(lines.iter().any(|l| l.contains("token refresh failed")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("re-authorize")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("secret-value")), "{lines:?}");
}
