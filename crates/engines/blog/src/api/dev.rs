//! DEV (Forem API v1): `POST /api/articles`, `PUT /api/articles/{id}`, and
//! `GET /api/articles/me/all` pages to find a post again.
//!
//! The key goes in an `api-key` header (the service's `[auth]`); requests ask for
//! `application/vnd.forem.api-v1+json`. Validation failures are `422 {"error": "<sentence>"}`;
//! DEV's duplicate guards (the same title and body, or a canonical URL already used by a
//! published article) say "… has already been taken", which means a copy is already there. A
//! `5xx` answer may have been applied.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use unattended_client::{Body, Client, RequestBody};
use unattended_core::Clock;

use super::{ApiError, Article, Draft, marker_in, read_body, server_error};
use crate::settings::Target;

const ACCEPT: &str = "application/vnd.forem.api-v1+json";

/// Articles asked for per page of `me/all` (DEV allows up to 1000).
const PER_PAGE: usize = 100;

/// Pages looked through before giving up (100,000 articles).
const MAX_PAGES: usize = 1000;

/// DEV's API on a client.
#[derive(Clone, Debug)]
pub struct Dev {
    client: Client,
    clock: Clock,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
    url: String,
}

#[derive(Deserialize)]
struct Listed {
    id: u64,
    url: String,
    #[serde(default)]
    body_markdown: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
}

impl Dev {
    /// DEV through `client` (base URL `https://dev.to`, the key in `api-key`).
    pub fn new(client: Client, clock: Clock) -> Self {
        Self { client, clock }
    }

    /// Publishes `draft` as a new article.
    ///
    /// # Errors
    ///
    /// See [`ApiError`]; a `422` "already taken" is [`ApiError::Taken`].
    pub async fn create(&self, draft: &Draft) -> Result<Article, ApiError> {
        let res = self.send(Method::POST, "/api/articles", Some(article(draft))).await?;
        self.answer(res).await
    }

    /// Replaces the article `id` with `draft`.
    ///
    /// # Errors
    ///
    /// See [`ApiError`]; an article that is gone is [`ApiError::NotFound`].
    pub async fn update(&self, id: &str, draft: &Draft) -> Result<Article, ApiError> {
        let path = format!("/api/articles/{id}");
        let res = self.send(Method::PUT, &path, Some(article(draft))).await?;
        self.answer(res).await
    }

    /// The user's article whose body holds `marker`, published or not, looked for page by page.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn find(&self, marker: &str) -> Result<Option<Article>, ApiError> {
        let mut found = None;
        self.pages(|a| {
            if a.body_markdown.as_deref().is_some_and(|b| marker_in(b) == Some(marker)) {
                found = Some(Article { id: a.id.to_string(), url: a.url.clone() });
            }
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// Every article of the user that carries a marker, by marker.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn marked(&self) -> Result<Vec<(String, Article)>, ApiError> {
        let mut out = Vec::new();
        self.pages(|a| {
            if let Some(marker) = a.body_markdown.as_deref().and_then(marker_in) {
                out.push((marker.to_owned(), Article { id: a.id.to_string(), url: a.url.clone() }));
            }
            false
        })
        .await?;
        Ok(out)
    }

    /// Goes through `me/all` page by page, newest first, until `stop` says so or the pages end.
    async fn pages(&self, mut stop: impl FnMut(&Listed) -> bool + Send) -> Result<(), ApiError> {
        for page in 1..=MAX_PAGES {
            let path = format!("/api/articles/me/all?per_page={PER_PAGE}&page={page}");
            let req = Request::get(path)
                .header(http::header::ACCEPT, ACCEPT)
                .body(RequestBody::default())
                .map_err(|e| self.unreadable(format!("the request cannot be made: {e}")))?;
            let list: Vec<Listed> = self.client.json(req).await?;
            if list.iter().any(&mut stop) || list.len() < PER_PAGE {
                return Ok(());
            }
        }
        Err(self.unreadable(format!("more than {MAX_PAGES} pages of articles")))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Response<Body>, ApiError> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, ACCEPT)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(RequestBody::new(body))
            .map_err(|e| self.unreadable(format!("the request cannot be made: {e}")))?;
        Ok(self.client.send(req).await?)
    }

    /// An article from a create's or an update's answer, or what the refusal means.
    async fn answer(&self, res: Response<Body>) -> Result<Article, ApiError> {
        let status = res.status();
        let at = self.clock.wall();
        let bytes = read_body(Target::Dev, res.into_body(), at).await?;
        if status.is_success() {
            let created: Created = serde_json::from_slice(&bytes).map_err(|e| {
                self.unreadable(format!("{status} with an article that cannot be read: {e}"))
            })?;
            return Ok(Article { id: created.id.to_string(), url: created.url });
        }
        if status.is_server_error() {
            // (The client turns the 5xx it knows for passing failures into errors; these are
            // the others, which prove no more.)
            return Err(server_error(Target::Dev, status, at));
        }
        let message = serde_json::from_slice::<Refusal>(&bytes)
            .map(|r| r.error)
            .unwrap_or_else(|_| status.canonical_reason().unwrap_or("error").to_owned());
        let target = Target::Dev;
        Err(match status {
            StatusCode::UNPROCESSABLE_ENTITY if message.contains("has already been taken") => {
                ApiError::Taken { target, message }
            }
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Rejected { target, message },
            StatusCode::NOT_FOUND => ApiError::NotFound { target, message },
            _ => ApiError::Refused { target, status: status.as_u16(), message },
        })
    }

    fn unreadable(&self, message: String) -> ApiError {
        ApiError::Unreadable { target: Target::Dev, message, at: self.clock.wall() }
    }
}

/// The `{"article": {...}}` body of a create or an update.
fn article(draft: &Draft) -> Value {
    let mut fields = json!({
        "title": draft.title,
        "body_markdown": draft.body,
        "published": true,
        "tags": draft.tags,
    });
    for (name, value) in [
        ("series", &draft.series),
        ("main_image", &draft.cover_image),
        ("description", &draft.description),
        ("canonical_url", &draft.canonical_url),
    ] {
        if let Some(value) = value {
            fields[name] = Value::String(value.clone());
        }
    }
    json!({ "article": fields })
}
