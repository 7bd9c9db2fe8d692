//! Access tokens refreshed before they expire, put on every request, renewed when refused.
//!
//! - [`TokenCache`] keeps a valid token from a [`TokenSource`] for every caller: it refreshes a
//!   token a little before it expires (`min(5 min, 10% of its lifetime)`, less up to a fifth at
//!   random), runs one refresh at a time however many callers need a token, keeps serving the old
//!   token while a refresh fails and spaces the retries (30 s), and turns a revoked grant (OAuth2
//!   `invalid_grant`) into [`TokenError::Reauthorize`] without asking again. A token already
//!   due when it arrives (`expires_in: 0`) is used until the next refresh, one retry spacing
//!   later, so such a source is asked once per spacing, not once per call.
//!   [`spawn_refresher`](TokenCache::spawn_refresher) refreshes in the background, so callers
//!   never wait for a fetch.
//! - [`TokenLayer`] puts the token on each request ([`Placement`]: `Authorization: Bearer`, an
//!   API-key header, or a query parameter). On a `401` it drops the token and sends the request
//!   once more with a new one; if that token is refused too, the credentials need a human
//!   ([`TokenError::Reauthorize`]). Inside a retry layer it leaves the replay to that layer.
//! - [`OAuth2Source`] fetches tokens with the refresh-token or client-credentials grant (the
//!   `oauth2` crate) through any tower HTTP service (an `expires_in` sent as a string or with a
//!   fraction is read too), and saves rotated refresh tokens in a
//!   [`CredentialStore`] ([`FileCredentialStore`]: atomic replace, mode `0600`).
//! - [`OAuth2Client::authorize`] and [`OAuth2Client::exchange_code`] are the authorization-code
//!   grant with PKCE (`S256`) and a checked `state`, by which a human consents once and the
//!   refresh token those grants live on is first obtained ([`Authorization`], [`Granted`]).
//! - [`StaticToken`] is an API key or a long-lived token.
//!
//! Secrets never appear in `Debug` output, errors or logs; header values are marked sensitive.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt};
//! use unattended_core::Clock;
//! use unattended_token::{StaticToken, TokenCache, TokenLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let cache = Arc::new(TokenCache::new(StaticToken::new("api-key-123"), Clock::system()));
//! let api = tower::service_fn(|req: Request<String>| async move {
//!     let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
//!     Ok::<_, std::convert::Infallible>(Response::new(auth))
//! });
//! let res = TokenLayer::new(cache.clone()).layer(api).oneshot(Request::new(String::new())).await?;
//! assert_eq!(res.body(), "Bearer api-key-123");
//! assert!(!format!("{:?}", cache.get().await?).contains("api-key-123"));
//! # Ok(())
//! # }
//! ```
//!
//! With Google's token endpoint (any tower HTTP client can carry the token request):
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # use unattended_core::Clock;
//! use unattended_token::{FileCredentialStore, OAuth2Client, OAuth2Source, TokenCache};
//!
//! # fn demo<C>(http_client: C) -> Result<(), Box<dyn std::error::Error>>
//! # where C: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>
//! #     + Clone + Send + Sync + 'static, C::Error: Into<unattended_core::BoxError>, C::Future: Send {
//! let client = OAuth2Client::new("id.apps.googleusercontent.com", "secret",
//!     "https://oauth2.googleapis.com/token")?;
//! let source: OAuth2Source<C, Full<Bytes>> =
//!     OAuth2Source::refresh_token(client, "1//refresh-token", http_client, Clock::system())
//!         .with_store(FileCredentialStore::new("/var/lib/jobs/youtube.refresh"))?;
//! let cache = Arc::new(TokenCache::new(source, Clock::system()));
//! # Ok(()) }
//! ```

mod cache;
mod code;
mod future;
mod layer;
mod oauth;
mod placement;
mod service;
mod store;
mod token;

pub use self::cache::{BackgroundRefresh, CacheConfig, CachedToken, TokenCache};
pub use self::code::{Authorization, ExchangeError, Granted};
pub use self::future::ResponseFuture;
pub use self::layer::TokenLayer;
pub use self::oauth::{OAuth2Client, OAuth2Source};
pub use self::placement::Placement;
pub use self::service::TokenService;
pub use self::store::{CredentialStore, CredentialStoreError, FileCredentialStore};
pub use self::token::{AccessToken, FetchError, FetchFuture, StaticToken, TokenSource};
pub use unattended_core::TokenError;
