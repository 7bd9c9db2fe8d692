//! The HTTP this engine speaks, on `unattended-client`: `robots.txt` (RFC 9309), conditional
//! page fetches (RFC 9110), sitemaps, and a webhook POST. Bodies are read within a limit
//! counted after decompression, so a huge page or a gzip bomb is cut there.

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, USER_AGENT};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, LengthLimitError};
use serde::{Deserialize, Serialize};
use unattended_client::{Body, Client, Error};

use unattended_core::{BoxError, Disposition, HasDisposition as _};

/// RFC 9309 asks crawlers to parse at least 500 KiB of `robots.txt`; the rest is not read.
pub const ROBOTS_LIMIT: usize = robotxt::BYTE_LIMIT;

/// A page's validators, sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The last `ETag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The last `Last-Modified`, as the server wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    fn from_headers(headers: &http::HeaderMap) -> Self {
        let text =
            |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        Self { etag: text(ETAG), last_modified: text(LAST_MODIFIED) }
    }

    /// These validators, updated by those of a `304` (which may leave some out).
    fn updated(&self, newer: Self) -> Self {
        Self {
            etag: newer.etag.or_else(|| self.etag.clone()),
            last_modified: newer.last_modified.or_else(|| self.last_modified.clone()),
        }
    }
}

/// A fetch that did not give a page.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The client could not get an answer (its disposition says when to try again).
    #[error(transparent)]
    Client(#[from] Error),
    /// The body is bigger than the limit: reading stopped there.
    #[error(
        "the body of {url} is over the limit of {limit} bytes and was cut there (raise \
         max_page_bytes if the page is expected to be this big)"
    )]
    TooBig {
        /// The page.
        url: String,
        /// The limit, in bytes after decompression.
        limit: usize,
    },
    /// The body broke off while it was read.
    #[error("the body of {url} broke off: {source}")]
    Body {
        /// The page.
        url: String,
        /// What broke it.
        #[source]
        source: BoxError,
    },
    /// A sitemap that is not the XML of one.
    #[error("{url} is not a sitemap: {problem}")]
    NotSitemap {
        /// The sitemap.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The request could not be made (a header the task gave is not valid).
    #[error("cannot ask {url}: {problem}")]
    Request {
        /// The page.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// An answer with an error status.
    #[error("{url} answered {}", status.as_u16())]
    Status {
        /// The page.
        url: String,
        /// Its status.
        status: StatusCode,
    },
}

impl FetchError {
    fn request(uri: &Uri, e: &http::Error) -> Self {
        Self::Request { url: uri.to_string(), problem: e.to_string() }
    }

    /// Whether asking again later may help the page (the host is paused or failing), as opposed
    /// to a fault of the page itself (too big, not found).
    pub fn is_host_trouble(&self) -> bool {
        match self {
            Self::Client(e) => !e.is_request(),
            Self::Body { .. } => true,
            Self::TooBig { .. }
            | Self::NotSitemap { .. }
            | Self::Status { .. }
            | Self::Request { .. } => false,
        }
    }
}

/// What `/robots.txt` answered.
#[derive(Debug)]
pub enum RobotsAnswer {
    /// `2xx`: these rules (at most [`ROBOTS_LIMIT`] bytes of them).
    Rules(Bytes),
    /// `4xx` but `429`: no rules ("unavailable"), so anything may be crawled.
    Unavailable(StatusCode),
    /// `5xx`, `429`, or no answer: nothing may be crawled until it answers.
    Unreachable {
        /// What happened.
        why: String,
        /// When the client says to try again, if it failed.
        disposition: Option<Disposition>,
    },
}

/// What a page fetch gave.
#[derive(Debug)]
pub enum PageAnswer {
    /// `2xx`: the page, read within the limit.
    Fetched {
        /// The HTML (invalid UTF-8 replaced).
        html: String,
        /// Its validators.
        validators: Validators,
    },
    /// `304`: unchanged since the validators sent; no body was read.
    NotModified {
        /// The validators, updated by the answer's.
        validators: Validators,
    },
    /// `404` or `410`: the page is gone.
    Gone(StatusCode),
}

/// One `<loc>` of a sitemap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SitemapItem {
    /// A page (`<urlset><url><loc>`).
    Page(String),
    /// Another sitemap (`<sitemapindex><sitemap><loc>`).
    Sitemap(String),
}

