//! Where a token goes on a request: a header, or a query parameter.

use std::borrow::Cow;
use std::fmt::Write as _;

use http::header::AUTHORIZATION;
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Request, Uri};
use unattended_core::TokenError;

use crate::cache::{Cached, CachedToken};

/// Where [`TokenLayer`](crate::TokenLayer) puts the credential on each request.
///
/// Any value the request already has in that place is replaced. Header values are marked
/// sensitive, so HTTP/2 does not index them and tower-http's trace layers can leave them out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// `Authorization: Bearer <token>` (RFC 6750), the default.
    #[default]
    Bearer,
    /// `<name>: <token>`, the token alone: an API key header such as DEV's `api-key`.
    Header(HeaderName),
    /// `?<name>=<token>` (percent-encoded) added to the query, such as Google's `key`. Prefer a
    /// header where the API allows one: URLs end up in logs.
    Query(Cow<'static, str>),
}

impl Placement {
    /// `Authorization: Bearer <token>`.
    pub fn bearer() -> Self {
        Self::Bearer
    }

    /// The token alone in the header `name`.
    pub fn header(name: HeaderName) -> Self {
        Self::Header(name)
    }

    /// The token in the query parameter `name`.
    pub fn query(name: impl Into<Cow<'static, str>>) -> Self {
        Self::Query(name.into())
    }

    /// Puts the token of `cached` on `req`. Header values are made once per token.
    pub(crate) fn apply<B>(
        &self,
        cached: &Cached,
        mut req: Request<B>,
    ) -> Result<Request<B>, TokenError> {
        if let Some((name, value)) = self.header_of(cached)? {
            req.headers_mut().insert(name, value);
        } else if let Self::Query(name) = self {
            *req.uri_mut() = with_query(req.uri(), name, cached.token.secret())?;
        }
        Ok(req)
    }

    /// The header this placement puts on a request for `token` (its value made once per token
    /// and marked sensitive), or `None` when the token goes in the query. The rule of the token
    /// layer, for requests of other types (such as `reqwest`'s).
    ///
    /// # Errors
    ///
    /// [`TokenError::Unusable`] for a token that is not a valid header value.
    pub fn header_for(
        &self,
        token: &CachedToken,
    ) -> Result<Option<(HeaderName, HeaderValue)>, TokenError> {
        self.header_of(token.cached())
    }

    /// The query `query` (without its `?`) with the token as its only parameter of this
    /// placement's name, percent-encoded, or `None` when the token goes in a header. The rule of
    /// the token layer, for requests of other types.
    pub fn query_for(&self, token: &CachedToken, query: Option<&str>) -> Option<String> {
        match self {
            Self::Query(name) => {
                let mut out = String::new();
                push_query(query, name, token.cached().token.secret(), &mut out);
                Some(out)
            }
            Self::Bearer | Self::Header(_) => None,
        }
    }

    fn header_of(&self, cached: &Cached) -> Result<Option<(HeaderName, HeaderValue)>, TokenError> {
        Ok(Some(match self {
            Self::Bearer => (
                AUTHORIZATION,
                memo(&cached.bearer, || format!("Bearer {}", cached.token.secret()))?,
            ),
            Self::Header(name) => {
                (name.clone(), memo(&cached.raw, || cached.token.secret().to_owned())?)
            }
            Self::Query(_) => return Ok(None),
        }))
    }
}

fn memo(
    slot: &std::sync::OnceLock<HeaderValue>,
    make: impl FnOnce() -> String,
) -> Result<HeaderValue, TokenError> {
    if let Some(value) = slot.get() {
        return Ok(value.clone());
    }
    let mut value = HeaderValue::try_from(make())
        .map_err(|_| TokenError::Unusable { what: "not a valid HTTP header value" })?;
    value.set_sensitive(true);
    Ok(slot.get_or_init(|| value).clone())
}

/// `uri` with `name=<secret>` as its only `name` parameter.
fn with_query(uri: &Uri, name: &str, secret: &str) -> Result<Uri, TokenError> {
    let unusable = || TokenError::Unusable { what: "the URI with it is not valid" };
    let mut path_and_query = String::from(uri.path());
    path_and_query.push('?');
    push_query(uri.query(), name, secret, &mut path_and_query);
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).map_err(|_| unusable())?);
    Uri::from_parts(parts).map_err(|_| unusable())
}

/// Writes `query`'s pairs but those named `name`, then `name=<secret>` percent-encoded.
fn push_query(query: Option<&str>, name: &str, secret: &str, out: &mut String) {
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if pair.split('=').next() == Some(name) {
            continue;
        }
        out.push_str(pair);
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    percent_encode(secret, out);
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_parameter_replaces_an_old_one_and_is_encoded() {
        let uri: Uri = "https://a.example/v3/videos?part=id&key=old&x=1".parse().unwrap();
        let got = with_query(&uri, "key", "a b/c+d").unwrap();
        assert_eq!(got.to_string(), "https://a.example/v3/videos?part=id&x=1&key=a%20b%2Fc%2Bd");
        let bare: Uri = "/path".parse().unwrap();
        assert_eq!(with_query(&bare, "key", "k").unwrap().to_string(), "/path?key=k");
    }
}
