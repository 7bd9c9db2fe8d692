//! The running runner over plain HTTP/1.1: the status page (`/`), `/status.json` (what
//! `unattended status --json` prints, with live progress) and `/metrics` (Prometheus text).
//!
//! Bound to loopback by default. With a token (required off loopback) every request must carry
//! it, as `Authorization: Bearer TOKEN` or as the password of HTTP Basic auth, so a browser asks
//! for it once. Nothing served holds a secret: the report is built from the store's records,
//! whose errors are redacted where they are made.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::net::TcpListener;
use unattended_core::Clock;
use unattended_runner::{RunnerConfig, RunnerView};
use unattended_store::Store;

use crate::status::{self, ProgressReport};

/// The page: one self-contained file (no CDN), drawing itself from `/status.json`.
const PAGE: &str = include_str!("page.html");

/// What the server reads from.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) view: RunnerView,
    pub(crate) store: Store,
    pub(crate) config: Arc<RunnerConfig>,
    pub(crate) clock: Clock,
    pub(crate) token: Option<Arc<SecretString>>,
}

/// Answers requests on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener, site: Site) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let site = site.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let site = site.clone();
                async move { Ok::<_, Infallible>(answer(&req, &site).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) async fn answer<B>(req: &Request<B>, site: &Site) -> Response<Full<Bytes>> {
    if let Some(token) = &site.token
        && !authorized(req.headers().get(header::AUTHORIZATION), token.expose_secret())
    {
        let mut res =
            text(StatusCode::UNAUTHORIZED, "a token is needed: see `[runner] http_token_env`\n");
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"unattended\", charset=\"UTF-8\""),
        );
        return res;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/" => {
            let mut res = body(StatusCode::OK, "text/html; charset=utf-8", PAGE.to_owned());
            // The page fetches only from here; nothing else may run in it.
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; img-src data:",
                ),
            );
            res
        }
        "/status.json" => match status_json(site).await {
            Ok(json) => body(StatusCode::OK, "application/json", json),
            Err(e) => {
                text(StatusCode::SERVICE_UNAVAILABLE, &format!("the store cannot be read: {e}\n"))
            }
        },
        "/metrics" => {
            body(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", site.view.metrics())
        }
        _ => text(StatusCode::NOT_FOUND, "not found: try /, /status.json or /metrics\n"),
    }
}

async fn status_json(site: &Site) -> Result<String, unattended_store::StoreError> {
    let mut report = status::report(&site.config, &site.store, site.clock.wall()).await?;
    // What only the running process knows: how far a running task has come.
    for live in site.view.tasks() {
        if let (Some(p), Some(task)) =
            (live.progress, report.tasks.iter_mut().find(|t| t.name == live.name))
        {
            task.progress =
                Some(ProgressReport { at: p.at, done: p.done, total: p.total, note: p.note });
        }
    }
    Ok(serde_json::to_string(&report).unwrap_or_else(|_| "{}".to_owned()))
}

/// Whether `given` carries `token`: `Bearer TOKEN`, or Basic with any user and `TOKEN` as the
/// password. Compared in constant time.
fn authorized(given: Option<&HeaderValue>, token: &str) -> bool {
    let Some(given) = given.and_then(|v| v.to_str().ok()) else { return false };
    let (scheme, rest) = given.split_once(' ').unwrap_or((given, ""));
    let offered = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return false;
        };
        match decoded.iter().position(|b| *b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    same(&offered, token.as_bytes())
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    body(status, "text/plain; charset=utf-8", text.to_owned())
}

fn body(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn the_token_is_taken_as_bearer_or_as_a_basic_password_and_nothing_else() {
        let basic = |creds: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds))
        };
        assert!(authorized(Some(&header("Bearer s3cret")), "s3cret"));
        assert!(authorized(Some(&header("bearer  s3cret ")), "s3cret"));
        assert!(authorized(Some(&header(&basic("me:s3cret"))), "s3cret"));
        assert!(authorized(Some(&header(&basic(":s3cret"))), "s3cret"));
        assert!(!authorized(None, "s3cret"));
        assert!(!authorized(Some(&header("Bearer s3cre")), "s3cret"));
        assert!(!authorized(Some(&header("Bearer s3cretx")), "s3cret"));
        assert!(!authorized(Some(&header("s3cret")), "s3cret"));
        assert!(!authorized(Some(&header(&basic("s3cret"))), "s3cret"), "no colon: no password");
        assert!(!authorized(Some(&header(&basic("s3cret:me"))), "s3cret"));
        assert!(!authorized(Some(&header("Basic !!!")), "s3cret"));
        assert!(!authorized(Some(&header("Digest s3cret")), "s3cret"));
    }
}
