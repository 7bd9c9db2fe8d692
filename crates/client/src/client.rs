//! The client: a config's stack, and the calls made through it.

use std::sync::Arc;

use bytes::Bytes;
use http::uri::{Parts, PathAndQuery};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use unattended_breaker::BreakerHandle;
use unattended_core::{Classifier, Clock, HttpClassifier, ServiceKey};
use unattended_ratelimit::PauseRegistry;
use unattended_token::TokenCache;

use crate::builder::ClientBuilder;
use crate::config::ServiceConfig;
use crate::error::Error;
use crate::stack::{AnySource, Body, RequestBody, SharedCache, ThreadStacks};

/// A resilient HTTP client for one service.
///
/// Each call passes, outermost first: trace → time-window gate → retry (with a budget and an
/// overall deadline) → the host's rate-limit pause → circuit breaker → token → attempt timeout →
/// redirects, decompression, `User-Agent` → the transport. Clones share breakers, pauses,
/// budget and token cache; two clients built separately keep theirs apart.
///
/// # Example
///
/// ```no_run
/// use unattended_client::{Client, ServiceConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ServiceConfig::from_toml(r#"base_url = "https://api.example.com""#)?;
/// let client = Client::builder(config).build()?;
/// let items: serde_json::Value = client.get_json("/v1/items").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    // One reference count per clone: tasks clone a client freely, and every count they share
    // is a cache line two cores fight over.
    shared: Arc<Shared>,
}

/// What the clones of a client share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stacks: ThreadStacks,
    pub(crate) base: Option<Uri>,
    pub(crate) clock: Clock,
    pub(crate) max_response_bytes: usize,
    pub(crate) pauses: PauseRegistry,
    pub(crate) breakers: Option<BreakerHandle>,
    pub(crate) token: Option<SharedCache>,
}

impl Client {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { shared: Arc::new(shared) }
    }

    /// A builder from `config`.
    pub fn builder(config: ServiceConfig) -> ClientBuilder {
        ClientBuilder::new(config)
    }

    /// Sends `req` through the stack. Relative URIs (a path) are joined to the base URL.
    ///
    /// Responses are returned whatever their status once the layers are done with them (a
    /// `404` is a response); failures the layers could not get past are an [`Error`].
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub async fn send(
        &self,
        req: Request<impl Into<RequestBody>>,
    ) -> Result<Response<Body>, Error> {
        let (mut parts, body) = req.into_parts();
        parts.uri = self.resolve(parts.uri)?;
        // Kept to name the service in an error; the key string is made only then.
        let uri = parts.uri.clone();
        let req = Request::from_parts(parts, body.into());
        self.shared
            .stacks
            .call(req)
            .await
            .map_err(|e| Error::from_stack(e, ServiceKey::from_uri(&uri), self.shared.clock.wall()))
    }

    /// `GET path`, its `2xx` JSON body read as a `T`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let req = Request::get(path).body(Full::default()).map_err(Error::request)?;
        self.json(req).await
    }

    /// `POST path` with `body` as JSON, the `2xx` JSON answer read as an `R`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn post_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::json(e, None))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(Error::request)?;
        self.json(req).await
    }

    /// Sends `req` and reads its `2xx` JSON answer as a `T`.
    ///
    /// # Errors
    ///
    /// See [`Error`]; a non-`2xx` status is an error too.
    pub async fn json<T: DeserializeOwned>(
        &self,
        req: Request<impl Into<RequestBody>>,
    ) -> Result<T, Error> {
        let uri = req.uri().clone();
        let res = self.send(req).await?;
        let bytes = self.read(res, &uri).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(e, ServiceKey::from_uri(&uri)))
    }

    /// Reads a `2xx` response's body, within the size limit (counted after decompression; the
    /// stack bounds every body).
    async fn read(&self, res: Response<Body>, uri: &Uri) -> Result<Bytes, Error> {
        let key = || ServiceKey::from_uri(uri);
        let status = res.status();
        if !status.is_success() {
            let class = HttpClassifier::new().classify_response(&res, &self.shared.clock).err();
            return Err(Error::from_status(status, class, key(), self.shared.clock.wall()));
        }
        match res.into_body().collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => {
                Err(Error::too_big(self.shared.max_response_bytes, key()))
            }
            Err(e) => Err(Error::body(e, key(), self.shared.clock.wall())),
        }
    }

    fn resolve(&self, uri: Uri) -> Result<Uri, Error> {
        if uri.scheme().is_some() {
            return Ok(uri);
        }
        let Some(base) = &self.shared.base else {
            return Err(Error::request(format!(
                "{uri} has no host and the client has no base URL"
            )));
        };
        let mut parts = Parts::from(base.clone());
        let prefix = base.path().trim_end_matches('/');
        parts.path_and_query = match uri.path_and_query() {
            // A base without a path and an absolute path: the path as it is, not parsed again.
            Some(tail) if prefix.is_empty() && tail.as_str().starts_with('/') => Some(tail.clone()),
            tail => {
                let tail = tail.map_or("/", PathAndQuery::as_str);
                let slash = if tail.starts_with('/') { "" } else { "/" };
                Some(format!("{prefix}{slash}{tail}").parse().map_err(Error::request)?)
            }
        };
        Uri::from_parts(parts).map_err(Error::request)
    }

    /// The base URL relative paths are joined to, if the config gives one.
    pub fn base_url(&self) -> Option<&Uri> {
        self.shared.base.as_ref()
    }

    /// The pauses and paces of this client's hosts (a handle: clones share them).
    pub fn pauses(&self) -> PauseRegistry {
        self.shared.pauses.clone()
    }

    /// The breakers of this client's hosts, if the breaker is on.
    pub fn breakers(&self) -> Option<&BreakerHandle> {
        self.shared.breakers.as_ref()
    }

    /// The token cache, if the client puts a credential on requests.
    pub fn token_cache(&self) -> Option<&Arc<TokenCache<AnySource>>> {
        self.shared.token.as_ref()
    }
}
