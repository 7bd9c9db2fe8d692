//! The token layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::cache::TokenCache;
use crate::placement::Placement;
use crate::service::{Shared, TokenService};

/// Puts a valid token on every request, and deals with the server refusing it.
///
/// Tokens come from a shared [`TokenCache`], so they are refreshed before they expire, one
/// refresh at a time. When the server answers `401`:
///
/// - the token is dropped from the cache, and the request is sent once more with a new one
///   (if its body can be copied: a buffered body, see
///   [`ReplayBody`](unattended_core::ReplayBody)); a streaming body gives
///   [`TokenError::NotReplayed`](crate::TokenError::NotReplayed) instead;
/// - if a token fetched because of a refusal is refused too, the credentials themselves are
///   refused: [`TokenError::Reauthorize`](crate::TokenError::Reauthorize), with no further fetch
///   or request.
///
/// Inside a retry layer, use [`replay_refused(false)`](Self::replay_refused): the layer then
/// keeps no copy of each request, marks the `401` with
/// [`CredentialRenewed`](unattended_core::CredentialRenewed), and the retry layer sends its own
/// copy once more, at once.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt};
/// use unattended_core::Clock;
/// use unattended_token::{Placement, StaticToken, TokenCache, TokenLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let cache = Arc::new(TokenCache::new(StaticToken::new("key-123"), Clock::system()));
/// let api = tower::service_fn(|req: Request<String>| async move {
///     let seen = req.headers()["api-key"].to_str().unwrap().to_owned();
///     Ok::<_, std::convert::Infallible>(Response::new(seen))
/// });
/// let svc = ServiceBuilder::new()
///     .layer(TokenLayer::new(cache).placement(Placement::header("api-key".parse()?)))
///     .service(api);
/// let res = svc.oneshot(Request::new(String::new())).await?;
/// assert_eq!(res.body(), "key-123");
/// # Ok(())
/// # }
/// ```
pub struct TokenLayer<S> {
    cache: Arc<TokenCache<S>>,
    placement: Placement,
    replay: bool,
}

impl<S> TokenLayer<S> {
    /// A layer taking tokens from `cache`, as `Authorization: Bearer`, replaying refused requests
    /// itself.
    pub fn new(cache: Arc<TokenCache<S>>) -> Self {
        Self { cache, placement: Placement::Bearer, replay: true }
    }

    /// Where the token goes on each request.
    #[must_use]
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Whether this layer sends a refused request again itself (the default), which costs a
    /// copy of each request. Turn it off when a retry layer sits outside: it already holds a
    /// copy, and sends it once more when this layer marks the `401` as renewed.
    #[must_use]
    pub fn replay_refused(mut self, replay: bool) -> Self {
        self.replay = replay;
        self
    }

    /// The cache the layer takes tokens from.
    pub fn cache(&self) -> &Arc<TokenCache<S>> {
        &self.cache
    }
}

impl<S> Clone for TokenLayer<S> {
    fn clone(&self) -> Self {
        Self { cache: self.cache.clone(), placement: self.placement.clone(), replay: self.replay }
    }
}

impl<S> fmt::Debug for TokenLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLayer")
            .field("placement", &self.placement)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl<S, Inner> Layer<Inner> for TokenLayer<S> {
    type Service = TokenService<S, Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        let shared = Shared {
            cache: self.cache.clone(),
            placement: self.placement.clone(),
            replay: self.replay,
        };
        TokenService::new(inner, Arc::new(shared))
    }
}
