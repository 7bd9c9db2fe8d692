//! Service keys: which remote service a request is for.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::{Request, Uri};

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
        let mut key = String::new();
        write_uri_key(uri, &mut key).ok()?;
        Some(Self(key.into()))
    }

    /// The default key of a service at `scheme://host:port`, as [`from_uri`](Self::from_uri)
    /// makes it, from parts already at hand (a parsed URL of another crate, say).
    pub fn from_origin(scheme: &str, host: &str, port: Option<u16>) -> Self {
        let mut key = String::with_capacity(scheme.len() + host.len() + 9);
        // Writing to a `String` cannot fail.
        let _ = write_key(Some(scheme), host, port, &mut key);
        Self(key.into())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ServiceKey {
    fn borrow(&self) -> &str {
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

/// Writes the default key of `uri` (`scheme://host:port`, lower case, explicit port) to `out`.
///
/// # Errors
///
/// Fails for a URI without a host, or if `out` fails.
pub fn write_uri_key(uri: &Uri, out: &mut impl fmt::Write) -> fmt::Result {
    write_key(uri.scheme_str(), uri.host().ok_or(fmt::Error)?, uri.port_u16(), out)
}

fn write_key(
    scheme: Option<&str>,
    host: &str,
    port: Option<u16>,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    let scheme = scheme.unwrap_or("http");
    let port = port.or(match scheme {
        s if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => Some(443),
        s if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => Some(80),
        _ => None,
    });
    for part in [scheme, "://", host] {
        for c in part.chars() {
            out.write_char(c.to_ascii_lowercase())?;
        }
    }
    match port {
        Some(port) => write!(out, ":{port}"),
        None => Ok(()),
    }
}

/// Where a request's key comes from, kept cheaply until the key is needed.
///
/// Keyed layers extract one per call; most calls never need the key as a string (no pause, no
/// open breaker), so the URI's scheme and authority are kept (a reference count, no allocation)
/// instead of a formatted key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The default key of a URI with this scheme and authority (see [`ServiceKey::from_uri`]).
    Host {
        /// The URI's scheme (`http` when absent).
        scheme: Option<Scheme>,
        /// The URI's authority.
        authority: Authority,
    },
    /// A named key.
    Named(ServiceKey),
}

impl KeySource {
    /// Calls `f` with the key as a string, formatting it on the stack when it is a URI.
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Self::Named(key) => f(key.as_str()),
            Self::Host { .. } => {
                let mut buf = KeyBuf::default();
                match self.write_host(&mut buf) {
                    Ok(()) => f(buf.as_str()),
                    Err(_) => f(""),
                }
            }
        }
    }

    /// The key as a [`ServiceKey`] (allocates for a URI).
    pub fn to_key(&self) -> ServiceKey {
        match self {
            Self::Named(key) => key.clone(),
            Self::Host { .. } => {
                let mut key = String::new();
                let _ = self.write_host(&mut key);
                ServiceKey::new(key)
            }
        }
    }

    /// The key of a URI, if it has a host.
    pub fn of_uri(uri: &Uri) -> Option<Self> {
        uri.host()?;
        Some(Self::Host { scheme: uri.scheme().cloned(), authority: uri.authority()?.clone() })
    }

    fn write_host(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::Host { scheme, authority } => write_key(
                scheme.as_ref().map(Scheme::as_str),
                authority.host(),
                authority.port_u16(),
                out,
            ),
            Self::Named(key) => out.write_str(key.as_str()),
        }
    }
}

/// A string buffer on the stack, spilling to the heap only for keys over 128 bytes.
#[derive(Debug)]
struct KeyBuf {
    bytes: [u8; 128],
    len: usize,
    spill: Option<String>,
}

impl Default for KeyBuf {
    fn default() -> Self {
        Self { bytes: [0; 128], len: 0, spill: None }
    }
}

impl KeyBuf {
    fn as_str(&self) -> &str {
        match &self.spill {
            Some(spill) => spill,
            None => std::str::from_utf8(&self.bytes[..self.len]).unwrap_or(""),
        }
    }
}

impl fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
        } else if let Some(room) = self.bytes.get_mut(self.len..self.len + s.len()) {
            room.copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut spill = String::with_capacity(self.len + s.len());
            spill.push_str(std::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)?);
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

