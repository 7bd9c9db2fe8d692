//! The authorization-code grant with PKCE, as an installed application uses it.
//!
//! A human consents once, in a browser: the application prints (or opens) the authorization URL,
//! the authorization server sends the browser back to the redirect URI (for an installed
//! application a loopback address, RFC 8252 §7.3) with a `code` and the `state` it was given, and
//! the code is traded at the token endpoint for tokens, among them the refresh token that the
//! refresh-token grant lives on afterwards.
//!
//! PKCE (RFC 7636, method `S256`) binds the code to this process: the URL carries the SHA-256 of
//! a random verifier that only the exchange reveals, so a code caught by another program on the
//! same machine is useless. The `state` ties the answer to this request: an answer carrying
//! another state was not meant for it (RFC 6749 §10.12).

use std::borrow::Cow;
use std::fmt;

use http::{Request, Response};
use http_body::Body;
use oauth2::basic::BasicErrorResponseType;
use oauth2::{
    AuthUrl, AuthorizationCode, CsrfToken, HttpRequest, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use secrecy::SecretString;
use tower_service::Service;
use unattended_core::clock::add_saturating;
use unattended_core::{BoxError, Clock};

use crate::oauth::{EndpointError, OAuth2Client, TokenAnswer, call};
use crate::token::AccessToken;

/// An authorization request in flight: the URL a human opens, and what the exchange needs (the
/// PKCE verifier, the redirect URI, the state to check the answer against).
///
/// Made by [`OAuth2Client::authorize`]; used up by [`OAuth2Client::exchange_code`], so a request
/// is exchanged at most once. `Debug` shows neither the state nor the verifier.
pub struct Authorization {
    url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    redirect_uri: RedirectUrl,
}

impl Authorization {
    /// The URL to open in a browser: the authorization endpoint with `response_type=code`, the
    /// client id, the redirect URI, the scopes, the state, the PKCE challenge and the extra
    /// parameters given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The redirect URI the answer comes back to.
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }

    /// Whether `state`, from the answer, is the one this request sent. Anything else is an answer
    /// to another request (a stale tab, or a forged redirect) and must not be exchanged.
    pub fn state_matches(&self, state: &str) -> bool {
        let ours = self.state.secret().as_bytes();
        let theirs = state.as_bytes();
        // Compared in full whatever the first difference, so the time taken tells nothing.
        ours.len() == theirs.len()
            && ours.iter().zip(theirs).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// What the authorization-code grant gave.
///
/// `Debug` shows neither token.
pub struct Granted {
    access_token: AccessToken,
    refresh_token: Option<SecretString>,
    scopes: Option<Vec<String>>,
}

impl Granted {
    /// The access token (its expiry on the clock given to the exchange).
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The refresh token, if the server issued one (Google does only when asked for offline
    /// access, and only at the first consent unless the consent screen was shown again).
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.refresh_token.as_ref()
    }

    /// The scopes granted, if the server said (they may be fewer than those asked for).
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }
}

impl fmt::Debug for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Granted")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The code could not be traded for tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The token endpoint said no, with this RFC 6749 §5.2 error code: `invalid_grant` for a
    /// code that is unknown, used already, expired, or whose PKCE verifier does not match;
    /// `invalid_client` for a wrong client; `redirect_uri_mismatch` (Google) for another
    /// redirect URI. Only the code is kept: the answer's description is not repeated.
    #[error("the token endpoint refused the authorization code ({code})")]
    Refused {
        /// The error code, or `"an unreadable error"` if it was not a plain code.
        code: String,
    },
    /// The token endpoint could not be reached, or its answer was not a token response.
    #[error("the token endpoint could not be reached or its answer not read")]
    Unavailable(#[source] BoxError),
}

impl ExchangeError {
    /// The RFC 6749 error code of a refusal.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Refused { code } => Some(code),
            Self::Unavailable(_) => None,
        }
    }
}

