//! Shared helpers: a scripted in-process service that records when it was called.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::{BoxError, Clock};

pub const T0: &str = "2026-11-28T10:00:00Z";

pub fn t0() -> Timestamp {
    T0.parse().unwrap()
}

pub fn clock() -> Clock {
    Clock::starting_at(t0())
}

/// What the scripted service answers, in order; after the script, `200`.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    StatusWith(u16, Vec<(&'static str, String)>),
    Error(io::ErrorKind),
    /// A 401 whose credential a token layer inside has already renewed.
    Renewed,
    /// Never answers.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub method: Method,
}

/// A service answering from a script (then with a fallback answer) and recording each call.
#[derive(Clone)]
pub struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    fallback: Answer,
    calls: Arc<Mutex<Vec<Call>>>,
    clock: Clock,
}

impl Script {
    /// Answers from `answers`, then `200`.
    pub fn new(clock: Clock, answers: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            fallback: Answer::Status(200),
            calls: Arc::default(),
            clock,
        }
    }

    /// Always answers `answer`.
    pub fn always(clock: Clock, answer: Answer) -> Self {
        Self { fallback: answer, ..Self::new(clock, []) }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Gaps between consecutive calls.
    pub fn gaps(&self) -> Vec<Duration> {
        self.calls().windows(2).map(|w| w[1].at - w[0].at).collect()
    }
}

type AnswerFuture = Pin<Box<dyn Future<Output = Result<Response<()>, BoxError>> + Send>>;

fn answer(answer: Answer) -> AnswerFuture {
    match answer {
        Answer::Status(status) => {
            Box::pin(std::future::ready(Ok(Response::builder().status(status).body(()).unwrap())))
        }
        Answer::StatusWith(status, headers) => {
            let mut res = Response::builder().status(status);
            for (k, v) in headers {
                res = res.header(k, v);
            }
            Box::pin(std::future::ready(Ok(res.body(()).unwrap())))
        }
        Answer::Renewed => {
            let mut res = Response::builder().status(401).body(()).unwrap();
            res.extensions_mut().insert(unattended_core::CredentialRenewed);
            Box::pin(std::future::ready(Ok(res)))
        }
        Answer::Error(kind) => Box::pin(std::future::ready(Err(io::Error::from(kind).into()))),
        Answer::Hang => Box::pin(std::future::pending()),
    }
}

impl<B> tower::Service<Request<B>> for Script {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = AnswerFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.calls
            .lock()
            .unwrap()
            .push(Call { at: self.clock.now(), method: req.method().clone() });
        let next = self.answers.lock().unwrap().pop_front();
        answer(next.unwrap_or_else(|| self.fallback.clone()))
    }
}

pub fn get(uri: &str) -> Request<Bytes> {
    Request::get(uri).body(Bytes::new()).unwrap()
}

pub fn post(uri: &str) -> Request<Bytes> {
    Request::post(uri).body(Bytes::from_static(b"{}")).unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
