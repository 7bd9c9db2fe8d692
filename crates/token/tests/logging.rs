//! What the cache logs never contains a secret. Alone in its test binary: tracing caches whether
//! a callsite is enabled process-wide.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use unattended_core::Clock;
use unattended_testkit::capture::Buffer;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth, TokenEndpoint};
use unattended_token::{
    AccessToken, FetchError, FetchFuture, FileCredentialStore, OAuth2Client, OAuth2Source,
    TokenCache, TokenLayer, TokenSource,
};

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

    // The OAuth2 source and the layer: a rotated token that cannot be saved, a refused token,
    // a refusal that is final, a revoked grant.
    let mock = GoogleOAuth::new(clock);
    mock.rotate_refresh_tokens(true);
    let client =
        OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.googleapis.com/token").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::new(dir.path().join("no-such-dir").join("token"));
    let source: OAuth2Source<TokenEndpoint, Full<Bytes>> =
        OAuth2Source::refresh_token(client, mock.grant(), mock.token_endpoint(), clock)
            .with_store(store)
            .unwrap();
    let cache = Arc::new(TokenCache::new(source, clock));
    let mut errors = Vec::new();
    let get = || Request::get("https://api.example/").body(Full::<Bytes>::default()).unwrap();
    let svc = TokenLayer::new(cache.clone()).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    mock.invalidate_access_tokens();
    svc.clone().oneshot(get()).await.unwrap();
    errors.push(format!("{cache:?} {:?}", TokenLayer::new(cache.clone())));
    let refusing = TokenLayer::new(cache.clone()).layer(tower::service_fn(|_: Request<_>| async {
        let mut res = Response::new(Full::<Bytes>::default());
        *res.status_mut() = http::StatusCode::UNAUTHORIZED;
        Ok::<_, Infallible>(res)
    }));
    let err = refusing.oneshot(get()).await.unwrap_err();
    errors.push(format!("{err} {err:?}"));
    mock.revoke_all();
    clock.sleep(Duration::from_secs(3600)).await;
    let err = svc.clone().oneshot(get()).await.unwrap_err();
    errors.push(format!("{err} {err:?}"));

    let lines = buffer.lines();
    assert!(lines.iter().any(|l| l.contains("could not be saved")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("refused the access token")), "{lines:?}");
    for text in lines.iter().chain(&errors) {
        for secret in ["ya29.", "1//refresh-", CLIENT_SECRET] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("token refresh failed")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("re-authorize")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("secret-value")), "{lines:?}");
}
