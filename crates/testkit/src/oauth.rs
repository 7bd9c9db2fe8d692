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
//! The authorization endpoint ([`GoogleOAuth::authorize`], `GET /o/oauth2/v2/auth`) is the
//! installed-app flow after the human's click: a known client, `response_type=code`, a scope and
//! a loopback `redirect_uri` (`http://127.0.0.1:PORT`, `http://[::1]:PORT` or `localhost`, any
//! port, as desktop clients may use) are required, else an error page (`400`/`401`, no redirect,
//! as Google shows); then a `302` to the redirect URI with `state`, `code` and `scope`, or with
//! `error=access_denied` and `state` when the human refuses ([`GoogleOAuth::deny_consent`]).
//! A refresh token comes with the code's exchange only with `access_type=offline`, and only at
//! the first consent unless `prompt=consent` asked for the consent screen again. The
//! `authorization_code` grant checks the PKCE verifier against the challenge (`S256`: the
//! unpadded base64url SHA-256 of the verifier; or `plain`): a wrong one is `400 invalid_grant`
//! "Invalid code verifier.", a missing one "Missing code verifier."; a code is single-use (tried
//! once, right or wrong) and lives 10 minutes on the clock ([`GoogleOAuth::code_lifetime`]); an
//! unknown, used or expired code is `400 invalid_grant` "Bad Request"; another redirect URI than
//! the authorization's is `400 redirect_uri_mismatch`. Scopes the human unchecked
//! ([`GoogleOAuth::decline_scopes`]) are left out of the code's grant.
//!
//! Issued tokens and codes expire on the [`Clock`], so a paused test controls them.

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
use crate::fault::{Fault, Mock, MockCore, Route, Trigger, generic_response};
use crate::log::RequestLog;

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

/// A code the authorization endpoint gave, until it is exchanged or expires.
#[derive(Debug)]
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    /// The PKCE challenge and its method (`S256` or `plain`), if one was sent.
    challenge: Option<(String, String)>,
    scope: String,
    /// Whether its exchange gives a refresh token.
    offline: bool,
    expires: Instant,
}

#[derive(Debug)]
struct State {
    client: (String, String),
    refresh_tokens: HashSet<String>,
    codes: HashMap<String, IssuedCode>,
    code_lifetime: Duration,
    deny_consent: bool,
    /// Scopes the human unchecks on the consent screen.
    declined: Vec<String>,
    /// Whether the human has consented to offline access before (Google then gives no new
    /// refresh token unless the consent screen is shown again).
    consented_offline: bool,
    access_tokens: HashMap<String, Instant>,
    lifetime: Duration,
    latency: Duration,
    rotate: bool,
    issued: u64,
    faults: VecDeque<Fault>,
    fail_while: Option<Fault>,
    token_calls: Vec<Seen>,
    api_calls: Vec<Seen>,
    /// Every token and code issued, revoked or not.
    secrets: Vec<String>,
}

/// The mock: an authorization endpoint ([`authorize`](Self::authorize)), a token endpoint
/// ([`token_endpoint`](Self::token_endpoint)) and an API ([`api`](Self::api)) sharing one state.
/// Clones share it too.
#[derive(Clone, Debug)]
pub struct GoogleOAuth {
    state: Arc<Mutex<State>>,
    core: MockCore,
}

