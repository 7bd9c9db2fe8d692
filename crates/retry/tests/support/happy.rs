//! Helpers for measuring the happy path: a service whose future is ready at once, driven by hand.
#![allow(dead_code, unreachable_pub)]

use std::future::{Ready, ready};

use bytes::Bytes;
use http::{Request, Response};
use unattended_core::{Classifier, Clock, FailureClass};

/// Every response is a success.
#[derive(Clone, Debug)]
pub struct AlwaysOk;

impl Classifier<u64> for AlwaysOk {
    fn classify_response(&self, _: &u64, _: &Clock) -> Result<(), FailureClass> {
        Ok(())
    }
}

pub fn echo(req: u64) -> Ready<Result<u64, std::io::Error>> {
    ready(Ok(req))
}

pub fn ok_response(_: Request<Bytes>) -> Ready<Result<Response<()>, std::io::Error>> {
    ready(Ok(Response::new(())))
}