/// Picks the key of a request, for layers that keep state per remote service.
///
/// [`ByHost`] is the HTTP default (scheme, host and port); any
/// `Fn(&Req) -> Option<ServiceKey>` closure works too. A request with no key (`None`) is never
/// held or paused.
pub trait KeyOf<Req>: Clone + Send + Sync + 'static {
    /// The key of `req`. Called on every request: keep it cheap.
    fn key_of(&self, req: &Req) -> Option<KeySource>;

    /// True if the key of `req` is `key`. Layers that remember the last key they saw use it to
    /// skip extracting; implementations can compare without copying anything.
    fn is_key(&self, req: &Req, key: &KeySource) -> bool {
        self.key_of(req).as_ref() == Some(key)
    }
}

/// Keys HTTP requests by their URI's scheme, host and port.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByHost;

impl<B> KeyOf<Request<B>> for ByHost {
    fn key_of(&self, req: &Request<B>) -> Option<KeySource> {
        KeySource::of_uri(req.uri())
    }

    fn is_key(&self, req: &Request<B>, key: &KeySource) -> bool {
        match key {
            KeySource::Host { scheme, authority } => {
                req.uri().authority() == Some(authority) && req.uri().scheme() == scheme.as_ref()
            }
            KeySource::Named(_) => false,
        }
    }
}

impl<F, Req> KeyOf<Req> for F
where
    F: Fn(&Req) -> Option<ServiceKey> + Clone + Send + Sync + 'static,
{
    fn key_of(&self, req: &Req) -> Option<KeySource> {
        self(req).map(KeySource::Named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Option<String> {
        ServiceKey::from_uri(&uri.parse().unwrap()).map(|k| k.to_string())
    }

    #[test]
    fn keys_from_origin_parts_match_keys_from_uris() {
        let cases = [
            ("https", "API.Example.com", None, "https://API.Example.com/x"),
            ("http", "localhost", Some(8080), "http://localhost:8080/"),
            ("http", "127.0.0.1", None, "http://127.0.0.1"),
            ("https", "[::1]", Some(8443), "https://[::1]:8443/a"),
            ("ftp", "files.example.org", None, "ftp://files.example.org/"),
        ];
        for (scheme, host, port, uri) in cases {
            let from_parts = ServiceKey::from_origin(scheme, host, port).to_string();
            assert_eq!(Some(from_parts), key(uri), "{uri}");
        }
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
        assert_eq!(key("http://127.0.0.1:8080/").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(key("http://[::1]/").as_deref(), Some("http://[::1]:80"));
        assert_eq!(key("/only/a/path"), None);
    }

    #[test]
    fn key_sources_format_like_service_keys() {
        let uri: Uri = "HTTPS://Api.Example.com/x".parse().unwrap();
        let source = ByHost.key_of(&Request::get(uri.clone()).body(()).unwrap()).unwrap();
        source.with_str(|s| assert_eq!(s, "https://api.example.com:443"));
        assert_eq!(source.to_key(), ServiceKey::from_uri(&uri).unwrap());
        let long = format!("https://{}.example/", "a".repeat(300));
        let source = KeySource::of_uri(&long.parse().unwrap()).unwrap();
        source.with_str(|s| assert_eq!(s.len(), "https://".len() + 300 + ".example:443".len()));
        assert!(ByHost.key_of(&Request::get("/path").body(()).unwrap()).is_none());
        let other = Request::get("https://API.example.com:443/y").body(()).unwrap();
        let source =
            ByHost.key_of(&Request::get("https://api.example.com/x").body(()).unwrap()).unwrap();
        assert!(
            ByHost.is_key(&Request::get("https://api.example.com/z").body(()).unwrap(), &source)
        );
        assert!(
            !ByHost.is_key(&Request::get("http://api.example.com/z").body(()).unwrap(), &source)
        );
        // Same key, different spelling: not recognised by the quick test (the slow path finds it).
        assert!(!ByHost.is_key(&other, &source));
        let named = |_: &u8| Some(ServiceKey::new("db"));
        named.key_of(&0).unwrap().with_str(|s| assert_eq!(s, "db"));
    }

    #[test]
    fn non_http_keys_are_plain_names() {
        let k = ServiceKey::from("smtp-relay");
        assert_eq!(k.as_str(), "smtp-relay");
        assert_eq!(format!("{k:?}"), "\"smtp-relay\"");
    }
}
