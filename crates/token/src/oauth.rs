//! OAuth2 grants (refresh token, client credentials) through any tower HTTP service.
//!
//! The authorization-code grant, which needs a human once, is in `code.rs`.

use std::error::Error as StdError;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse,
    RefreshToken, RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use tower_service::Service;
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock};

use crate::store::{CredentialStore, CredentialStoreError};
use crate::token::{AccessToken, FetchError, FetchFuture, TokenSource};

pub(crate) type Client = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The largest token endpoint answer read; real ones are well under 4 KiB.
const MAX_BODY: usize = 64 * 1024;

/// The registered application: who asks for tokens, and where.
#[derive(Clone)]
pub struct OAuth2Client {
    pub(crate) client: Client,
}

impl OAuth2Client {
    /// The client `client_id` with its secret, asking `token_url` (for Google,
    /// `https://oauth2.googleapis.com/token`). The credentials are sent in the request body, as
    /// Google expects; see [`basic_auth`](Self::basic_auth).
    ///
    /// # Errors
    ///
    /// `token_url` is not a valid URL.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        token_url: &str,
    ) -> Result<Self, oauth2::url::ParseError> {
        let client = oauth2::Client::new(ClientId::new(client_id.into()))
            .set_client_secret(ClientSecret::new(client_secret.into()))
            .set_token_uri(TokenUrl::new(token_url.to_owned())?)
            .set_auth_type(AuthType::RequestBody);
        Ok(Self { client })
    }

    /// Sends the client credentials in an `Authorization: Basic` header instead of the body.
    #[must_use]
    pub fn basic_auth(mut self) -> Self {
        self.client = self.client.set_auth_type(AuthType::BasicAuth);
        self
    }
}

impl fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Client")
            .field("client_id", &self.client.client_id().as_str())
            .field("token_url", &self.client.token_uri().as_str())
            .finish_non_exhaustive()
    }
}

enum Grant {
    RefreshToken,
    ClientCredentials(Vec<Scope>),
}

/// Access tokens from an OAuth2 token endpoint, fetched through a tower HTTP service.
///
/// The endpoint is called through `http`, any `Service<http::Request<B>>` whose body type can be
/// made from a `Vec<u8>`: a resilient client (so the token call itself gets retries and a
/// breaker), a plain hyper-util client, or an in-process fake in tests.
///
/// A token's `expires_in` may be an integer, a number with a fraction or a numeric string (some
/// providers send `"3600"`); a negative one means the token is already due (see
/// [`TokenCache`](crate::TokenCache) for what happens then).
///
/// Answers are read as RFC 6749 says: `invalid_grant`, `invalid_client`, `unauthorized_client`,
/// `invalid_request`, `invalid_scope` and `unsupported_grant_type` need a human
/// ([`FetchError::Revoked`]); anything else (a 5xx, a 429, an HTML error page, a broken
/// connection) is [`FetchError::Unavailable`], tried again later.
///
/// `ReqB` is the request body type of `http`, named here because a service may accept several.
pub struct OAuth2Source<T, ReqB = http_body_util::Full<Bytes>> {
    client: Client,
    grant: Grant,
    http: T,
    clock: Clock,
    refresh_token: Mutex<Option<SecretString>>,
    store: Option<Arc<dyn CredentialStore>>,
    /// A rotated refresh token the store could not save yet.
    unsaved: Mutex<bool>,
    body: PhantomData<fn(ReqB)>,
}

impl<T, ReqB> OAuth2Source<T, ReqB> {
    /// The refresh-token grant: trades `refresh_token` for access tokens.
    pub fn refresh_token(
        client: OAuth2Client,
        refresh_token: impl Into<String>,
        http: T,
        clock: Clock,
    ) -> Self {
        Self::new(client, Grant::RefreshToken, Some(refresh_token.into()), http, clock)
    }

    /// The client-credentials grant (a service acting for itself), asking for `scopes`.
    pub fn client_credentials(
        client: OAuth2Client,
        scopes: impl IntoIterator<Item = impl Into<String>>,
        http: T,
        clock: Clock,
    ) -> Self {
        let scopes = scopes.into_iter().map(|s| Scope::new(s.into())).collect();
        Self::new(client, Grant::ClientCredentials(scopes), None, http, clock)
    }

    fn new(
        client: OAuth2Client,
        grant: Grant,
        refresh_token: Option<String>,
        http: T,
        clock: Clock,
    ) -> Self {
        Self {
            client: client.client,
            grant,
            http,
            clock,
            refresh_token: Mutex::new(refresh_token.map(SecretString::from)),
            store: None,
            unsaved: Mutex::new(false),
            body: PhantomData,
        }
    }

    /// Keeps rotated refresh tokens in `store`, and starts from the token saved there, if any
    /// (it is newer than the one given at construction).
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub fn with_store(mut self, store: impl CredentialStore) -> Result<Self, CredentialStoreError> {
        if let Some(saved) = store.load()? {
            *self.refresh_token.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(saved);
        }
        self.store = Some(Arc::new(store));
        Ok(self)
    }

    /// Replaces the refresh token (after a human re-authorized), saving it to the store if there
    /// is one. Call [`TokenCache::reset_credentials`](crate::TokenCache::reset_credentials) too.
    ///
    /// # Errors
    ///
    /// The store could not save it; the new token is used anyway.
    pub fn set_refresh_token(&self, token: impl Into<String>) -> Result<(), CredentialStoreError> {
        let token = SecretString::from(token.into());
        *self.refresh_token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        match &self.store {
            Some(store) => store.save(&token),
            None => Ok(()),
        }
    }

