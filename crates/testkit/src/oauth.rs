//! A Google OAuth 2.0 token endpoint, and an API that accepts only the tokens it issued.
//!
//! Facts followed (Google's token endpoint, refresh grant): `POST /token` with a form body;
//! `200 {"access_token", "expires_in": 3599, "scope", "token_type": "Bearer"}`, with no new
//! `refresh_token` unless rotation is on; a revoked or unknown refresh token gets
//! `400 {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`;
//! a wrong client gets `401 {"error": "invalid_client"}`; an unknown grant type gets
//! `400 {"error": "unsupported_grant_type"}`. The client-credentials grant is accepted too. The API answers a missing, unknown or
//! expired token with `401`, `WWW-Authenticate: Bearer realm="https://accounts.google.com/",
//! error="invalid_token"` and Google's `UNAUTHENTICATED` body.
//!
//! Issued tokens expire on the [`Clock`], so a paused test controls them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower_service::Service;
use unattended_core::{BoxError, Clock};

use crate::body::MockBody;
use crate::fault::{Fault, generic_response};

/// The body of Google's 401 for a bad access token.
pub const UNAUTHENTICATED_BODY: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}"#;

/// The client id the endpoint accepts.
pub const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
/// The client secret the endpoint accepts.
pub const CLIENT_SECRET: &str = "test-client-secret";

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// The access token it carried (API) or the grant type (token endpoint).
    pub credential: Option<String>,
    /// The status answered (`None` when a fault gave no answer).
    pub status: Option<StatusCode>,
    /// Whether an injected fault answered it.
    pub fault: bool,
}

#[derive(Debug)]
struct State {
    client: (String, String),
    refresh_tokens: HashSet<String>,
    access_tokens: HashMap<String, Instant>,
    lifetime: Duration,
    latency: Duration,
    rotate: bool,
    issued: u64,
    faults: VecDeque<Fault>,
    fail_while: Option<Fault>,
    token_calls: Vec<Seen>,
    api_calls: Vec<Seen>,
}

/// The mock: a token endpoint ([`token_endpoint`](Self::token_endpoint)) and an API
/// ([`api`](Self::api)) sharing one state. Clones share it too.
#[derive(Clone, Debug)]
pub struct GoogleOAuth {
    state: Arc<Mutex<State>>,
    clock: Clock,
}

