//! A website for polite scraping: `robots.txt` (or its absence, or an outage), pages with
//! `ETag` and `Last-Modified` answering conditional requests with `304`, and a sitemap.
//!
//! Facts followed (RFC 9309, RFC 9110): `robots.txt` may be missing (`404`: crawl anything) or
//! unreachable (`5xx`: crawl nothing); `If-None-Match` is compared weakly and wins over
//! `If-Modified-Since`; a `304` has no body but the validators a `200` would have.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{HeaderValue, Method, Response, StatusCode};
use jiff::Timestamp;
use unattended_core::Clock;

use crate::body::MockBody;
use crate::fault::{Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;

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

#[derive(Debug)]
struct Page {
    html: String,
    version: u64,
    modified: Timestamp,
}

#[derive(Debug)]
struct State {
    robots: Robots,
    pages: BTreeMap<String, Page>,
}

/// The website mock; clones share its state.
#[derive(Clone, Debug)]
pub struct Website {
    state: Arc<Mutex<State>>,
    core: MockCore,
}

impl Website {
    /// A site with the given `robots.txt` and no page; faults draw from `seed`.
    pub fn new(clock: Clock, robots: Robots, seed: u64) -> Self {
        let state = State { robots, pages: BTreeMap::new() };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, seed) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes (or changes) the page at `path`: a new `ETag`, `Last-Modified` now.
    pub fn page(&self, path: &str, html: &str) {
        let now = self.core.clock.wall();
        let mut state = self.state();
        let version = state.pages.get(path).map_or(1, |p| p.version + 1);
        state.pages.insert(path.to_owned(), Page { html: html.to_owned(), version, modified: now });
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
                        "<url><loc>https://site.example{p}</loc><lastmod>{}</lastmod></url>",
                        page.modified
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
            let mut res = text(StatusCode::OK, &page.html);
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
