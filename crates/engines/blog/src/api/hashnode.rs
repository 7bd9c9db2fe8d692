//! Hashnode's GraphQL API: `publishPost`, `updatePost`, and `me { posts }` pages to find a post
//! again.
//!
//! Every call is a `POST /` with `{"query", "variables"}` and the personal access token as the
//! whole `Authorization` header (the service's `[auth]`). Most failures come as HTTP `200` with
//! `errors[].extensions.code`; they are read here into the same classes the layers use:
//! `UNAUTHENTICATED` → re-authorize, `TOO_MANY_REQUESTS` → retry at the time given (its
//! `Retry-After`, else a minute: the limits are per minute), `BAD_USER_INPUT` → the post fails
//! with Hashnode's message, `NOT_FOUND` or `FORBIDDEN` to a `publishPost` → the settings name a
//! publication the token cannot publish to (the task stops). A `5xx` answer may have been
//! applied. An answer with neither data nor errors is never taken for a success.
//!
//! A post's `description` is Hashnode's subtitle and its cover image `coverImageOptions`; its
//! `series` is left to DEV (a Hashnode series is chosen by id, which the front matter does not
//! know).
//!
//! Being `POST`s, GraphQL calls would all be writes to the time-window gate and unsafe to retry:
//! the lookups are marked reads (`ActionClass("read")`) and retryable, and so are updates (an
//! update sent twice leaves the post as once); only `publishPost` is neither.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use unattended_client::{Client, RequestBody};
use unattended_core::Clock;
use unattended_core::headers::RetryAfter;
use unattended_gate::ActionClass;
use unattended_retry::Retryable;

use super::{ApiError, Article, Draft, marker_in, read_body, server_error};
use crate::settings::Target;

const PUBLISH: &str = "mutation PublishPost($input: PublishPostInput!) { \
    publishPost(input: $input) { post { id url } } }";

const UPDATE: &str = "mutation UpdatePost($input: UpdatePostInput!) { \
    updatePost(input: $input) { post { id url } } }";

const MY_POSTS: &str = "query MyPosts($page: Int!) { me { posts(pageSize: 20, page: $page) { \
    nodes { id url content { markdown } } pageInfo { hasNextPage nextPage } } } }";

/// Pages of 20 looked through before giving up (20,000 posts).
const MAX_PAGES: i64 = 1000;

/// How long to wait when Hashnode throttles without saying for how long.
const THROTTLE_WAIT: Duration = Duration::from_secs(60);

/// Hashnode's API on a client, for one publication.
#[derive(Clone, Debug)]
pub struct Hashnode {
    client: Client,
    publication: String,
    clock: Clock,
}

/// What kind of call: it decides the gate's class and whether the client may retry it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Create,
    Update,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct PostRef {
    id: String,
    url: String,
}

