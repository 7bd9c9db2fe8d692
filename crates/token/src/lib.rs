//! Access tokens that are refreshed before they expire.
//!
//! [`TokenCache`] keeps a valid token from a [`TokenSource`] for every caller: it refreshes a
//! token a little before it expires (`min(5 min, 10% of its lifetime)`, with jitter), runs one
//! refresh at a time however many callers need a token, keeps serving the old token while a
//! refresh fails and spaces the retries, and turns a revoked grant (OAuth2 `invalid_grant`) into
//! [`TokenError::Reauthorize`] without asking again. Secrets never appear in `Debug` output,
//! errors or logs.
//!
//! ```
//! use unattended_core::Clock;
//! use unattended_token::{StaticToken, TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), unattended_token::TokenError> {
//! let cache = TokenCache::new(StaticToken::new("api-key-123"), Clock::system());
//! let token = cache.get().await?;
//! assert_eq!(token.secret(), "api-key-123");
//! assert!(!format!("{token:?}").contains("api-key-123"));
//! # Ok(())
//! # }
//! ```

mod cache;
mod token;

pub use self::cache::{CacheConfig, TokenCache};
pub use self::token::{AccessToken, FetchError, FetchFuture, StaticToken, TokenSource};
pub use unattended_core::TokenError;
