//! Hashnode's GraphQL API: publish, update and list your own posts, with Hashnode's answers.
//!
//! Facts followed: one endpoint, `POST /` (`https://gql.hashnode.com`), a JSON body
//! `{"query", "variables", "operationName"}`, the personal access token as the whole
//! `Authorization` header (no scheme). `publishPost(input: PublishPostInput!)` and
//! `updatePost(input: UpdatePostInput!)` answer `{ post { … } }`;
//! `me { posts(pageSize: Int!, page: Int!) { nodes { … } pageInfo { hasNextPage nextPage }
//! totalDocuments } }` lists your own posts, newest first, at most 20 a page. An answer holds
//! only the fields the query selects.
//!
//! Errors come as HTTP `200` with `data: null` and `errors[].extensions.code`:
//! `UNAUTHENTICATED` (no or unknown token), `FORBIDDEN` (another user's publication),
//! `NOT_FOUND`, `BAD_USER_INPUT` (with the reason as the message) and `TOO_MANY_REQUESTS` (past
//! the per-token limit of mutations or queries per minute, 500 and 20,000 by default, with a
//! `Retry-After`). A body that is not a GraphQL request, a query that does not parse, or one
//! that asks for a field or argument the schema does not have is HTTP `400`
//! (`BAD_REQUEST`, `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`); fragments are not
//! supported by this mock and are refused the same way. There is no duplicate guard and no
//! idempotency key: a replayed `publishPost` makes a second post.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use graphql_parser::query::{
    Definition, Document, Field, OperationDefinition, Selection, SelectionSet, Value as GqlValue,
};
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use unattended_core::Clock;

use crate::body::MockBody;
use crate::fault::{Fault, Mock, MockCore, Route, Trigger};
use crate::log::RequestLog;

type QDocument<'a> = Document<'a, &'a str>;
type QOperation<'a> = OperationDefinition<'a, &'a str>;
type QSet<'a> = SelectionSet<'a, &'a str>;
type QField<'a> = Field<'a, &'a str>;
type QValue<'a> = GqlValue<'a, &'a str>;

/// The user every token of the mock belongs to.
const USER: &str = "test-user";

/// The largest page of `me { posts }`.
const MAX_PAGE_SIZE: i64 = 20;

#[derive(Clone, Debug)]
struct Post {
    id: String,
    publication: String,
    host: String,
    title: String,
    subtitle: Option<String>,
    slug: String,
    markdown: String,
    tags: Vec<(String, String)>,
    original: Option<String>,
    cover: Option<String>,
    published_at: String,
    updated_at: Option<String>,
}

impl Post {
    /// Every field of the `Post` type (and the types below it), for the selection to pick from.
    fn to_json(&self) -> Value {
        let tags: Vec<Value> = self
            .tags
            .iter()
            .map(|(slug, name)| {
                json!({"__typename": "Tag", "id": format!("tag-{slug}"), "slug": slug, "name": name})
            })
            .collect();
        json!({
            "__typename": "Post",
            "id": self.id,
            "slug": self.slug,
            "title": self.title,
            "subtitle": self.subtitle,
            "url": format!("https://{}/{}", self.host, self.slug),
            "canonicalUrl": self.original,
            "publishedAt": self.published_at,
            "updatedAt": self.updated_at,
            "content": {
                "__typename": "Content",
                "markdown": self.markdown,
                "html": format!("<p>{}</p>", self.markdown),
                "text": self.markdown,
            },
            "tags": tags,
            "coverImage": self.cover.as_ref().map(|url| json!({"__typename": "PostCoverImage", "url": url})),
            "publication": {"__typename": "Publication", "id": self.publication, "url": format!("https://{}", self.host)},
        })
    }
}

#[derive(Debug)]
struct Publication {
    id: String,
    host: String,
}

#[derive(Debug)]
struct State {
    tokens: HashSet<String>,
    publications: Vec<Publication>,
    posts: Vec<Post>,
    next_id: u128,
    mutations: HashMap<String, VecDeque<Instant>>,
    queries: HashMap<String, VecDeque<Instant>>,
    mutations_per_minute: usize,
    queries_per_minute: usize,
    operations: Vec<String>,
}

