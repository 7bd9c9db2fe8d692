//! Helpers for measuring the happy path: a service whose future is ready at once, driven by hand.
#![allow(dead_code, unreachable_pub)]

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;
use unattended_core::{Classifier, Clock, FailureClass};

/// Every response is a success.
#[derive(Clone, Debug)]
pub struct AlwaysOk;

impl Classifier<u64> for AlwaysOk {
    fn classify_response(&self, _: &u64, _: &Clock) -> Result<(), FailureClass> {
        Ok(())
    }
}

/// Readies `svc`, calls it and polls the response once; both must be ready at once.
pub fn call_once<S: Service<R>, R>(svc: &mut S, req: R) -> S::Response {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))), "not ready");
    let mut fut = pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => panic!("the happy path must complete at once"),
    }
}

pub fn echo(req: u64) -> Ready<Result<u64, std::io::Error>> {
    ready(Ok(req))
}

pub fn ok_response(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}
