//! What the client's trace span shows of a request: never the query (it often holds a key), and
//! only the origin when the caller marks the path as a secret.

use std::fmt;

use http::{Request, Uri};
use tower_http::trace::MakeSpan;
use tracing::Span;

/// A request extension: this request's URL path is a secret (a webhook URL that carries its
/// token in the path), so the client's logs show only the URL's origin.
///
/// ```
/// let mut req = http::Request::post("https://hooks.example.com/services/T0/B0/secret")
///     .body(unattended_client::RequestBody::default())?;
/// req.extensions_mut().insert(unattended_client::SecretPath);
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecretPath;

/// The span of one call: `request{method=… uri=… version=…}` at `DEBUG`, as tower-http's default
/// span, with the URI shown by [`Shown`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        let secret = req.extensions().get::<SecretPath>().is_some();
        tracing::debug_span!(
            "request",
            method = %req.method(),
            uri = %Shown { uri: req.uri(), secret },
            version = ?req.version(),
        )
    }
}

/// A URI as logs may show it: scheme, host and port (no user information), the path unless it
/// is a secret (`/…` then), and `?…` for a query.
pub(crate) struct Shown<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) secret: bool,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.uri;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(host) = uri.host() {
            f.write_str(host)?;
        }
        if let Some(port) = uri.port_u16() {
            write!(f, ":{port}")?;
        }
        if self.secret {
            f.write_str("/…")?;
        } else {
            f.write_str(uri.path())?;
        }
        if uri.query().is_some() {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(uri: &str, secret: bool) -> String {
        Shown { uri: &uri.parse().unwrap(), secret }.to_string()
    }

    #[test]
    fn logs_never_show_a_query_user_information_or_a_secret_path() {
        assert_eq!(
            shown("https://api.example.com/v1/items", false),
            "https://api.example.com/v1/items"
        );
        assert_eq!(
            shown("https://api.example.com:8443/v1?key=abc", false),
            "https://api.example.com:8443/v1?…"
        );
        assert_eq!(shown("https://user:pw@api.example.com/x", false), "https://api.example.com/x");
        assert_eq!(
            shown("https://hooks.example.com/services/T0/B0/tok?x=1", true),
            "https://hooks.example.com/…?…"
        );
        assert_eq!(shown("/relative/path", false), "/relative/path");
    }
}