/// A `GET` of `uri` with the task's `User-Agent`.
fn request(uri: &Uri, agent: &HeaderValue) -> http::request::Builder {
    Request::get(uri.clone()).header(USER_AGENT, agent.clone())
}

/// Fetches `robots.txt` of `origin` (`https://host[:port]`).
pub async fn fetch_robots(client: &Client, origin: &str, agent: &HeaderValue) -> RobotsAnswer {
    let unreachable = |why: String, disposition| RobotsAnswer::Unreachable { why, disposition };
    let uri: Uri = match format!("{origin}/robots.txt").parse() {
        Ok(uri) => uri,
        Err(e) => return unreachable(format!("{origin} has no robots.txt URL: {e}"), None),
    };
    let req = match request(&uri, agent).header(ACCEPT, "text/plain").body(Full::default()) {
        Ok(req) => req,
        Err(e) => return unreachable(format!("cannot ask {uri}: {e}"), None),
    };
    let res = match client.send(req).await {
        Ok(res) => res,
        Err(e) => {
            let disposition = Some(e.disposition());
            return unreachable(format!("{uri}: {e}"), disposition);
        }
    };
    let status = res.status();
    if status.is_success() {
        // Past the limit the rest is ignored, as RFC 9309 allows: not an error.
        return match read_upto(res.into_body(), ROBOTS_LIMIT).await {
            Ok((text, _cut)) => RobotsAnswer::Rules(text),
            Err(e) => unreachable(format!("{uri}: the body broke off: {e}"), None),
        };
    }
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        return RobotsAnswer::Unavailable(status);
    }
    unreachable(format!("{uri} answered {}", status.as_u16()), None)
}

/// Fetches the page at `uri`, conditionally on `validators`, reading at most `limit` bytes.
///
/// # Errors
///
/// [`FetchError::TooBig`] past the limit, [`FetchError::Client`] when no answer came (its
/// disposition says when to try again), [`FetchError::Status`] for another error status.
pub async fn fetch_page(
    client: &Client,
    uri: &Uri,
    agent: &HeaderValue,
    validators: &Validators,
    limit: usize,
) -> Result<PageAnswer, FetchError> {
    let mut req = request(uri, agent).header(ACCEPT, "text/html,application/xhtml+xml");
    // Both go: a server that ignores one may honour the other (If-None-Match wins when both do).
    if let Some(etag) = &validators.etag {
        req = req.header(IF_NONE_MATCH, etag);
    }
    if let Some(modified) = &validators.last_modified {
        req = req.header(IF_MODIFIED_SINCE, modified);
    }
    let req = req.body(Full::default()).map_err(|e| FetchError::request(uri, &e))?;
    let res = client.send(req).await?;
    let status = res.status();
    let url = uri.to_string();
    if status == StatusCode::NOT_MODIFIED {
        let validators = validators.updated(Validators::from_headers(res.headers()));
        return Ok(PageAnswer::NotModified { validators });
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        return Ok(PageAnswer::Gone(status));
    }
    if !status.is_success() {
        return Err(FetchError::Status { url, status });
    }
    let fresh = Validators::from_headers(res.headers());
    let body = read_within(res.into_body(), limit, &url).await?;
    Ok(PageAnswer::Fetched { html: String::from_utf8_lossy(&body).into_owned(), validators: fresh })
}

/// Fetches the sitemap at `uri` and lists its `<loc>`s, reading at most `limit` bytes.
///
/// # Errors
///
/// As [`fetch_page`]; [`FetchError::NotSitemap`] for XML that is not a sitemap, and
/// [`FetchError::Status`] for any answer but `2xx`.
pub async fn fetch_sitemap(
    client: &Client,
    uri: &Uri,
    agent: &HeaderValue,
    limit: usize,
) -> Result<Vec<SitemapItem>, FetchError> {
    let req = request(uri, agent)
        .header(ACCEPT, "application/xml,text/xml")
        .body(Full::default())
        .map_err(|e| FetchError::request(uri, &e))?;
    let res = client.send(req).await?;
    let url = uri.to_string();
    if !res.status().is_success() {
        return Err(FetchError::Status { url, status: res.status() });
    }
    let body = read_within(res.into_body(), limit, &url).await?;
    parse_sitemap(&body).map_err(|problem| FetchError::NotSitemap { url, problem })
}

