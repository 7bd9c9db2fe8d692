//! DEV (Forem API v1): publish, list and update articles, with Forem's answers.
//!
//! Facts followed: `POST /api/articles` with an `api-key` header and `{"article": {...}}` gives
//! `201 Created`, a `Location` and the article; `GET /api/articles/me/all` lists your own
//! (`per_page`, `page`); `PUT /api/articles/{id}` updates (the slug and URL stay those made at
//! creation). A bad, missing or revoked key gets
//! `401 {"error":"unauthorized","status":401}`; validation `422 {"error":"<sentence>",
//! "status":422}`, including a repeated `canonical_url` among published articles or a repeated
//! title + body ("has already been taken"); unknown ids `404 {"error":"not found","status":404}`.
//! Writes are throttled to one per second per key (Rack::Attack: `429`, `Retry-After`, a
//! plain-text body), reads to three per second.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;
use unattended_core::Clock;

use crate::body::MockBody;
use crate::fault::{Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;

#[derive(Clone, Debug)]
struct Article {
    id: u64,
    /// Made from the title at creation; a later title keeps it (and the URL).
    slug: String,
    owner: String,
    title: String,
    body_markdown: String,
    published: bool,
    canonical_url: Option<String>,
    tags: Vec<String>,
    series: Option<String>,
    main_image: Option<String>,
    published_at: Option<String>,
}

impl Article {
    fn to_json(&self) -> Value {
        let slug = &self.slug;
        json!({
            "type_of": "article",
            "id": self.id,
            "title": self.title,
            "slug": slug,
            "path": format!("/test-user/{slug}"),
            "url": format!("https://dev.to/test-user/{slug}"),
            "canonical_url": self.canonical_url.clone().unwrap_or_else(|| format!("https://dev.to/test-user/{slug}")),
            "published": self.published,
            "published_at": self.published_at,
            "body_markdown": self.body_markdown,
            "tag_list": self.tags,
            "cover_image": self.main_image,
            "series": self.series,
        })
    }
}

#[derive(Debug)]
struct State {
    keys: HashSet<String>,
    articles: Vec<Article>,
    next_id: u64,
    writes: HashMap<String, Instant>,
    reads: HashMap<String, VecDeque<Instant>>,
}

/// The DEV mock. Clones share its state; it is a `Service<http::Request<B>>` and can be served on
/// 127.0.0.1 with [`serve`](crate::serve::serve).
#[derive(Clone, Debug)]
pub struct DevTo {
    state: Arc<Mutex<State>>,
    core: MockCore,
}

/// A write throttled by the mock: the window is one second per key.
const WRITE_PERIOD: Duration = Duration::from_secs(1);

impl DevTo {
    /// A mock knowing no key yet; faults draw from `seed`.
    pub fn new(clock: Clock, seed: u64) -> Self {
        let state = State {
            keys: HashSet::new(),
            articles: Vec::new(),
            next_id: 1000,
            writes: HashMap::new(),
            reads: HashMap::new(),
        };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, seed) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an API key and returns it.
    pub fn key(&self, key: &str) -> String {
        self.state().keys.insert(key.to_owned());
        key.to_owned()
    }

    /// Revokes an API key: it is refused from now on (`401`).
    pub fn revoke(&self, key: &str) {
        self.state().keys.remove(key);
    }

    /// Injects `fault` into `route` when `trigger` fires.
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    /// The titles of the articles stored, in creation order.
    pub fn titles(&self) -> Vec<String> {
        self.state().articles.iter().map(|a| a.title.clone()).collect()
    }

    /// The articles stored, in creation order, as `GET /api/articles/me/all` shows them.
    pub fn articles(&self) -> Vec<Value> {
        self.state().articles.iter().map(Article::to_json).collect()
    }

    fn answer(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        key: Option<&str>,
        body: &[u8],
    ) -> Response<MockBody> {
        let now = self.core.clock.now();
        let mut state = self.state();
        let Some(key) = key.filter(|k| state.keys.contains(*k)) else {
            return error(StatusCode::UNAUTHORIZED, "unauthorized");
        };
        let key = key.to_owned();
        let write = *method != Method::GET;
        if write {
            if let Some(last) = state.writes.get(&key)
                && now < *last + WRITE_PERIOD
            {
                let wait = (*last + WRITE_PERIOD - now).as_secs().max(1);
                return throttled(wait);
            }
            state.writes.insert(key.clone(), now);
        } else {
            let reads = state.reads.entry(key.clone()).or_default();
            reads.retain(|t| now < *t + Duration::from_secs(1));
            if reads.len() >= 3 {
                return throttled(1);
            }
            reads.push_back(now);
        }
        match (method, path.trim_end_matches('/')) {
            (&Method::POST, "/api/articles") => self.create(&mut state, &key, body),
            (&Method::GET, "/api/articles/me/all") => {
                let param = |name: &str| {
                    query
                        .and_then(|q| {
                            q.split('&').find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                };
                let per_page = param("per_page").unwrap_or(30).clamp(1, 1000);
                let page = param("page").unwrap_or(1).max(1);
                let mine: Vec<Value> = state
                    .articles
                    .iter()
                    .rev()
                    .filter(|a| a.owner == key)
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(Article::to_json)
                    .collect();
                json_response(StatusCode::OK, &Value::Array(mine))
            }
            (&Method::PUT, p) if p.starts_with("/api/articles/") => {
                let id = p["/api/articles/".len()..].parse::<u64>().ok();
                self.update(&mut state, &key, id, body)
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn create(&self, state: &mut State, key: &str, body: &[u8]) -> Response<MockBody> {
        let Some(fields) = article_fields(body) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "article param must be a JSON object");
        };
        let title = fields.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
        if title.is_empty() {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "Title can't be blank");
        }
        let body_markdown =
            fields.get("body_markdown").and_then(Value::as_str).unwrap_or_default().to_owned();
        let published = fields.get("published").and_then(Value::as_bool).unwrap_or(false);
        let canonical_url = fields.get("canonical_url").and_then(Value::as_str).map(str::to_owned);
        if state
            .articles
            .iter()
            .any(|a| a.owner == key && a.title == title && a.body_markdown == body_markdown)
        {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "Body markdown has already been taken");
        }
        if published
            && canonical_url.is_some()
            && state.articles.iter().any(|a| a.published && a.canonical_url == canonical_url)
        {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "Canonical url has already been taken");
        }
        state.next_id += 1;
        let slug = format!("{}-{}", title.to_lowercase().replace(' ', "-"), state.next_id);
        let article = Article {
            id: state.next_id,
            slug,
            owner: key.to_owned(),
            title,
            body_markdown,
            published,
            canonical_url,
            tags: tags(fields.get("tags")),
            series: text(&fields, "series"),
            main_image: text(&fields, "main_image"),
            published_at: published.then(|| self.core.clock.wall().to_string()),
        };
        let json = article.to_json();
        state.articles.push(article);
        let mut res = json_response(StatusCode::CREATED, &json);
        if let Some(url) = json["url"].as_str().and_then(|u| u.parse().ok()) {
            res.headers_mut().insert(http::header::LOCATION, url);
        }
        res
    }

    fn update(
        &self,
        state: &mut State,
        key: &str,
        id: Option<u64>,
        body: &[u8],
    ) -> Response<MockBody> {
        let Some(fields) = article_fields(body) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "article param must be a JSON object");
        };
        let now = self.core.clock.wall().to_string();
        let Some(article) = state.articles.iter_mut().find(|a| Some(a.id) == id && a.owner == key)
        else {
            return error(StatusCode::NOT_FOUND, "not found");
        };
        if let Some(title) = fields.get("title").and_then(Value::as_str) {
            article.title = title.to_owned();
        }
        if let Some(body) = fields.get("body_markdown").and_then(Value::as_str) {
            article.body_markdown = body.to_owned();
        }
        if let Some(url) = fields.get("canonical_url") {
            article.canonical_url = url.as_str().map(str::to_owned);
        }
        if fields.contains_key("tags") {
            article.tags = tags(fields.get("tags"));
        }
        if fields.contains_key("series") {
            article.series = text(&fields, "series");
        }
        if fields.contains_key("main_image") {
            article.main_image = text(&fields, "main_image");
        }
        if let Some(published) = fields.get("published").and_then(Value::as_bool) {
            if published && !article.published {
                article.published_at = Some(now);
            }
            article.published = published;
        }
        json_response(StatusCode::OK, &article.to_json())
    }
}

fn article_fields(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()?.get("article")? {
        Value::Object(fields) => Some(fields.clone()),
        _ => None,
    }
}

fn text(fields: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    fields.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn tags(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(Value::String(list)) => list.split(',').map(|t| t.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(status, &json!({"error": message, "status": status.as_u16()}))
}

fn throttled(retry_after: u64) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full("Retry later\n"));
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    res.headers_mut().insert(http::header::RETRY_AFTER, retry_after.into());
    res
}

impl Mock for DevTo {
    fn core(&self) -> &MockCore {
        &self.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        _fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        let key = parts.headers.get("api-key").and_then(|v| v.to_str().ok());
        Some(self.answer(&parts.method, parts.uri.path(), parts.uri.query(), key, body))
    }
}
