//! What the alert tests share: a store, a clock, and an in-process webhook receiver.

#![allow(dead_code, unreachable_pub)]

pub mod smtp;

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use jiff::Timestamp;
use unattended_alerts::Transport;
use unattended_core::{BoxError, Clock};
use unattended_store::{Store, StoreConfig};

pub fn t0() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

pub fn clock() -> Clock {
    Clock::starting_at(t0())
}

pub async fn open(path: &Path, clock: Clock) -> Store {
    Store::open(path, StoreConfig::new().inline(true), clock).await.unwrap()
}

/// How the receiver answers while it is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// `503 Service Unavailable`.
    Status503,
    /// The connection is refused.
    Refused,
}

/// One request that reached the receiver.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Timestamp,
    pub path: String,
    pub content_type: Option<String>,
    pub json: serde_json::Value,
    pub answered: StatusCode,
}

/// A webhook receiver, in-process: down (as `down` says) until `up_at`, then `204`.
#[derive(Clone, Debug)]
pub struct Hook {
    clock: Clock,
    down: Down,
    up_at: Timestamp,
    log: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<Vec<Timestamp>>>,
}

impl Hook {
    pub fn up(clock: Clock) -> Self {
        Self::down_until(clock, Down::Status503, t0())
    }

    pub fn down_until(clock: Clock, down: Down, up_at: Timestamp) -> Self {
        Self { clock, down, up_at, log: Arc::default(), refused: Arc::default() }
    }

    /// The requests that reached it (a refused connection is not one).
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Those it answered with a `2xx`.
    pub fn taken(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.answered.is_success()).collect()
    }

    /// When connections were refused.
    pub fn refused(&self) -> Vec<Timestamp> {
        self.refused.lock().unwrap().clone()
    }

    pub fn transport(&self) -> Transport {
        let hook = self.clone();
        unattended_alerts::transport(tower::service_fn(move |req: Request<Full<Bytes>>| {
            let hook = hook.clone();
            async move {
                let now = hook.clock.wall();
                let up = now >= hook.up_at;
                if !up && hook.down == Down::Refused {
                    hook.refused.lock().unwrap().push(now);
                    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                    return Err::<Response<Full<Bytes>>, BoxError>(refused.into());
                }
                let content_type = req
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_owned());
                let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let json = serde_json::from_slice(&body).unwrap();
                let answered =
                    if up { StatusCode::NO_CONTENT } else { StatusCode::SERVICE_UNAVAILABLE };
                hook.log.lock().unwrap().push(Received {
                    at: now,
                    path,
                    content_type,
                    json,
                    answered,
                });
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = answered;
                Ok(res)
            }
        }))
    }
}
