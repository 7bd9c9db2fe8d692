//! Which class of action a request is.

use std::sync::Arc;

use http::{Extensions, Method, Request};

/// The class of action a request performs (`read`, `write`, `publish`, `email`…), which picks its
/// time window.
///
/// Put it in a request's extensions to choose the class explicitly; it wins over the default by
/// method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActionClass(Arc<str>);

impl ActionClass {
    /// A class with the given name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The class's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ActionClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// Picks the class of a request.
///
/// [`ByMethod`] is the HTTP default; any `Fn(&Req) -> &'static str` closure works too.
pub trait ClassOf<Req>: Clone + Send + Sync + 'static {
    /// The class of `req`. Called on every request: keep it cheap.
    fn class_of<'r>(&'r self, req: &'r Req) -> &'r str;
}

/// The class in the request's [`ActionClass`] extension if there is one; otherwise `read` for
/// `GET`, `HEAD` and `OPTIONS`, and `write` for everything else.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByMethod;

impl ByMethod {
    /// The class of safe methods.
    pub const READ: &'static str = "read";
    /// The class of every other method.
    pub const WRITE: &'static str = "write";

    /// The class of a request with this method and these extensions: its [`ActionClass`] if it
    /// has one, else by method. The rule of [`ClassOf::class_of`], for requests of other types
    /// (such as `reqwest`'s).
    pub fn class_of_parts<'r>(method: &Method, extensions: &'r Extensions) -> &'r str {
        match extensions.get::<ActionClass>() {
            Some(class) => class.as_str(),
            None => Self::class_of_method(method),
        }
    }

    /// The class of `method` alone: `read` for `GET`, `HEAD` and `OPTIONS`, else `write`.
    pub fn class_of_method(method: &Method) -> &'static str {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => Self::READ,
            _ => Self::WRITE,
        }
    }
}

impl<B> ClassOf<Request<B>> for ByMethod {
    fn class_of<'r>(&'r self, req: &'r Request<B>) -> &'r str {
        Self::class_of_parts(req.method(), req.extensions())
    }
}

impl<F, Req> ClassOf<Req> for F
where
    F: Fn(&Req) -> &'static str + Clone + Send + Sync + 'static,
{
    fn class_of<'r>(&'r self, req: &'r Req) -> &'r str {
        self(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_classes_win_over_methods() {
        let get = Request::get("/").body(()).unwrap();
        let post = Request::post("/").body(()).unwrap();
        assert_eq!(ByMethod.class_of(&get), "read");
        assert_eq!(ByMethod.class_of(&post), "write");
        let mut publish = Request::get("/").body(()).unwrap();
        publish.extensions_mut().insert(ActionClass::new("publish"));
        assert_eq!(ByMethod.class_of(&publish), "publish");
        assert_eq!(ByMethod::class_of_parts(&Method::DELETE, publish.extensions()), "publish");
        assert_eq!(ByMethod::class_of_parts(&Method::HEAD, get.extensions()), "read");
        assert_eq!(ByMethod::class_of_method(&Method::OPTIONS), "read");
        assert_eq!(ByMethod::class_of_method(&Method::PATCH), "write");
    }
}