/// The Hashnode mock. Clones share its state; it is a `Service<http::Request<B>>` and can be
/// served on 127.0.0.1 with [`serve`](crate::serve::serve).
#[derive(Clone, Debug)]
pub struct Hashnode {
    state: Arc<Mutex<State>>,
    core: MockCore,
}

/// A GraphQL error: its code, message and the field it is about.
#[derive(Debug)]
struct GqlError {
    code: &'static str,
    message: String,
    path: Option<String>,
    at: Option<(usize, usize)>,
}

impl GqlError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), path: None, at: None }
    }

    fn on(mut self, field: &QField<'_>) -> Self {
        self.path = Some(field.alias.unwrap_or(field.name).to_owned());
        self.at = Some((field.position.line, field.position.column));
        self
    }

    fn to_json(&self) -> Value {
        let mut e = json!({"message": self.message, "extensions": {"code": self.code}});
        if let Some((line, column)) = self.at {
            e["locations"] = json!([{"line": line, "column": column}]);
        }
        if let Some(path) = &self.path {
            e["path"] = json!([path]);
        }
        e
    }
}

/// What a field of the schema holds.
#[derive(Clone, Copy)]
enum Kind {
    Scalar,
    Object(&'static str),
    List(&'static str),
}

/// The part of Hashnode's schema the mock answers.
fn fields_of(type_name: &str) -> &'static [(&'static str, Kind)] {
    use Kind::{List, Object, Scalar};
    match type_name {
        "Query" => &[("me", Object("MyUser"))],
        "Mutation" => &[
            ("publishPost", Object("PublishPostPayload")),
            ("updatePost", Object("UpdatePostPayload")),
        ],
        "MyUser" => &[
            ("id", Scalar),
            ("username", Scalar),
            ("name", Scalar),
            ("posts", Object("UserPostConnection")),
        ],
        "PublishPostPayload" | "UpdatePostPayload" => &[("post", Object("Post"))],
        "UserPostConnection" => &[
            ("nodes", List("Post")),
            ("pageInfo", Object("OffsetPageInfo")),
            ("totalDocuments", Scalar),
        ],
        "OffsetPageInfo" => &[
            ("hasNextPage", Scalar),
            ("hasPreviousPage", Scalar),
            ("nextPage", Scalar),
            ("previousPage", Scalar),
        ],
        "Post" => &[
            ("id", Scalar),
            ("slug", Scalar),
            ("title", Scalar),
            ("subtitle", Scalar),
            ("url", Scalar),
            ("canonicalUrl", Scalar),
            ("publishedAt", Scalar),
            ("updatedAt", Scalar),
            ("content", Object("Content")),
            ("tags", List("Tag")),
            ("coverImage", Object("PostCoverImage")),
            ("publication", Object("Publication")),
        ],
        "Content" => &[("markdown", Scalar), ("html", Scalar), ("text", Scalar)],
        "Tag" => &[("id", Scalar), ("name", Scalar), ("slug", Scalar)],
        "PostCoverImage" => &[("url", Scalar)],
        "Publication" => &[("id", Scalar), ("url", Scalar)],
        _ => &[],
    }
}

/// The arguments each field takes, and which of them are required.
fn arguments_of(type_name: &str, field: &str) -> &'static [(&'static str, &'static str, bool)] {
    match (type_name, field) {
        ("Mutation", "publishPost") => &[("input", "PublishPostInput!", true)],
        ("Mutation", "updatePost") => &[("input", "UpdatePostInput!", true)],
        ("MyUser", "posts") => &[("pageSize", "Int!", true), ("page", "Int!", true)],
        _ => &[],
    }
}

