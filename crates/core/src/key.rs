//! Service keys: which remote service a request is for.

use std::fmt;
use std::sync::Arc;

use http::Uri;

/// The name of a remote service, used to key shared state (breakers, pauses) and in errors.
///
/// For HTTP the default key is the scheme, host and port of the request's URI, with the port made
/// explicit and the scheme and host in lower case, so `https://API.example.com/a` and
/// `https://api.example.com:443/b` share a key. Any other string can be a key too, for services
/// that are not HTTP.
///
/// Cloning a key is cheap (a reference count).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey(Arc<str>);

impl ServiceKey {
    /// A key with the given name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The default key of a URI: `scheme://host:port`, or `None` for a URI without a host
    /// (such as a bare path).
    pub fn from_uri(uri: &Uri) -> Option<Self> {
        let host = uri.host()?;
        let scheme = uri.scheme_str().unwrap_or("http");
        let port = uri.port_u16().or(match scheme {
            s if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => Some(443),
            s if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => Some(80),
            _ => None,
        });
        let mut key = String::with_capacity(scheme.len() + host.len() + 9);
        key.push_str(scheme);
        key.push_str("://");
        key.push_str(host);
        key.make_ascii_lowercase();
        if let Some(port) = port {
            key.push(':');
            key.push_str(&port.to_string());
        }
        Some(Self(key.into()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for ServiceKey {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for ServiceKey {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Option<String> {
        ServiceKey::from_uri(&uri.parse().unwrap()).map(|k| k.to_string())
    }

    #[test]
    fn default_ports_are_made_explicit_and_case_is_folded() {
        assert_eq!(
            key("https://API.Example.com/a?b=c").as_deref(),
            Some("https://api.example.com:443")
        );
        assert_eq!(
            key("https://api.example.com:443/x").as_deref(),
            Some("https://api.example.com:443")
        );
        assert_eq!(
            key("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(key("http://[::1]/").as_deref(), Some("http://[::1]:80"));
        assert_eq!(key("/only/a/path"), None);
    }

    #[test]
    fn non_http_keys_are_plain_names() {
        let k = ServiceKey::from("smtp-relay");
        assert_eq!(k.as_str(), "smtp-relay");
        assert_eq!(format!("{k:?}"), "\"smtp-relay\"");
    }
}
