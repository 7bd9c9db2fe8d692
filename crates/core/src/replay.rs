//! Copies of requests, for sending them again.

use bytes::Bytes;
use http::Request;

/// A request body that may be sendable again.
///
/// Buffered bodies ([`Bytes`], `String`, `Vec<u8>`, `Full`, `Empty`, `()`) replay; boxed
/// streaming bodies do not, and a failed request with one is reported as not retried, with the
/// reason, rather than silently returned.
pub trait ReplayBody: Sized {
    /// A copy of the body, or `None` if it is a stream that was (or will be) consumed.
    fn try_replay(&self) -> Option<Self>;
}

macro_rules! replay_by_clone {
    ($($ty:ty),* $(,)?) => {
        $(impl ReplayBody for $ty {
            fn try_replay(&self) -> Option<Self> {
                Some(self.clone())
            }
        })*
    };
}

replay_by_clone!(Bytes, String, Vec<u8>, &'static str, &'static [u8], ());

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for http_body_util::Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(Self::new())
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// A full copy of `req` (method, URI, version, headers, extensions and body), or `None` if its body
/// is a stream.
///
/// Layers that may send a request twice (retry, and the token layer after a refused credential)
/// keep one of these.
pub fn copy_request<B: ReplayBody>(req: &Request<B>) -> Option<Request<B>> {
    let body = req.body().try_replay()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}