impl OAuth2Client {
    /// Starts the authorization-code grant: a fresh state and PKCE verifier (`S256`), and the URL
    /// of `auth_url` asking for `scopes`, with the answer sent to `redirect_uri` and `params`
    /// added (for Google, `access_type=offline` and `prompt=consent` to get a refresh token).
    ///
    /// # Errors
    ///
    /// `auth_url` or `redirect_uri` is not a valid URL.
    pub fn authorize<'a>(
        &self,
        auth_url: &str,
        redirect_uri: &str,
        scopes: impl IntoIterator<Item = impl Into<String>>,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Authorization, oauth2::url::ParseError> {
        let client = self.client.clone().set_auth_uri(AuthUrl::new(auth_url.to_owned())?);
        let redirect_uri = RedirectUrl::new(redirect_uri.to_owned())?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(Cow::Borrowed(&redirect_uri))
            .set_pkce_challenge(challenge)
            .add_scopes(scopes.into_iter().map(|s| Scope::new(s.into())));
        for (name, value) in params {
            request = request.add_extra_param(name, value);
        }
        let (url, state) = request.url();
        Ok(Authorization { url: url.into(), state, verifier, redirect_uri })
    }

    /// Trades `code`, from the answer to `authorization`, for tokens (RFC 6749 §4.1.3, with the
    /// PKCE `code_verifier`), through `http` like the other grants. The access token's expiry is
    /// read on `clock`. Check the answer's state with [`Authorization::state_matches`] first.
    ///
    /// `ReqB` is the request body type of `http` (a service may accept several):
    /// `client.exchange_code::<Full<Bytes>>(..)`.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::Refused`] when the endpoint says no, [`ExchangeError::Unavailable`] when
    /// it cannot be reached or its answer read.
    pub async fn exchange_code<ReqB: From<Vec<u8>>>(
        &self,
        authorization: Authorization,
        code: &str,
        http: impl Service<
            Request<ReqB>,
            Response = Response<impl Body<Error: Into<BoxError>>>,
            Error: Into<BoxError>,
        > + Clone,
        clock: Clock,
    ) -> Result<Granted, ExchangeError> {
        let send = |req: HttpRequest| call(http.clone(), req);
        let answer: TokenAnswer = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(authorization.verifier)
            .set_redirect_uri(Cow::Owned(authorization.redirect_uri))
            .request_async(&send)
            .await
            .map_err(exchange_error)?;
        let expires_at = answer.expires_in().map(|ttl| add_saturating(clock.wall(), ttl));
        Ok(Granted {
            access_token: AccessToken::new(answer.access_token().secret().clone(), expires_at),
            refresh_token: answer.refresh_token().map(|r| SecretString::from(r.secret().clone())),
            scopes: answer.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
        })
    }
}

fn exchange_error(
    error: RequestTokenError<EndpointError, oauth2::basic::BasicErrorResponse>,
) -> ExchangeError {
    match error {
        RequestTokenError::ServerResponse(answer) => {
            let code = match answer.error() {
                BasicErrorResponseType::Extension(code) if !is_error_code(code) => {
                    "an unreadable error".to_owned()
                }
                code => code.to_string(),
            };
            ExchangeError::Refused { code }
        }
        RequestTokenError::Request(err) => ExchangeError::Unavailable(err.into()),
        // The body is not repeated: it may hold a token.
        RequestTokenError::Parse(..) => {
            ExchangeError::Unavailable("the token endpoint's answer is not a token response".into())
        }
        RequestTokenError::Other(what) => ExchangeError::Unavailable(what.into()),
    }
}

/// An RFC 6749 §5.2 error code, short: printable ASCII without `"` or `\` (so no markup, no
/// line breaks, nothing long enough to carry a token).
pub(crate) fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_plain_and_short() {
        assert!(is_error_code("invalid_grant"));
        assert!(is_error_code("redirect_uri_mismatch"));
        assert!(!is_error_code(""));
        assert!(!is_error_code("a\nb"));
        assert!(!is_error_code("say \"hi\""));
        assert!(!is_error_code(&"x".repeat(65)));
    }
}