/// Checks a selection set against the schema, as a GraphQL server does before running anything.
fn validate(set: &QSet<'_>, type_name: &str) -> Result<(), GqlError> {
    for item in &set.items {
        let Selection::Field(field) = item else {
            return Err(GqlError::new(
                "GRAPHQL_VALIDATION_FAILED",
                "fragments are not supported by this mock",
            ));
        };
        if field.name == "__typename" {
            continue;
        }
        let Some((_, kind)) = fields_of(type_name).iter().find(|(name, _)| *name == field.name)
        else {
            return Err(GqlError::new(
                "GRAPHQL_VALIDATION_FAILED",
                format!("Cannot query field \"{}\" on type \"{type_name}\".", field.name),
            )
            .on(field));
        };
        let allowed = arguments_of(type_name, field.name);
        for (name, _) in &field.arguments {
            if !allowed.iter().any(|(a, _, _)| a == name) {
                return Err(GqlError::new(
                    "GRAPHQL_VALIDATION_FAILED",
                    format!("Unknown argument \"{name}\" on field \"{type_name}.{}\".", field.name),
                )
                .on(field));
            }
        }
        for (name, ty, required) in allowed {
            if *required && !field.arguments.iter().any(|(a, _)| a == name) {
                return Err(GqlError::new(
                    "GRAPHQL_VALIDATION_FAILED",
                    format!(
                        "Field \"{}\" argument \"{name}\" of type \"{ty}\" is required, but it was not provided.",
                        field.name
                    ),
                )
                .on(field));
            }
        }
        match kind {
            Kind::Scalar if !field.selection_set.items.is_empty() => {
                return Err(GqlError::new(
                    "GRAPHQL_VALIDATION_FAILED",
                    format!(
                        "Field \"{}\" must not have a selection since it is a scalar.",
                        field.name
                    ),
                )
                .on(field));
            }
            Kind::Scalar => {}
            Kind::Object(inner) | Kind::List(inner) => {
                if field.selection_set.items.is_empty() {
                    return Err(GqlError::new(
                        "GRAPHQL_VALIDATION_FAILED",
                        format!(
                            "Field \"{}\" of type \"{inner}\" must have a selection of subfields.",
                            field.name
                        ),
                    )
                    .on(field));
                }
                validate(&field.selection_set, inner)?;
            }
        }
    }
    Ok(())
}

/// The fields of `value` that `set` selects (under their aliases), recursively.
fn project(value: &Value, set: &QSet<'_>) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| project(v, set)).collect()),
        Value::Object(fields) => {
            let mut out = Map::new();
            for item in &set.items {
                let Selection::Field(field) = item else { continue };
                let name = field.alias.unwrap_or(field.name);
                let picked = fields.get(field.name).unwrap_or(&Value::Null);
                let picked = if field.selection_set.items.is_empty() {
                    picked.clone()
                } else {
                    project(picked, &field.selection_set)
                };
                out.insert(name.to_owned(), picked);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// A GraphQL value as JSON, its variables filled in.
fn to_json(value: &QValue<'_>, variables: &Map<String, Value>) -> Result<Value, GqlError> {
    Ok(match value {
        GqlValue::Variable(name) => variables.get(*name).cloned().ok_or_else(|| {
            GqlError::new(
                "GRAPHQL_VALIDATION_FAILED",
                format!("Variable \"${name}\" is not defined or has no value."),
            )
        })?,
        GqlValue::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        GqlValue::Float(f) => json!(f),
        GqlValue::String(s) => Value::String(s.clone()),
        GqlValue::Boolean(b) => Value::Bool(*b),
        GqlValue::Null => Value::Null,
        GqlValue::Enum(e) => Value::String((*e).to_owned()),
        GqlValue::List(items) => {
            Value::Array(items.iter().map(|v| to_json(v, variables)).collect::<Result<_, _>>()?)
        }
        GqlValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok(((*k).to_owned(), to_json(v, variables)?)))
                .collect::<Result<_, GqlError>>()?,
        ),
    })
}

fn argument(
    field: &QField<'_>,
    name: &str,
    variables: &Map<String, Value>,
) -> Result<Value, GqlError> {
    match field.arguments.iter().find(|(n, _)| *n == name) {
        Some((_, value)) => to_json(value, variables),
        None => Ok(Value::Null),
    }
}

fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn input_text(input: &Map<String, Value>, name: &str) -> Result<Option<String>, GqlError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GqlError::new("BAD_USER_INPUT", format!("{name} must be a string"))),
    }
}

