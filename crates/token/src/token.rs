//! Access tokens and where they come from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use unattended_core::BoxError;

/// A bearer credential and, if known, when it stops working.
///
/// The secret never appears in `Debug` output, errors or logs; [`secret`](Self::secret) is the
/// one way to read it, for the code that puts it on a request.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Timestamp>,
}

impl AccessToken {
    /// A token that works until `expires_at` (`None`: until refused).
    pub fn new(secret: impl Into<String>, expires_at: Option<Timestamp>) -> Self {
        Self { secret: SecretString::from(secret.into()), expires_at }
    }

    /// The secret, to put on a request.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// When the token stops working, if known.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The credentials behind the token were refused for good (OAuth2 `invalid_grant`: the refresh
    /// token was revoked or expired). Retrying cannot help; a human must re-authorize.
    #[error("the credentials were refused ({reason}); re-authorize")]
    Revoked {
        /// What the server said, without any secret (for example `invalid_grant`).
        reason: String,
    },
    /// The token endpoint could not answer now (down, slow, rate limited).
    #[error("the token endpoint is unavailable")]
    Unavailable(#[source] BoxError),
}

/// The future of [`TokenSource::fetch`].
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, FetchError>> + Send + 'a>>;

/// Fetches a fresh access token: a static key, an OAuth2 grant, a cloud metadata endpoint.
///
/// [`TokenCache`](crate::TokenCache) calls it only when a token is needed and the cached one is
/// about to expire, and never twice at once.
pub trait TokenSource: Send + Sync + 'static {
    /// A fresh token.
    fn fetch(&self) -> FetchFuture<'_>;
}

impl<T: TokenSource + ?Sized> TokenSource for Box<T> {
    fn fetch(&self) -> FetchFuture<'_> {
        (**self).fetch()
    }
}

impl<T: TokenSource + ?Sized> TokenSource for std::sync::Arc<T> {
    fn fetch(&self) -> FetchFuture<'_> {
        (**self).fetch()
    }
}

/// A token that never changes: an API key or a long-lived bearer token.
#[derive(Clone, Debug)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// The source that always gives `secret`, with no expiry.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(AccessToken::new(secret, None))
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> FetchFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}
