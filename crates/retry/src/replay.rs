//! Which requests may be sent again, and how to copy them.

use http::{Extensions, HeaderMap, Method, Request};
pub use unattended_core::ReplayBody;
use unattended_core::{ServiceKey, copy_request};

/// Tells the retry layer how to copy a request and whether sending it twice is safe.
///
/// [`HttpReplay`] is the HTTP rule set; [`CloneReplay`] fits any `Clone` request type.
pub trait Replay<Req>: Clone + Send + Sync + 'static {
    /// A copy of `req` to send again, or `None` if it cannot be replayed (a streaming body).
    fn replay(&self, req: &Req) -> Option<Req>;

    /// True if sending `req` twice has the same effect as sending it once.
    ///
    /// Requests that are not idempotent are retried only when the failure proves that nothing
    /// was sent (a connect error).
    fn is_idempotent(&self, req: &Req) -> bool;

    /// The service `req` is for, named in events and errors.
    fn key(&self, req: &Req) -> Option<ServiceKey>;
}

/// Marks a request as safe to retry whatever its method.
///
/// Insert it as a request extension (`req.extensions_mut().insert(Retryable)`) for a `POST` or
/// `PATCH` that the server de-duplicates by other means. An `Idempotency-Key` header has the
/// same effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retryable;

/// Marks a request as unsafe to send twice whatever its method: it is sent again only when the
/// failure shows the server did not act on it (a connect failure, a `429`, a refused credential).
///
/// Insert it as a request extension for a `PUT` whose effect depends on what the server kept of
/// an earlier one, such as a chunk of a resumable upload: after a reset or a `503` the caller
/// asks the server where the upload stands instead of sending the chunk again blindly. It wins
/// over [`Retryable`] and an `Idempotency-Key` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotIdempotent;

/// The HTTP rules: replay a request whose body is buffered; treat `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`, `PUT` and `DELETE` as idempotent (RFC 9110 §9.2.2), and `POST`/`PATCH` only with an
/// `Idempotency-Key` header or the [`Retryable`] extension; a request with the
/// [`NotIdempotent`] extension never. The key is the URI's scheme, host and port.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpReplay;

impl HttpReplay {
    /// The rule of [`Replay::is_idempotent`] from a request's method, headers and extensions,
    /// for requests of other types (such as `reqwest`'s).
    pub fn is_idempotent_parts(
        method: &Method,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> bool {
        if extensions.get::<NotIdempotent>().is_some() {
            return false;
        }
        matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        ) || headers.contains_key("idempotency-key")
            || extensions.get::<Retryable>().is_some()
    }
}

impl<B: ReplayBody> Replay<Request<B>> for HttpReplay {
    fn replay(&self, req: &Request<B>) -> Option<Request<B>> {
        copy_request(req)
    }

    fn is_idempotent(&self, req: &Request<B>) -> bool {
        Self::is_idempotent_parts(req.method(), req.headers(), req.extensions())
    }

    fn key(&self, req: &Request<B>) -> Option<ServiceKey> {
        ServiceKey::from_uri(req.uri())
    }
}

/// For requests that are plain values: replay by `Clone`, always idempotent, and keyed by a
/// fixed name if one is given.
#[derive(Clone, Debug, Default)]
pub struct CloneReplay {
    key: Option<ServiceKey>,
}

impl CloneReplay {
    /// Replays by `Clone`, with no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replays by `Clone`, naming the service `key` in events and errors.
    pub fn keyed(key: impl Into<ServiceKey>) -> Self {
        Self { key: Some(key.into()) }
    }
}

impl<Req: Clone> Replay<Req> for CloneReplay {
    fn replay(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }

    fn is_idempotent(&self, _: &Req) -> bool {
        true
    }

    fn key(&self, _: &Req) -> Option<ServiceKey> {
        self.key.clone()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn idempotency_by_method_header_and_extension() {
        let req = |m: Method| {
            Request::builder().method(m).uri("https://a.example/").body(Bytes::new()).unwrap()
        };
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE] {
            assert!(HttpReplay.is_idempotent(&req(m)));
        }
        assert!(!HttpReplay.is_idempotent(&req(Method::POST)));
        assert!(!HttpReplay.is_idempotent(&req(Method::PATCH)));
        let mut post = req(Method::POST);
        post.headers_mut().insert("idempotency-key", "abc".parse().unwrap());
        assert!(HttpReplay.is_idempotent(&post));
        let mut patch = req(Method::PATCH);
        patch.extensions_mut().insert(Retryable);
        assert!(HttpReplay.is_idempotent(&patch));
        let mut chunk = req(Method::PUT);
        chunk.extensions_mut().insert(NotIdempotent);
        chunk.extensions_mut().insert(Retryable);
        chunk.headers_mut().insert("idempotency-key", "abc".parse().unwrap());
        assert!(!HttpReplay.is_idempotent(&chunk));
        let parts = |r: &Request<Bytes>| {
            HttpReplay::is_idempotent_parts(r.method(), r.headers(), r.extensions())
        };
        assert!(parts(&post) && parts(&patch) && !parts(&chunk) && !parts(&req(Method::POST)));
    }

    #[test]
    fn replay_copies_every_part() {
        #[derive(Clone, Debug, PartialEq)]
        struct Tag(u8);
        let mut req = Request::builder()
            .method(Method::PUT)
            .uri("https://a.example/x?y=1")
            .version(http::Version::HTTP_2)
            .header("x-a", "1")
            .body(Bytes::from_static(b"payload"))
            .unwrap();
        req.extensions_mut().insert(Tag(7));
        let copy = HttpReplay.replay(&req).unwrap();
        assert_eq!(copy.method(), Method::PUT);
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.version(), http::Version::HTTP_2);
        assert_eq!(copy.headers(), req.headers());
        assert_eq!(copy.extensions().get::<Tag>(), Some(&Tag(7)));
        assert_eq!(copy.body(), req.body());
        assert_eq!(HttpReplay.key(&req).unwrap().as_str(), "https://a.example:443");
    }

    #[test]
    fn streaming_bodies_do_not_replay() {
        let body = http_body_util::Full::new(Bytes::from_static(b"x")).boxed();
        let req = Request::new(body);
        assert!(HttpReplay.replay(&req).is_none());
        assert!(HttpReplay.replay(&Request::new(http_body_util::Empty::<Bytes>::new())).is_some());
    }

    #[test]
    fn clone_replay_is_for_plain_values() {
        assert_eq!(CloneReplay::new().replay(&41u32), Some(41));
        assert!(Replay::<u32>::is_idempotent(&CloneReplay::new(), &0));
        assert_eq!(Replay::<u32>::key(&CloneReplay::keyed("db"), &0).unwrap().as_str(), "db");
    }
}