fn input_tags(input: &Map<String, Value>) -> Result<Option<Vec<(String, String)>>, GqlError> {
    let Some(tags) = input.get("tags").filter(|t| !t.is_null()) else { return Ok(None) };
    let bad = || GqlError::new("BAD_USER_INPUT", "tags must be a list of { slug, name }");
    let mut out = Vec::new();
    for tag in tags.as_array().ok_or_else(bad)? {
        let slug = tag.get("slug").and_then(Value::as_str).ok_or_else(bad)?;
        let name = tag.get("name").and_then(Value::as_str).unwrap_or(slug);
        out.push((slug.to_owned(), name.to_owned()));
    }
    Ok(Some(out))
}

fn input_url(input: &Map<String, Value>, name: &str) -> Result<Option<String>, GqlError> {
    let url = input_text(input, name)?;
    if let Some(url) = &url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(GqlError::new("BAD_USER_INPUT", format!("{name} must be a valid URL")));
    }
    Ok(url)
}

fn cover(input: &Map<String, Value>) -> Result<Option<Option<String>>, GqlError> {
    match input.get("coverImageOptions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(options)) => Ok(Some(input_url(options, "coverImageURL")?)),
        Some(_) => Err(GqlError::new("BAD_USER_INPUT", "coverImageOptions must be an object")),
    }
}

fn page_argument(value: &Value, name: &str) -> Result<i64, GqlError> {
    value.as_i64().ok_or_else(|| {
        GqlError::new(
            "BAD_USER_INPUT",
            format!("Int cannot represent non-integer value for {name}"),
        )
    })
}