    /// Saves a rotated refresh token, or remembers to try again on the next fetch. The new token
    /// is used either way: it is in memory, and the old one may no longer work.
    fn keep_rotated(&self, rotated: Option<&RefreshToken>) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rotated) = rotated {
            let token = SecretString::from(rotated.secret().clone());
            *self.refresh_token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
            *unsaved = true;
        }
        let Some(store) = &self.store else { return };
        if !*unsaved {
            return;
        }
        let token = self.refresh_token.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(token) = token else { return };
        match store.save(&token) {
            Ok(()) => *unsaved = false,
            Err(err) => tracing::error!(
                error = %err,
                "the rotated refresh token could not be saved; it is kept in memory and saving \
                 is tried again at the next refresh, but a restart before then needs a human \
                 to re-authorize"
            ),
        }
    }
}

impl<T, ReqB> fmt::Debug for OAuth2Source<T, ReqB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grant = match self.grant {
            Grant::RefreshToken => "refresh_token",
            Grant::ClientCredentials(_) => "client_credentials",
        };
        f.debug_struct("OAuth2Source")
            .field("client_id", &self.client.client_id().as_str())
            .field("grant", &grant)
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<T, ReqB, ResB> TokenSource for OAuth2Source<T, ReqB>
where
    T: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + Sync + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send,
    ReqB: From<Vec<u8>> + Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let http = |req: HttpRequest| call(self.http.clone(), req);
            let answer = match &self.grant {
                Grant::RefreshToken => {
                    let token =
                        self.refresh_token.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let Some(token) = token else {
                        return Err(FetchError::Revoked { reason: "no refresh token".into() });
                    };
                    let token = RefreshToken::new(token.expose_secret().to_owned());
                    self.client.exchange_refresh_token(&token).request_async(&http).await
                }
                Grant::ClientCredentials(scopes) => {
                    self.client
                        .exchange_client_credentials()
                        .add_scopes(scopes.iter().cloned())
                        .request_async(&http)
                        .await
                }
            };
            let answer: TokenAnswer = answer.map_err(fetch_error)?;
            self.keep_rotated(answer.refresh_token());
            let expires_at = answer.expires_in().map(|ttl| add_saturating(self.clock.wall(), ttl));
            Ok(AccessToken::new(answer.access_token().secret().clone(), expires_at))
        })
    }
}

/// A token endpoint's answer (RFC 6749 §5.1), read like `oauth2`'s standard one except for
/// `expires_in`, which some providers send as a string or with a fraction.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct TokenAnswer {
    access_token: oauth2::AccessToken,
    #[serde(deserialize_with = "oauth2::helpers::deserialize_untagged_enum_case_insensitive")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lifetime", skip_serializing_if = "Option::is_none")]
    expires_in: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope", default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "oauth2::helpers::deserialize_space_delimited_vec")]
    #[serde(serialize_with = "oauth2::helpers::serialize_space_delimited_vec")]
    scopes: Option<Vec<Scope>>,
}

impl TokenResponse for TokenAnswer {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// `expires_in` as seconds: a number (with or without a fraction) or a numeric string; negative
/// is zero (due now), beyond `Duration` saturates, anything else (`NaN`, `"soon"`) is refused.
fn lifetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(f64),
        Text(String),
    }
    let seconds = match Option::<Seconds>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(Seconds::Number(n)) => n,
        Some(Seconds::Text(text)) => {
            text.trim().parse::<f64>().map_err(serde::de::Error::custom)?
        }
    };
    if seconds.is_nan() || seconds == f64::NEG_INFINITY {
        return Err(serde::de::Error::custom("expires_in is not a number of seconds"));
    }
    Ok(Some(Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)))
}

/// One call of the token endpoint through `http`, its answer read into memory (bounded).
pub(crate) async fn call<T, ReqB, ResB>(
    mut http: T,
    req: HttpRequest,
) -> Result<HttpResponse, EndpointError>
where
    T: Service<Request<ReqB>, Response = Response<ResB>>,
    T::Error: Into<BoxError>,
    ReqB: From<Vec<u8>>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| http.poll_ready(cx)).await.map_err(EndpointError::new)?;
    let res = http.call(req.map(ReqB::from)).await.map_err(EndpointError::new)?;
    let (parts, body) = res.into_parts();
    let body: Bytes =
        Limited::new(body, MAX_BODY).collect().await.map_err(EndpointError)?.to_bytes();
    Ok(Response::from_parts(parts, body.to_vec()))
}

/// The token endpoint could not be reached, or its answer not read.
#[derive(Debug)]
pub(crate) struct EndpointError(BoxError);

impl EndpointError {
    fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the token endpoint could not be reached or read")
    }
}

impl StdError for EndpointError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// A token endpoint's answer said no.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct EndpointRefused(pub(crate) String);

fn fetch_error(
    error: RequestTokenError<EndpointError, oauth2::basic::BasicErrorResponse>,
) -> FetchError {
    use BasicErrorResponseType::*;
    match error {
        RequestTokenError::ServerResponse(answer) => match answer.error() {
            code @ (InvalidGrant | InvalidClient | UnauthorizedClient | InvalidRequest
            | InvalidScope | UnsupportedGrantType) => {
                FetchError::Revoked { reason: code.to_string() }
            }
            Extension(code) => FetchError::Unavailable(
                EndpointRefused(format!("the token endpoint said {code}")).into(),
            ),
        },
        RequestTokenError::Request(err) => FetchError::Unavailable(err.into()),
        // The body is not repeated: it may hold a token.
        RequestTokenError::Parse(..) => FetchError::Unavailable(
            EndpointRefused("the token endpoint's answer is not a token response".into()).into(),
        ),
        RequestTokenError::Other(what) => FetchError::Unavailable(EndpointRefused(what).into()),
    }
}