#[derive(Deserialize)]
struct Payload {
    post: Option<PostRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Published {
    publish_post: Option<Payload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Updated {
    update_post: Option<Payload>,
}

#[derive(Deserialize)]
struct Me {
    me: Option<MyUser>,
}

#[derive(Deserialize)]
struct MyUser {
    posts: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<Node>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    url: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    markdown: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    #[serde(default)]
    next_page: Option<i64>,
}

impl Hashnode {
    /// Hashnode through `client` (base URL `https://gql.hashnode.com`, the token in
    /// `Authorization`), publishing to `publication`.
    pub fn new(client: Client, publication: impl Into<String>, clock: Clock) -> Self {
        Self { client, publication: publication.into(), clock }
    }

    /// Publishes `draft` as a new post (`originalArticleURL` is its canonical URL).
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn create(&self, draft: &Draft) -> Result<Article, ApiError> {
        let mut input = self.input(draft);
        input["publicationId"] = Value::String(self.publication.clone());
        let answer: Published = self
            .call(PUBLISH, json!({ "input": input }), Call::Create)
            .await
            .map_err(|e| match e {
            // publishPost's only object is the publication: the settings name a wrong one.
            ApiError::NotFound { target, message } | ApiError::Forbidden { target, message } => {
                ApiError::Publication { target, publication: self.publication.clone(), message }
            }
            other => other,
        })?;
        self.post(answer.publish_post)
    }

    /// Replaces the post `id` with `draft`.
    ///
    /// # Errors
    ///
    /// See [`ApiError`]; a post that is gone is [`ApiError::NotFound`].
    pub async fn update(&self, id: &str, draft: &Draft) -> Result<Article, ApiError> {
        let mut input = self.input(draft);
        input["id"] = Value::String(id.to_owned());
        let answer: Updated = self.call(UPDATE, json!({ "input": input }), Call::Update).await?;
        self.post(answer.update_post)
    }

    /// The user's post whose Markdown holds `marker`, looked for page by page.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn find(&self, marker: &str) -> Result<Option<Article>, ApiError> {
        let mut found = None;
        self.pages(|n| {
            if n.content.as_ref().is_some_and(|c| marker_in(&c.markdown) == Some(marker)) {
                found = Some(Article { id: n.id.clone(), url: n.url.clone() });
            }
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// Every post of the user that carries a marker, by marker.
    ///
    /// # Errors
    ///
    /// See [`ApiError`].
    pub async fn marked(&self) -> Result<Vec<(String, Article)>, ApiError> {
        let mut out = Vec::new();
        self.pages(|n| {
            if let Some(marker) = n.content.as_ref().and_then(|c| marker_in(&c.markdown)) {
                out.push((marker.to_owned(), Article { id: n.id.clone(), url: n.url.clone() }));
            }
            false
        })
        .await?;
        Ok(out)
    }

    /// Goes through `me { posts }` page by page, newest first, until `stop` says so or the
    /// pages end.
    async fn pages(&self, mut stop: impl FnMut(&Node) -> bool + Send) -> Result<(), ApiError> {
        let mut page = 1;
        while page <= MAX_PAGES {
            let answer: Me = self.call(MY_POSTS, json!({ "page": page }), Call::Read).await?;
            let Some(me) = answer.me else {
                return Err(self.unreadable("`me` is null".into()));
            };
            if me.posts.nodes.iter().any(&mut stop) {
                return Ok(());
            }
            match me.posts.page_info.next_page {
                Some(next) if me.posts.page_info.has_next_page && next > page => page = next,
                _ => return Ok(()),
            }
        }
        Err(self.unreadable(format!("more than {MAX_PAGES} pages of posts")))
    }

    /// The fields a create and an update share.
    fn input(&self, draft: &Draft) -> Value {
        let tags: Vec<Value> =
            draft.tags.iter().map(|t| json!({ "slug": slug(t), "name": t })).collect();
        let mut input = json!({
            "title": draft.title,
            "contentMarkdown": draft.body,
            "tags": tags,
        });
        if let Some(url) = &draft.canonical_url {
            input["originalArticleURL"] = Value::String(url.clone());
        }
        if let Some(cover) = &draft.cover_image {
            input["coverImageOptions"] = json!({ "coverImageURL": cover });
        }
        if let Some(description) = &draft.description {
            input["subtitle"] = Value::String(description.clone());
        }
        input
    }

    fn post(&self, payload: Option<Payload>) -> Result<Article, ApiError> {
        match payload.and_then(|p| p.post) {
            Some(post) => Ok(Article { id: post.id, url: post.url }),
            None => Err(self.unreadable("an answer without the post".into())),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
        kind: Call,
    ) -> Result<T, ApiError> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut req = Request::post("/")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/graphql-response+json, application/json")
            .body(RequestBody::new(Bytes::from(body)))
            .map_err(|e| self.unreadable(format!("the request cannot be made: {e}")))?;
        if kind == Call::Read {
            req.extensions_mut().insert(ActionClass::new("read"));
        }
        if kind != Call::Create {
            req.extensions_mut().insert(Retryable);
        }
        let res = self.client.send(req).await?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| RetryAfter::parse(v.as_bytes()));
        let at = self.clock.wall();
        let bytes = read_body(Target::Hashnode, res.into_body(), at).await?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            if status.is_server_error() {
                server_error(Target::Hashnode, status, at)
            } else if status.is_success() {
                self.unreadable(format!("not a GraphQL answer: {e}"))
            } else {
                ApiError::Refused {
                    target: Target::Hashnode,
                    status: status.as_u16(),
                    message: status.canonical_reason().unwrap_or("error").to_owned(),
                }
            }
        })?;
        if let Some(first) = answer.errors.as_ref().and_then(|e| e.first()) {
            return Err(self.error(first, status.as_u16(), retry_after));
        }
        if status.is_server_error() {
            return Err(server_error(Target::Hashnode, status, at));
        }
        if !status.is_success() {
            let message = status.canonical_reason().unwrap_or("error").to_owned();
            return Err(ApiError::Refused {
                target: Target::Hashnode,
                status: status.as_u16(),
                message,
            });
        }
        let Some(data) = answer.data.filter(|d| !d.is_null()) else {
            return Err(self.unreadable("an answer with neither data nor errors".into()));
        };
        serde_json::from_value(data)
            .map_err(|e| self.unreadable(format!("data of another shape: {e}")))
    }

    /// What a GraphQL error's code means.
    fn error(&self, e: &GraphQlError, status: u16, retry_after: Option<RetryAfter>) -> ApiError {
        let target = Target::Hashnode;
        let message = e.message.clone();
        let code = e.extensions.as_ref().and_then(|x| x.code.clone()).unwrap_or_default();
        let at = self.clock.wall();
        match code.as_str() {
            "UNAUTHENTICATED" => ApiError::Unauthenticated { target, message },
            "FORBIDDEN" => ApiError::Forbidden { target, message },
            "TOO_MANY_REQUESTS" | "RATE_LIMITED" | "THROTTLED" => {
                let until = retry_after.map_or_else(
                    || unattended_core::clock::add_saturating(at, THROTTLE_WAIT),
                    |r| r.until(at),
                );
                ApiError::Throttled { target, until, message }
            }
            "BAD_USER_INPUT" => ApiError::Rejected { target, message },
            "NOT_FOUND" => ApiError::NotFound { target, message },
            "GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED" | "BAD_REQUEST" => {
                ApiError::Refused { target, status, message }
            }
            _ => ApiError::Server {
                target,
                code: if code.is_empty() { "no code".to_owned() } else { code },
                message,
                at,
            },
        }
    }

    fn unreadable(&self, message: String) -> ApiError {
        ApiError::Unreadable { target: Target::Hashnode, message, at: self.clock.wall() }
    }
}

/// A tag's slug as Hashnode makes them: lower case, words joined by `-`.
fn slug(tag: &str) -> String {
    let mut out = String::new();
    for c in tag.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}