impl Hashnode {
    /// A mock knowing no token and no publication yet, limited to 500 mutations and 20,000
    /// queries per token per minute; faults draw from `seed`.
    pub fn new(clock: Clock, seed: u64) -> Self {
        let state = State {
            tokens: HashSet::new(),
            publications: Vec::new(),
            posts: Vec::new(),
            next_id: 0x6650_0000_0000_0000_0000_0000,
            mutations: HashMap::new(),
            queries: HashMap::new(),
            mutations_per_minute: 500,
            queries_per_minute: 20_000,
            operations: Vec::new(),
        };
        Self { state: Arc::new(Mutex::new(state)), core: MockCore::new(clock, seed) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a personal access token (of the mock's one user) and returns it.
    pub fn token(&self, token: &str) -> String {
        self.state().tokens.insert(token.to_owned());
        token.to_owned()
    }

    /// Revokes a token: it is `UNAUTHENTICATED` from now on.
    pub fn revoke(&self, token: &str) {
        self.state().tokens.remove(token);
    }

    /// Creates a publication of the user at `host` (`blog.example.dev`) and returns its id.
    pub fn publication(&self, host: &str) -> String {
        let mut state = self.state();
        state.next_id += 1;
        let id = format!("{:024x}", state.next_id);
        state.publications.push(Publication { id: id.clone(), host: host.to_owned() });
        id
    }

    /// Sets the per-token limits per minute.
    pub fn limits(&self, mutations_per_minute: usize, queries_per_minute: usize) -> &Self {
        let mut state = self.state();
        state.mutations_per_minute = mutations_per_minute;
        state.queries_per_minute = queries_per_minute;
        self
    }

    /// Injects `fault` into `route` when `trigger` fires.
    pub fn fault(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.core.add(route, trigger, fault);
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    /// The posts stored, in creation order, with every field (`url`, `canonicalUrl`,
    /// `content.markdown`, `tags`, `publication.id`…).
    pub fn posts(&self) -> Vec<Value> {
        self.state().posts.iter().map(Post::to_json).collect()
    }

    /// The top-level fields run, in order (`publishPost`, `updatePost`, `me`), whatever they
    /// answered: a request refused before running (throttled, invalid, an injected error) adds
    /// none.
    pub fn operations(&self) -> Vec<String> {
        self.state().operations.clone()
    }

    /// How many times `operation` ran.
    pub fn count(&self, operation: &str) -> usize {
        self.state().operations.iter().filter(|o| *o == operation).count()
    }

    /// The titles of the posts stored, in creation order.
    pub fn titles(&self) -> Vec<String> {
        self.state().posts.iter().map(|p| p.title.clone()).collect()
    }

    fn answer(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        if parts.method != Method::POST {
            return Some(errors(
                StatusCode::METHOD_NOT_ALLOWED,
                &[GqlError::new("BAD_REQUEST", "GraphQL requests are POSTed to this endpoint")],
            ));
        }
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let Some(query) = request.get("query").and_then(Value::as_str) else {
            return Some(errors(
                StatusCode::BAD_REQUEST,
                &[GqlError::new(
                    "BAD_REQUEST",
                    "POST body is not a GraphQL request: it needs a \"query\" string",
                )],
            ));
        };
        let variables =
            request.get("variables").and_then(Value::as_object).cloned().unwrap_or_default();
        let document: QDocument<'_> = match graphql_parser::parse_query(query) {
            Ok(document) => document,
            Err(e) => {
                let message = format!("Syntax Error: {e}");
                return Some(errors(
                    StatusCode::BAD_REQUEST,
                    &[GqlError::new("GRAPHQL_PARSE_FAILED", message.trim_end())],
                ));
            }
        };
        let wanted = request.get("operationName").and_then(Value::as_str);
        let operations: Vec<&QOperation<'_>> = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::Operation(op) => Some(op),
                Definition::Fragment(_) => None,
            })
            .filter(|op| {
                let name = match op {
                    OperationDefinition::Query(q) => q.name,
                    OperationDefinition::Mutation(m) => m.name,
                    OperationDefinition::Subscription(s) => s.name,
                    OperationDefinition::SelectionSet(_) => None,
                };
                wanted.is_none_or(|w| name == Some(w))
            })
            .collect();
        let [operation] = operations.as_slice() else {
            return Some(errors(
                StatusCode::BAD_REQUEST,
                &[GqlError::new(
                    "GRAPHQL_VALIDATION_FAILED",
                    "Must provide exactly one operation (or name it with operationName).",
                )],
            ));
        };
        let (root, set) = match operation {
            OperationDefinition::Query(q) => ("Query", &q.selection_set),
            OperationDefinition::SelectionSet(s) => ("Query", s),
            OperationDefinition::Mutation(m) => ("Mutation", &m.selection_set),
            OperationDefinition::Subscription(_) => {
                return Some(errors(
                    StatusCode::BAD_REQUEST,
                    &[GqlError::new(
                        "GRAPHQL_VALIDATION_FAILED",
                        "Schema is not configured for subscriptions.",
                    )],
                ));
            }
        };
        if let Err(e) = validate(set, root) {
            return Some(errors(StatusCode::BAD_REQUEST, &[e]));
        }

        if let Some(fault) = fault {
            return match fault {
                Fault::GraphQlError(code) => Some(errors(
                    StatusCode::OK,
                    &[GqlError::new(code, format!("{code} (injected)"))],
                )),
                _ => None,
            };
        }

        let token = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let now = self.core.clock.now();
        let mut state = self.state();
        let known = token.is_some_and(|t| state.tokens.contains(t));
        let who = token.filter(|_| known).unwrap_or("anonymous").to_owned();
        if let Some(wait) = state.take_slot(root == "Mutation", &who, now) {
            let mut res = errors(
                StatusCode::OK,
                &[GqlError::new(
                    "TOO_MANY_REQUESTS",
                    format!("Too many requests. Try again in {} seconds.", wait.as_secs()),
                )],
            );
            res.headers_mut().insert(http::header::RETRY_AFTER, wait.as_secs().into());
            return Some(res);
        }
        let wall = self.core.clock.wall().to_string();
        let mut data = Map::new();
        let mut failed = Vec::new();
        for item in &set.items {
            let Selection::Field(field) = item else { continue };
            let name = field.alias.unwrap_or(field.name);
            if field.name == "__typename" {
                data.insert(name.to_owned(), Value::String(root.to_owned()));
                continue;
            }
            if !known {
                failed
                    .push(GqlError::new("UNAUTHENTICATED", "You must be authenticated.").on(field));
                continue;
            }
            state.operations.push(field.name.to_owned());
            let value = match field.name {
                "me" => state.me(field, &variables),
                "publishPost" => state.publish(field, &variables, &wall),
                "updatePost" => state.update(field, &variables, &wall),
                _ => unreachable!("validated against the schema"),
            };
            match value {
                Ok(value) => {
                    data.insert(name.to_owned(), value);
                }
                Err(e) => failed.push(e.on(field)),
            }
        }
        if !failed.is_empty() {
            return Some(errors(StatusCode::OK, &failed));
        }
        Some(json_response(StatusCode::OK, &json!({ "data": data })))
    }
}

impl State {
    /// Counts a request against the token's limit per minute; the wait when it is over.
    fn take_slot(&mut self, mutation: bool, who: &str, now: Instant) -> Option<Duration> {
        let limit = if mutation { self.mutations_per_minute } else { self.queries_per_minute };
        let window = if mutation { &mut self.mutations } else { &mut self.queries };
        let seen = window.entry(who.to_owned()).or_default();
        let minute = Duration::from_secs(60);
        while seen.front().is_some_and(|t| *t + minute <= now) {
            seen.pop_front();
        }
        if seen.len() >= limit {
            let oldest = seen.front().copied().unwrap_or(now);
            let wait = (oldest + minute).saturating_duration_since(now);
            return Some(
                Duration::from_secs(wait.as_secs_f64().ceil() as u64).max(Duration::from_secs(1)),
            );
        }
        seen.push_back(now);
        None
    }