impl GoogleOAuth {
    /// A mock issuing one-hour tokens (`expires_in: 3599`), answering at once.
    pub fn new(clock: Clock) -> Self {
        let state = State {
            client: (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()),
            refresh_tokens: HashSet::new(),
            access_tokens: HashMap::new(),
            lifetime: Duration::from_secs(3599),
            latency: Duration::ZERO,
            rotate: false,
            issued: 0,
            faults: VecDeque::new(),
            fail_while: None,
            token_calls: Vec::new(),
            api_calls: Vec::new(),
        };
        Self { state: Arc::new(Mutex::new(state)), clock }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts the client `id` and `secret` instead of [`CLIENT_ID`] and [`CLIENT_SECRET`] (for
    /// a program that reads its client from environment variables a test cannot set).
    pub fn accept_client(&self, id: &str, secret: &str) -> &Self {
        self.state().client = (id.to_owned(), secret.to_owned());
        self
    }

    /// A new valid refresh token, as a user's consent gives.
    pub fn grant(&self) -> String {
        let mut state = self.state();
        state.issued += 1;
        let token = format!("1//refresh-{}", state.issued);
        state.refresh_tokens.insert(token.clone());
        token
    }

    /// Sets the lifetime of the access tokens issued from now on.
    pub fn token_lifetime(&self, lifetime: Duration) -> &Self {
        self.state().lifetime = lifetime;
        self
    }

    /// Makes each token answer take `latency` on the clock.
    pub fn latency(&self, latency: Duration) -> &Self {
        self.state().latency = latency;
        self
    }

    /// Turns refresh-token rotation on: each refresh returns a new refresh token and retires the
    /// old one.
    pub fn rotate_refresh_tokens(&self, rotate: bool) -> &Self {
        self.state().rotate = rotate;
        self
    }

    /// Revokes every refresh token (the user removed the app's access).
    pub fn revoke_all(&self) {
        self.state().refresh_tokens.clear();
    }

    /// Invalidates every access token on the server's side, before its expiry.
    pub fn invalidate_access_tokens(&self) {
        self.state().access_tokens.clear();
    }

    /// Answers the next token requests with `faults`, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Answers every token request with `fault` until called with `None`.
    pub fn fail_while(&self, fault: Option<Fault>) {
        self.state().fail_while = fault;
    }

    /// The token endpoint's requests so far.
    pub fn token_calls(&self) -> Vec<Seen> {
        self.state().token_calls.clone()
    }

    /// The API's requests so far.
    pub fn api_calls(&self) -> Vec<Seen> {
        self.state().api_calls.clone()
    }

    /// Whether `access_token` is one this mock issued and it has not expired (for other API
    /// mocks that check tokens, such as YouTube's).
    pub fn accepts(&self, access_token: &str) -> bool {
        let now = self.clock.now();
        self.state().access_tokens.get(access_token).is_some_and(|expires| now < *expires)
    }

    /// The token endpoint, a `Service<Request<B>>` answering `POST` form bodies.
    pub fn token_endpoint(&self) -> TokenEndpoint {
        TokenEndpoint { mock: self.clone() }
    }

    /// The API, a `Service<Request<B>>` answering `200 {"ok":true}` to a valid bearer token.
    pub fn api(&self) -> Api {
        Api { mock: self.clone() }
    }

    fn answer_token(&self, form: &HashMap<String, String>) -> (Response<MockBody>, Seen) {
        let at = self.clock.now();
        let mut state = self.state();
        let grant = form.get("grant_type").cloned();
        let seen =
            |status, fault| Seen { at, credential: grant.clone(), status: Some(status), fault };
        if form.get("client_id") != Some(&state.client.0)
            || form.get("client_secret") != Some(&state.client.1)
        {
            let body = r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#;
            return (json(StatusCode::UNAUTHORIZED, body), seen(StatusCode::UNAUTHORIZED, false));
        }
        let refresh = form.get("refresh_token");
        let valid = match grant.as_deref() {
            Some("refresh_token") => refresh.is_some_and(|r| state.refresh_tokens.contains(r)),
            Some("client_credentials") => true,
            _ => {
                let body = r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type."}"#;
                return (json(StatusCode::BAD_REQUEST, body), seen(StatusCode::BAD_REQUEST, false));
            }
        };
        if !valid {
            let body = r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
            return (json(StatusCode::BAD_REQUEST, body), seen(StatusCode::BAD_REQUEST, false));
        }
        state.issued += 1;
        let access = format!("ya29.access-{}", state.issued);
        let lifetime = state.lifetime;
        state.access_tokens.insert(access.clone(), at + lifetime);
        let mut body = format!(
            r#"{{"access_token":"{access}","expires_in":{},"scope":"https://www.googleapis.com/auth/youtube.upload","token_type":"Bearer""#,
            lifetime.as_secs()
        );
        if state.rotate
            && let Some(old) = refresh
        {
            state.refresh_tokens.remove(old);
            let new = format!("1//refresh-{}", state.issued);
            state.refresh_tokens.insert(new.clone());
            body.push_str(&format!(r#","refresh_token":"{new}""#));
        }
        body.push('}');
        (json(StatusCode::OK, &body), seen(StatusCode::OK, false))
    }

    fn answer_api<B>(&self, req: &Request<B>) -> Response<MockBody> {
        let at = self.clock.now();
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let mut state = self.state();
        let valid = token
            .as_ref()
            .and_then(|t| state.access_tokens.get(t))
            .is_some_and(|expires| at < *expires);
        let res = if valid {
            json(StatusCode::OK, r#"{"ok":true}"#)
        } else {
            let mut res = json(StatusCode::UNAUTHORIZED, UNAUTHENTICATED_BODY);
            let challenge = if token.is_some() {
                r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#
            } else {
                r#"Bearer realm="https://accounts.google.com/""#
            };
            res.headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(challenge));
            res
        };
        state.api_calls.push(Seen {
            at,
            credential: token,
            status: Some(res.status()),
            fault: false,
        });
        res
    }
}

fn json(status: StatusCode, body: &str) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body.to_owned()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<MockBody>, BoxError>> + Send>>;

/// The token endpoint of a [`GoogleOAuth`] mock.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    mock: GoogleOAuth,
}

impl<B> Service<Request<B>> for TokenEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<MockBody>;
    type Error = BoxError;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mock = self.mock.clone();
        Box::pin(async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let form = parse_form(&body);
            let latency = mock.state().latency;
            mock.clock.sleep(latency).await;
            let fault = {
                let mut state = mock.state();
                state.faults.pop_front().or_else(|| state.fail_while.clone())
            };
            let Some(fault) = fault else {
                let (res, seen) = mock.answer_token(&form);
                mock.state().token_calls.push(seen);
                return Ok(res);
            };
            let res = generic_response(&fault, &mock.clock);
            let credential = form.get("grant_type").cloned();
            let status = res.as_ref().map(Response::status);
            let at = mock.clock.now();
            mock.state().token_calls.push(Seen { at, credential, status, fault: true });
            match (res, fault) {
                (Some(res), _) => Ok(res),
                (None, Fault::Hang) => std::future::pending().await,
                (None, _) => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()),
            }
        })
    }
}

/// The API of a [`GoogleOAuth`] mock.
#[derive(Clone, Debug)]
pub struct Api {
    mock: GoogleOAuth,
}

impl<B> Service<Request<B>> for Api {
    type Response = Response<MockBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<MockBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.mock.answer_api(&req)))
    }
}

/// Google's `401` for an API mock checking tokens against `auth`, or `None` if the request's
/// bearer token is valid (or no check is asked for).
pub(crate) fn refuse_unless_valid(
    auth: Option<&GoogleOAuth>,
    headers: &http::HeaderMap,
) -> Option<Response<crate::body::MockBody>> {
    let auth = auth?;
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_some_and(|t| auth.accepts(t)) {
        return None;
    }
    let mut res = Response::new(crate::body::MockBody::full(UNAUTHENTICATED_BODY));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let challenge = r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#;
    res.headers_mut()
        .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(challenge));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let form = parse_form(b"grant_type=refresh_token&refresh_token=1%2F%2Fabc&x=a+b&bad=%zz");
        assert_eq!(form["refresh_token"], "1//abc");
        assert_eq!(form["x"], "a b");
        assert_eq!(form["bad"], "%zz");
    }
}