impl GoogleOAuth {
    /// A mock issuing one-hour tokens (`expires_in: 3599`), answering at once.
    pub fn new(clock: Clock) -> Self {
        let state = State {
            client: (CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()),
            refresh_tokens: HashSet::new(),
            codes: HashMap::new(),
            code_lifetime: Duration::from_secs(600),
            deny_consent: false,
            declined: Vec::new(),
            consented_offline: false,
            access_tokens: HashMap::new(),
            lifetime: Duration::from_secs(3599),
            latency: Duration::ZERO,
            rotate: false,
            issued: 0,
            faults: VecDeque::new(),
            fail_while: None,
            token_calls: Vec::new(),
            api_calls: Vec::new(),
            secrets: Vec::new(),
        };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, 0) }
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
        state.secrets.push(token.clone());
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

    /// Whether `refresh_token` is one this mock issued and has not revoked or rotated away.
    pub fn holds_refresh_token(&self, refresh_token: &str) -> bool {
        self.state().refresh_tokens.contains(refresh_token)
    }

    /// Makes the human refuse (or, with `false`, give) consent: the authorization endpoint then
    /// redirects with `error=access_denied`.
    pub fn deny_consent(&self, deny: bool) -> &Self {
        self.state().deny_consent = deny;
        self
    }

    /// Makes the human uncheck `scopes` on the consent screen (Google's granular consent): the
    /// codes issued from now on grant only the other scopes asked for.
    pub fn decline_scopes(&self, scopes: &[&str]) -> &Self {
        self.state().declined = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets how long the codes issued from now on may be exchanged (default 10 minutes).
    pub fn code_lifetime(&self, lifetime: Duration) -> &Self {
        self.state().code_lifetime = lifetime;
        self
    }

    /// Adds a fault rule for the authorization endpoint (the token endpoint has
    /// [`fail_next`](Self::fail_next) and [`fail_while`](Self::fail_while)).
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// The authorization endpoint's requests so far.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
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

    /// Every access token, refresh token and authorization code issued so far (revoked,
    /// rotated and expired ones too): what must never appear in a log or an error.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state().secrets.clone()
    }

    /// The API's requests so far.
    pub fn api_calls(&self) -> Vec<Seen> {
        self.state().api_calls.clone()
    }

    /// Whether `access_token` is one this mock issued and it has not expired (for other API
    /// mocks that check tokens, such as YouTube's).
    pub fn accepts(&self, access_token: &str) -> bool {
        let now = self.core.clock.now();
        self.state().access_tokens.get(access_token).is_some_and(|expires| now < *expires)
    }

    /// The authorization endpoint, a `Service<Request<B>>` answering `GET` with a query: what
    /// the browser is sent to, and what sends it back to the redirect URI.
    pub fn authorize(&self) -> Authorize {
        Authorize { mock: self.clone() }
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
        let at = self.core.clock.now();
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
        let mut scope = "https://www.googleapis.com/auth/youtube.upload".to_owned();
        let mut new_refresh = None;
        let valid = match grant.as_deref() {
            Some("refresh_token") => refresh.is_some_and(|r| state.refresh_tokens.contains(r)),
            Some("client_credentials") => true,
            Some("authorization_code") => match redeem(&mut state, form, at) {
                Ok(code) => {
                    scope = code.scope;
                    if code.offline {
                        state.issued += 1;
                        let token = format!("1//refresh-{}", state.issued);
                        state.refresh_tokens.insert(token.clone());
                        state.secrets.push(token.clone());
                        new_refresh = Some(token);
                    }
                    true
                }
                Err((error, description)) => {
                    let body =
                        format!(r#"{{"error":"{error}","error_description":"{description}"}}"#);
                    return (
                        json(StatusCode::BAD_REQUEST, &body),
                        seen(StatusCode::BAD_REQUEST, false),
                    );
                }
            },
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
        state.secrets.push(access.clone());
        let mut body = format!(
            r#"{{"access_token":"{access}","expires_in":{},"scope":"{scope}","token_type":"Bearer""#,
            lifetime.as_secs()
        );
        if let Some(new) = new_refresh {
            body.push_str(&format!(r#","refresh_token":"{new}""#));
        } else if state.rotate
            && let Some(old) = refresh
        {
            state.refresh_tokens.remove(old);
            let new = format!("1//refresh-{}", state.issued);
            state.refresh_tokens.insert(new.clone());
            state.secrets.push(new.clone());
            body.push_str(&format!(r#","refresh_token":"{new}""#));
        }
        body.push('}');
        (json(StatusCode::OK, &body), seen(StatusCode::OK, false))
    }

    fn answer_api<B>(&self, req: &Request<B>) -> Response<MockBody> {
        let at = self.core.clock.now();
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

/// The code of an `authorization_code` grant, taken out of the issued codes (a code is tried
/// once, right or wrong), if it is valid for this client, redirect URI and verifier; else the
/// error and description Google answers.
fn redeem(
    state: &mut State,
    form: &HashMap<String, String>,
    now: Instant,
) -> Result<IssuedCode, (&'static str, &'static str)> {
    let issued = form.get("code").and_then(|c| state.codes.remove(c));
    let Some(code) = issued.filter(|c| now < c.expires && c.client_id == state.client.0) else {
        return Err(("invalid_grant", "Bad Request"));
    };
    if form.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err(("redirect_uri_mismatch", "Bad Request"));
    }
    if let Some((challenge, method)) = &code.challenge {
        let Some(verifier) = form.get("code_verifier") else {
            return Err(("invalid_grant", "Missing code verifier."));
        };
        let proof = if method == "S256" { s256(verifier) } else { verifier.clone() };
        // RFC 7636 §4.1: 43 to 128 characters.
        if !(43..=128).contains(&verifier.len()) || proof != *challenge {
            return Err(("invalid_grant", "Invalid code verifier."));
        }
    }
    Ok(code)
}

/// `BASE64URL-ENCODE(SHA256(ASCII(verifier)))`, unpadded (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Whether `uri` is a loopback redirect a desktop client may use: `http`, host `127.0.0.1`,
/// `[::1]` or `localhost`, a port, and no fragment.
fn is_loopback(uri: &str) -> bool {
    let Ok(uri) = uri.parse::<http::Uri>() else { return false };
    uri.scheme_str() == Some("http")
        && uri.port_u16().is_some()
        && matches!(uri.host(), Some("127.0.0.1" | "[::1]" | "localhost"))
        && !uri.to_string().contains('#')
}

/// An error page of the authorization endpoint (Google shows these instead of redirecting when
/// the request itself is wrong: the redirect URI cannot be trusted).
fn error_page(status: StatusCode, error: &str, detail: &str) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(format!(
        "<html><body><h1>Access blocked: authorization error</h1><p>Error {}: {error}</p><p>{detail}</p></body></html>",
        status.as_u16()
    )));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// A `302` to `redirect_uri` with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response<MockBody> {
    let mut location = redirect_uri.to_owned();
    for (i, (name, value)) in params.iter().enumerate() {
        let sep = if i == 0 && !redirect_uri.contains('?') { '?' } else { '&' };
        location.push(sep);
        location.push_str(&percent_encode(name));
        location.push('=');
        location.push_str(&percent_encode(value));
    }
    let mut res = Response::new(MockBody::empty());
    *res.status_mut() = StatusCode::FOUND;
    match http::HeaderValue::try_from(location) {
        Ok(value) => {
            res.headers_mut().insert(http::header::LOCATION, value);
            res
        }
        Err(_) => error_page(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_uri."),
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl GoogleOAuth {
    /// The authorization endpoint's answer to the query of a `GET`.
    fn answer_authorize(&self, query: &HashMap<String, String>) -> Response<MockBody> {
        let mut state = self.state();
        let param = |name: &str| query.get(name).map(String::as_str);
        if param("client_id") != Some(state.client.0.as_str()) {
            return error_page(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            );
        }
        let Some(redirect_uri) = param("redirect_uri").filter(|r| is_loopback(r)) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.",
            );
        };
        let state_param = param("state").unwrap_or_default();
        if param("response_type") != Some("code") {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid response_type.",
            );
        }
        let Some(scope) = param("scope").filter(|s| !s.trim().is_empty()) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: scope",
            );
        };
        let challenge = match (param("code_challenge"), param("code_challenge_method")) {
            (None, _) => None,
            (Some(c), None | Some("plain")) => Some((c.to_owned(), "plain".to_owned())),
            (Some(c), Some("S256")) => Some((c.to_owned(), "S256".to_owned())),
            (Some(_), Some(_)) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid code_challenge_method.",
                );
            }
        };
        if state.deny_consent {
            let mut params = vec![("error", "access_denied")];
            if !state_param.is_empty() {
                params.push(("state", state_param));
            }
            return redirect(redirect_uri, &params);
        }
        let offline = param("access_type") == Some("offline");
        let prompted = param("prompt").is_some_and(|p| p.split(' ').any(|p| p == "consent"));
        let refresh = offline && (prompted || !state.consented_offline);
        state.consented_offline |= offline;
        state.issued += 1;
        let code = format!("4/0code-{}", state.issued);
        state.secrets.push(code.clone());
        let granted: Vec<&str> =
            scope.split(' ').filter(|s| !state.declined.iter().any(|d| d == s)).collect();
        let granted = granted.join(" ");
        let issued = IssuedCode {
            client_id: state.client.0.clone(),
            redirect_uri: redirect_uri.to_owned(),
            challenge,
            scope: granted.clone(),
            offline: refresh,
            expires: self.core.clock.now() + state.code_lifetime,
        };
        state.codes.insert(code.clone(), issued);
        let mut params = Vec::with_capacity(3);
        if !state_param.is_empty() {
            params.push(("state", state_param));
        }
        params.push(("code", code.as_str()));
        params.push(("scope", granted.as_str()));
        redirect(redirect_uri, &params)
    }
}

/// The authorization endpoint of a [`GoogleOAuth`] mock (faults and log: [`GoogleOAuth::fault`],
/// [`GoogleOAuth::log`]).
#[derive(Clone, Debug)]
pub struct Authorize {
    mock: GoogleOAuth,
}

impl Mock for Authorize {
    fn core(&self) -> &MockCore {
        &self.mock.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        _body: &[u8],
        _fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        if parts.method != http::Method::GET {
            let mut res = error_page(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Use GET.");
            res.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            return Some(res);
        }
        let query = parse_form(parts.uri.query().unwrap_or_default().as_bytes());
        Some(self.mock.answer_authorize(&query))
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
            mock.core.clock.sleep(latency).await;
            let fault = {
                let mut state = mock.state();
                state.faults.pop_front().or_else(|| state.fail_while.clone())
            };
            let Some(fault) = fault else {
                let (res, seen) = mock.answer_token(&form);
                mock.state().token_calls.push(seen);
                return Ok(res);
            };
            let res = generic_response(&fault, &mock.core.clock);
            let credential = form.get("grant_type").cloned();
            let status = res.as_ref().map(Response::status);
            let at = mock.core.clock.now();
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

    #[test]
    fn s256_is_rfc_7636s() {
        // RFC 7636 Appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