    fn me(&self, field: &QField<'_>, variables: &Map<String, Value>) -> Result<Value, GqlError> {
        let mut me = Map::new();
        for item in &field.selection_set.items {
            let Selection::Field(sub) = item else { continue };
            let name = sub.alias.unwrap_or(sub.name).to_owned();
            let value = match sub.name {
                "__typename" => Value::String("MyUser".to_owned()),
                "id" => Value::String("user-1".to_owned()),
                "username" | "name" => Value::String(USER.to_owned()),
                "posts" => {
                    let size = page_argument(&argument(sub, "pageSize", variables)?, "pageSize")?;
                    let page = page_argument(&argument(sub, "page", variables)?, "page")?;
                    if !(1..=MAX_PAGE_SIZE).contains(&size) {
                        return Err(GqlError::new(
                            "BAD_USER_INPUT",
                            format!("pageSize must be between 1 and {MAX_PAGE_SIZE}"),
                        ));
                    }
                    if page < 1 {
                        return Err(GqlError::new("BAD_USER_INPUT", "page must be 1 or more"));
                    }
                    let (size, page) = (size.unsigned_abs() as usize, page.unsigned_abs() as usize);
                    let total = self.posts.len();
                    let nodes: Vec<Value> = self
                        .posts
                        .iter()
                        .rev()
                        .skip((page - 1) * size)
                        .take(size)
                        .map(Post::to_json)
                        .collect();
                    let more = page * size < total;
                    let connection = json!({
                        "__typename": "UserPostConnection",
                        "nodes": nodes,
                        "pageInfo": {
                            "__typename": "OffsetPageInfo",
                            "hasNextPage": more,
                            "nextPage": more.then_some(page + 1),
                            "hasPreviousPage": page > 1,
                            "previousPage": (page > 1).then(|| page - 1),
                        },
                        "totalDocuments": total,
                    });
                    project(&connection, &sub.selection_set)
                }
                _ => Value::Null,
            };
            me.insert(name, value);
        }
        Ok(Value::Object(me))
    }

    fn input(
        field: &QField<'_>,
        variables: &Map<String, Value>,
    ) -> Result<Map<String, Value>, GqlError> {
        match argument(field, "input", variables)? {
            Value::Object(input) => Ok(input),
            _ => Err(GqlError::new("BAD_USER_INPUT", "input must be an object")),
        }
    }

    fn payload(post: &Post, field: &QField<'_>, type_name: &str) -> Value {
        let payload = json!({"__typename": type_name, "post": post.to_json()});
        project(&payload, &field.selection_set)
    }

