//! A website for polite scraping: `robots.txt` (or its absence, or an outage), pages with
//! `ETag` and `Last-Modified` answering conditional requests with `304`, pages that change or go,
//! big pages and gzip bombs (with a count of the bytes a client really pulled), and a sitemap.
//! [`Web`] puts several sites behind one transport, each on its own origin, so a crawler's
//! politeness per host can be checked in one test.
//!
//! Facts followed (RFC 9309, RFC 9110): `robots.txt` may be missing (`404`: crawl anything) or
//! unreachable (`5xx`: crawl nothing); `If-None-Match` is compared weakly and wins over
//! `If-Modified-Since`; a `304` has no body but the validators a `200` would have; a body is
//! gzipped only for a request that accepts it. `429`/`503` with `Retry-After` come from the
//! fault plan ([`Fault::RateLimited`], [`Fault::UnavailableFor`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use jiff::Timestamp;
use unattended_core::{BoxError, Clock};

use crate::body::MockBody;
use crate::fault::{Answer, Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;

/// The size of the pieces a big body is sent in.
const PIECE: usize = 64 * 1024;

/// What `/robots.txt` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Robots {
    /// `200` with this text.
    Text(String),
    /// `404`: no rules, crawl anything.
    Missing,
    /// `503`: unreachable, crawl nothing.
    Unreachable,
}

/// What a page's body is.
#[derive(Debug)]
enum Content {
    /// This HTML.
    Html(String),
    /// This many bytes of HTML, sent in 64 KiB pieces.
    Big(usize),
    /// This many bytes of HTML once gunzipped, gzipped when the request accepts it.
    Bomb(usize),
}

#[derive(Debug)]
struct Page {
    content: Content,
    version: u64,
    modified: Timestamp,
    /// Body bytes taken by clients, over every request.
    sent: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State {
    robots: Robots,
    pages: BTreeMap<String, Page>,
}

/// The website mock; clones share its state.
#[derive(Clone, Debug)]
pub struct Website {
    origin: Arc<str>,
    state: Arc<Mutex<State>>,
    core: MockCore,
}

impl Website {
    /// A site at `https://site.example` with the given `robots.txt` and no page; faults draw
    /// from `seed`.
    pub fn new(clock: Clock, robots: Robots, seed: u64) -> Self {
        Self::at("https://site.example", clock, robots, seed)
    }

    /// A site at `origin` (`https://shop.example`, as its sitemap names its pages).
    pub fn at(origin: &str, clock: Clock, robots: Robots, seed: u64) -> Self {
        let state = State { robots, pages: BTreeMap::new() };
        Self {
            origin: origin.trim_end_matches('/').into(),
            state: Arc::new(Mutex::new(state)),
            core: MockCore::new(clock, seed),
        }
    }

    /// The origin the site answers for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The full URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Changes what `/robots.txt` answers (a site that comes back after an outage).
    pub fn set_robots(&self, robots: Robots) {
        self.state().robots = robots;
    }

    /// Takes the page at `path` down: it answers `404` from now on.
    pub fn remove(&self, path: &str) {
        self.state().pages.remove(path);
    }

    /// Publishes a page of `bytes` bytes of HTML at `path`, sent in 64 KiB pieces.
    pub fn big_page(&self, path: &str, bytes: usize) {
        self.publish(path, Content::Big(bytes));
    }

    /// Publishes a gzip bomb at `path`: a small gzipped body that unpacks to `bytes` bytes of
    /// HTML (sent plain, and whole, to a request that does not accept gzip).
    pub fn gzip_bomb(&self, path: &str, bytes: usize) {
        self.publish(path, Content::Bomb(bytes));
    }

    /// The body bytes clients took of the page at `path` (compressed bytes for a bomb), over
    /// every request: how far a client read before it stopped.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.state().pages.get(path).map_or(0, |p| p.sent.load(Ordering::Relaxed))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes (or changes) the page at `path`: a new `ETag`, `Last-Modified` now.
    pub fn page(&self, path: &str, html: &str) {
        self.publish(path, Content::Html(html.to_owned()));
    }

    fn publish(&self, path: &str, content: Content) {
        let now = self.core.clock.wall();
        let mut state = self.state();
        let (version, sent) = match state.pages.get(path) {
            Some(p) => (p.version + 1, p.sent.clone()),
            None => (1, Arc::default()),
        };
        state.pages.insert(path.to_owned(), Page { content, version, modified: now, sent });
    }