/// POSTs `json` to the webhook at `uri`, with `key` as its `Idempotency-Key`.
///
/// # Errors
///
/// The client's error, or [`FetchError::Status`] for an answer that is not `2xx`.
pub(crate) async fn post_json(
    client: &Client,
    uri: &Uri,
    agent: &HeaderValue,
    key: &str,
    json: Vec<u8>,
) -> Result<(), FetchError> {
    let req = Request::post(uri.clone())
        .header(USER_AGENT, agent.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(json)))
        .map_err(|e| FetchError::request(uri, &e))?;
    let res = client.send(req).await?;
    if res.status().is_success() {
        return Ok(());
    }
    Err(FetchError::Status { url: uri.to_string(), status: res.status() })
}

/// Reads `body` whole if it is at most `limit` bytes.
async fn read_within(body: Body, limit: usize, url: &str) -> Result<Bytes, FetchError> {
    match read_upto(body, limit).await {
        Ok((bytes, false)) => Ok(bytes),
        Ok((_, true)) => Err(FetchError::TooBig { url: url.to_owned(), limit }),
        Err(e) if is_length_limit(&*e) => Err(FetchError::TooBig { url: url.to_owned(), limit }),
        Err(source) => Err(FetchError::Body { url: url.to_owned(), source }),
    }
}

/// Reads at most `limit` bytes of `body`; `true` if there was more (the rest is not read: the
/// body is dropped, which ends the exchange).
pub(crate) async fn read_upto(mut body: Body, limit: usize) -> Result<(Bytes, bool), BoxError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        let room = limit - out.len();
        if data.len() > room {
            out.extend_from_slice(&data[..room]);
            return Ok((out.freeze(), true));
        }
        out.extend_from_slice(&data);
    }
    Ok((out.freeze(), false))
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<LengthLimitError>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// The `<loc>`s of a sitemap (`<urlset>`) or sitemap index (`<sitemapindex>`).
pub(crate) fn parse_sitemap(xml: &[u8]) -> Result<Vec<SitemapItem>, String> {
    use quick_xml::events::Event;
    let xml = std::str::from_utf8(xml).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut index: Option<bool> = None;
    let mut in_loc = false;
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => match e.local_name().as_ref() {
                "urlset" if index.is_none() => index = Some(false),
                "sitemapindex" if index.is_none() => index = Some(true),
                "loc" => {
                    in_loc = true;
                    text.clear();
                }
                _ => {}
            },
            Event::Text(t) if in_loc => text.push_str(&t.xml10_content()),
            Event::CData(t) if in_loc => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_loc => {
                match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => text.push(c),
                    None => {
                        let name = r.into_inner();
                        let entity = format!("&{name};");
                        let resolved =
                            quick_xml::escape::unescape(&entity).map_err(|e| e.to_string())?;
                        text.push_str(&resolved);
                    }
                }
            }
            Event::End(e) if e.local_name().as_ref() == "loc" => {
                in_loc = false;
                let loc = text.trim();
                if !loc.is_empty() {
                    out.push(match index {
                        Some(true) => SitemapItem::Sitemap(loc.to_owned()),
                        _ => SitemapItem::Page(loc.to_owned()),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match index {
        Some(_) => Ok(out),
        None => Err("no <urlset> or <sitemapindex>".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sitemaps_and_indexes() {
        let xml =
            br#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc> https://a.example/1 </loc><lastmod>2026-01-01</lastmod></url>
            <url><loc>https://a.example/2?x=1&amp;y=2</loc></url></urlset>"#;
        assert_eq!(
            parse_sitemap(xml).unwrap(),
            [
                SitemapItem::Page("https://a.example/1".into()),
                SitemapItem::Page("https://a.example/2?x=1&y=2".into())
            ]
        );
        let index = br#"<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>"#;
        assert_eq!(
            parse_sitemap(index).unwrap(),
            [SitemapItem::Sitemap("https://a.example/s1.xml".into())]
        );
        assert!(parse_sitemap(b"<html><body>hi</body></html>").is_err());
        assert!(parse_sitemap(&[0xff, 0xfe, 0x00]).is_err());
    }
}