    fn publish(
        &mut self,
        field: &QField<'_>,
        variables: &Map<String, Value>,
        now: &str,
    ) -> Result<Value, GqlError> {
        let input = Self::input(field, variables)?;
        let title = input_text(&input, "title")?.unwrap_or_default();
        if title.trim().is_empty() {
            return Err(GqlError::new("BAD_USER_INPUT", "Title is required"));
        }
        let Some(markdown) = input_text(&input, "contentMarkdown")? else {
            return Err(GqlError::new("BAD_USER_INPUT", "contentMarkdown is required"));
        };
        let Some(publication) = input_text(&input, "publicationId")? else {
            return Err(GqlError::new("BAD_USER_INPUT", "publicationId is required"));
        };
        let Some(host) =
            self.publications.iter().find(|p| p.id == publication).map(|p| p.host.clone())
        else {
            return Err(GqlError::new("NOT_FOUND", "Publication not found"));
        };
        let original = input_url(&input, "originalArticleURL")?;
        let cover = cover(&input)?.flatten();
        let tags = input_tags(&input)?.unwrap_or_default();
        let subtitle = input_text(&input, "subtitle")?;
        let base = input_text(&input, "slug")?.map_or_else(|| slugify(&title), |s| slugify(&s));
        let slug = self.free_slug(&publication, &base, None);
        self.next_id += 1;
        let post = Post {
            id: format!("{:024x}", self.next_id),
            publication,
            host,
            title,
            subtitle,
            slug,
            markdown,
            tags,
            original,
            cover,
            published_at: now.to_owned(),
            updated_at: None,
        };
        let answer = Self::payload(&post, field, "PublishPostPayload");
        self.posts.push(post);
        Ok(answer)
    }

    fn update(
        &mut self,
        field: &QField<'_>,
        variables: &Map<String, Value>,
        now: &str,
    ) -> Result<Value, GqlError> {
        let input = Self::input(field, variables)?;
        let Some(id) = input_text(&input, "id")? else {
            return Err(GqlError::new("BAD_USER_INPUT", "id is required"));
        };
        let Some(index) = self.posts.iter().position(|p| p.id == id) else {
            return Err(GqlError::new("NOT_FOUND", "Post not found"));
        };
        let title = input_text(&input, "title")?;
        if title.as_ref().is_some_and(|t| t.trim().is_empty()) {
            return Err(GqlError::new("BAD_USER_INPUT", "Title must not be empty"));
        }
        let original = input_url(&input, "originalArticleURL")?;
        let cover = cover(&input)?;
        let tags = input_tags(&input)?;
        let markdown = input_text(&input, "contentMarkdown")?;
        let subtitle = input_text(&input, "subtitle")?;
        let slug = match input_text(&input, "slug")? {
            Some(s) => {
                let publication = self.posts[index].publication.clone();
                Some(self.free_slug(&publication, &slugify(&s), Some(index)))
            }
            None => None,
        };
        let post = &mut self.posts[index];
        post.title = title.unwrap_or_else(|| post.title.clone());
        post.markdown = markdown.unwrap_or_else(|| post.markdown.clone());
        post.slug = slug.unwrap_or_else(|| post.slug.clone());
        if input.contains_key("originalArticleURL") {
            post.original = original;
        }
        if let Some(cover) = cover {
            post.cover = cover;
        }
        if let Some(tags) = tags {
            post.tags = tags;
        }
        if input.contains_key("subtitle") {
            post.subtitle = subtitle;
        }
        post.updated_at = Some(now.to_owned());
        Ok(Self::payload(post, field, "UpdatePostPayload"))
    }

    /// `base`, or `base-1`, `base-2`… if another post of the publication has it.
    fn free_slug(&self, publication: &str, base: &str, except: Option<usize>) -> String {
        let taken = |slug: &str| {
            self.posts
                .iter()
                .enumerate()
                .any(|(i, p)| Some(i) != except && p.publication == publication && p.slug == slug)
        };
        let base = if base.is_empty() { "post" } else { base };
        let mut slug = base.to_owned();
        let mut n = 0;
        while taken(&slug) {
            n += 1;
            slug = format!("{base}-{n}");
        }
        slug
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
    );
    res
}

fn errors(status: StatusCode, errors: &[GqlError]) -> Response<MockBody> {
    let errors: Vec<Value> = errors.iter().map(GqlError::to_json).collect();
    json_response(status, &json!({"errors": errors, "data": null}))
}

impl Mock for Hashnode {
    fn core(&self) -> &MockCore {
        &self.core
    }

    fn reply(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Option<Response<MockBody>> {
        self.answer(parts, body, fault)
    }
}