    /// Injects `fault` into `route` when `trigger` fires.
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    fn answer(&self, method: &Method, path: &str, headers: &http::HeaderMap) -> Response<MockBody> {
        let state = self.state();
        if *method != Method::GET && *method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        if path == "/robots.txt" {
            return match &state.robots {
                Robots::Text(rules) => text(StatusCode::OK, rules),
                Robots::Missing => text(StatusCode::NOT_FOUND, "not found\n"),
                Robots::Unreachable => text(StatusCode::SERVICE_UNAVAILABLE, "unavailable\n"),
            };
        }
        if path == "/sitemap.xml" {
            let urls: String = state
                .pages
                .iter()
                .map(|(p, page)| {
                    format!(
                        "<url><loc>{}{p}</loc><lastmod>{}</lastmod></url>",
                        self.origin, page.modified
                    )
                })
                .collect();
            let xml = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>"#
            );
            return text(StatusCode::OK, &xml);
        }
        let Some(page) = state.pages.get(path) else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        let etag = format!("\"v{}\"", page.version);
        let modified = page.modified.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let not_modified = match headers
            .get(http::header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            Some(tags) => tags.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            }),
            None => headers
                .get(http::header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
                .is_some_and(|since| page.modified.as_second() <= since.timestamp().as_second()),
        };
        let mut res = if not_modified {
            let mut res = Response::new(MockBody::empty());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res
        } else {
            let mut res = page_response(page, accepts_gzip(headers));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res
        };
        if let (Ok(etag), Ok(modified)) = (etag.parse(), modified.parse()) {
            res.headers_mut().insert(http::header::ETAG, etag);
            res.headers_mut().insert(http::header::LAST_MODIFIED, modified);
        }
        res
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a weight above zero.
fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    let codings = headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    codings.into_iter().any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let weight = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        (name.eq_ignore_ascii_case("gzip") || name == "*") && weight > 0.0
    })
}

/// `bytes` bytes of HTML: a page of filler.
fn filler(bytes: usize) -> Vec<u8> {
    let head = b"<html><body><h1>big</h1><p>";
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(&head[..head.len().min(bytes)]);
    out.resize(bytes, b'x');
    out
}

fn page_response(page: &Page, gzip: bool) -> Response<MockBody> {
    let sent = page.sent.clone();
    let (body, encoded) = match &page.content {
        Content::Html(html) => (MockBody::counted([Bytes::from(html.clone())], sent), false),
        Content::Big(bytes) => {
            let all = Bytes::from(filler(*bytes));
            let pieces =
                (0..all.len()).step_by(PIECE).map(|i| all.slice(i..(i + PIECE).min(all.len())));
            (MockBody::counted(pieces.collect::<Vec<_>>(), sent), false)
        }
        Content::Bomb(bytes) if gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let packed = encoder
                .write_all(&filler(*bytes))
                .and_then(|()| encoder.finish())
                .unwrap_or_default();
            let all = Bytes::from(packed);
            let pieces =
                (0..all.len()).step_by(1024).map(|i| all.slice(i..(i + 1024).min(all.len())));
            (MockBody::counted(pieces.collect::<Vec<_>>(), sent), true)
        }
        Content::Bomb(bytes) => (MockBody::counted([Bytes::from(filler(*bytes))], sent), false),
    };
    let mut res = Response::new(body);
    if encoded {
        res.headers_mut().insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res.headers_mut().insert(http::header::VARY, HeaderValue::from_static("accept-encoding"));
    res
}

fn text(status: StatusCode, body: &str) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body.to_owned()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

impl Mock for Website {
    fn core(&self) -> &MockCore {
        &self.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        _body: &[u8],
        _fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        Some(self.answer(&parts.method, parts.uri.path(), &parts.headers))
    }
}

/// Several [`Website`]s behind one transport, each answering for its origin. A request for an
/// origin no site has fails as a refused connection would.
#[derive(Clone, Debug, Default)]
pub struct Web {
    sites: Arc<BTreeMap<String, Website>>,
}

impl Web {
    /// The sites, by their origins.
    pub fn new(sites: impl IntoIterator<Item = Website>) -> Self {
        let sites = sites.into_iter().map(|s| (s.origin.to_ascii_lowercase(), s)).collect();
        Self { sites: Arc::new(sites) }
    }

    /// The site at `origin`, if there is one.
    pub fn site(&self, origin: &str) -> Option<&Website> {
        self.sites.get(&origin.trim_end_matches('/').to_ascii_lowercase())
    }

    fn route<B>(&self, req: &http::Request<B>) -> Option<Website> {
        let uri = req.uri();
        let scheme = uri.scheme_str().unwrap_or("http");
        let authority = match uri.authority() {
            Some(a) => a.as_str().to_owned(),
            None => req.headers().get(http::header::HOST)?.to_str().ok()?.to_owned(),
        };
        self.site(&format!("{scheme}://{authority}")).cloned()
    }
}

impl<B> tower_service::Service<http::Request<B>> for Web
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<MockBody>;
    type Error = BoxError;
    type Future = Answer;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Answer {
        match self.route(&req) {
            Some(site) => crate::fault::answer_request(site, req),
            None => Box::pin(std::future::ready(Err(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )
            .into()))),
        }
    }
}
