//! A scrape task's settings, as written in its `[tasks.NAME]` table, and their checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What a scrape task watches, what it extracts and where it reports.
///
/// ```toml
/// [tasks.prices]
/// engine = "scrape"
/// every = "1h"
/// user_agent = "pricewatch/1.0 (+https://example.com/bot; ops@example.com)"
/// pages = ["https://shop.example/item/1", "https://shop.example/item/2"]
/// sitemaps = ["https://news.example/sitemap.xml"]
///
/// [tasks.prices.fields]
/// price = ".price"
/// stock = { selector = ".stock", attr = "data-count" }
/// tags = { selector = ".tag", all = true }
///
/// [tasks.prices.report]
/// jsonl = "changes.jsonl"     # relative to the config file
/// store = true
/// webhook = "https://hooks.example/changes"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScrapeSettings {
    /// The `User-Agent` sent with every request: a product token, a version and a way to reach
    /// whoever runs the task (a URL or an e-mail address). Required.
    pub user_agent: String,
    /// The name matched against `robots.txt` groups (default: the product token of
    /// `user_agent`, the part before the first `/`).
    #[serde(default)]
    pub robots_agent: Option<String>,
    /// Pages to watch.
    #[serde(default)]
    pub pages: Vec<String>,
    /// Sitemaps (or sitemap indexes) whose pages are watched too.
    #[serde(default)]
    pub sitemaps: Vec<String>,
    /// The fields extracted from each page, by name: a CSS selector (the first match's text),
    /// or a table with `selector`, `attr` (an attribute instead of the text) and `all` (every
    /// match, as a list).
    pub fields: BTreeMap<String, FieldSpec>,
    /// Where changes go (default: the store).
    #[serde(default)]
    pub report: ReportSettings,
    /// The least time between two requests to one host (default 1 s); a longer `Crawl-delay`
    /// wins.
    #[serde(default = "default_min_delay", with = "unattended_client::duration")]
    pub min_delay: Duration,
    /// The longest `Crawl-delay` honoured (default 60 s): a host asking for more is not crawled
    /// (the run says so) rather than crawled faster than it asked.
    #[serde(default = "default_max_crawl_delay", with = "unattended_client::duration")]
    pub max_crawl_delay: Duration,
    /// The largest page read, in bytes after decompression (default 2 MiB): a bigger page is cut
    /// there and reported as too big.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: usize,
    /// The most pages in one round (default 1000): sitemaps beyond it are cut.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Hosts crawled at the same time (default 4); each has one request in flight at most.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// How long a round may wait for a host that asked to be left alone (default 24 h): after
    /// that, its pages are left for the next round and a new round starts, so one host that
    /// stays down does not keep the others from being watched.
    #[serde(default = "default_round_timeout", with = "unattended_client::duration")]
    pub round_timeout: Duration,
}

/// One field to extract.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FieldSpec {
    /// The text of the first element the selector matches.
    Selector(String),
    /// A selector with options.
    Detailed {
        /// The CSS selector.
        selector: String,
        /// An attribute of the element instead of its text.
        #[serde(default)]
        attr: Option<String>,
        /// Every match, as a list, instead of the first.
        #[serde(default)]
        all: bool,
    },
}

/// Where changes are reported. Each sink gets every change once.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReportSettings {
    /// Append each change as a line of JSON to this file (relative to the config file).
    #[serde(default)]
    pub jsonl: Option<PathBuf>,
    /// Keep each change in the store (entries of kind `change`). The default when no other
    /// sink is named.
    #[serde(default)]
    pub store: Option<bool>,
    /// POST each change as JSON to this URL, with its id as `Idempotency-Key`.
    #[serde(default)]
    pub webhook: Option<String>,
}

const fn default_min_delay() -> Duration {
    Duration::from_secs(1)
}

const fn default_max_crawl_delay() -> Duration {
    Duration::from_secs(60)
}

const fn default_max_page_bytes() -> usize {
    2 * 1024 * 1024
}

const fn default_max_pages() -> usize {
    1000
}

const fn default_max_hosts() -> usize {
    4
}

const fn default_round_timeout() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl ScrapeSettings {
    /// Settings for `user_agent`, `pages` and `fields`, everything else defaulted.
    pub fn new(
        user_agent: impl Into<String>,
        pages: impl IntoIterator<Item = impl Into<String>>,
        fields: impl IntoIterator<Item = (impl Into<String>, FieldSpec)>,
    ) -> Self {
        Self {
            user_agent: user_agent.into(),
            robots_agent: None,
            pages: pages.into_iter().map(Into::into).collect(),
            sitemaps: Vec::new(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            report: ReportSettings::default(),
            min_delay: default_min_delay(),
            max_crawl_delay: default_max_crawl_delay(),
            max_page_bytes: default_max_page_bytes(),
            max_pages: default_max_pages(),
            max_hosts: default_max_hosts(),
            round_timeout: default_round_timeout(),
        }
    }

    /// The name matched against `robots.txt` groups.
    pub fn robots_agent(&self) -> &str {
        match &self.robots_agent {
            Some(agent) => agent,
            None => product_token(&self.user_agent),
        }
    }

    /// Whether changes go to the store.
    pub fn reports_to_store(&self) -> bool {
        let r = &self.report;
        r.store.unwrap_or(r.jsonl.is_none() && r.webhook.is_none())
    }

    /// Checks what serde cannot: a user agent with a contact, pages to watch, usable URLs and
    /// numbers. The message says what to change.
    ///
    /// # Errors
    ///
    /// The first mistake found.
    pub fn check(&self) -> Result<(), String> {
        check_user_agent(&self.user_agent)?;
        let token = self.robots_agent();
        if token.is_empty()
            || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "robots_agent {token:?} must be a product token of letters, digits, `-` and `_` \
                 (it is matched against robots.txt groups)"
            ));
        }
        if self.pages.is_empty() && self.sitemaps.is_empty() {
            return Err("nothing to watch: give `pages` or `sitemaps`".to_owned());
        }
        for url in self.pages.iter().chain(&self.sitemaps) {
            page_url(url)?;
        }
        if let Some(hook) = &self.report.webhook {
            page_url(hook).map_err(|e| format!("report.webhook: {e}"))?;
        }
        if self.fields.is_empty() {
            return Err("no `fields` to extract: name at least one CSS selector".to_owned());
        }
        for (what, n) in [
            ("max_page_bytes", self.max_page_bytes),
            ("max_pages", self.max_pages),
            ("max_hosts", self.max_hosts),
        ] {
            if n == 0 {
                return Err(format!("{what} must be more than zero"));
            }
        }
        if self.min_delay > self.max_crawl_delay {
            return Err("min_delay is longer than max_crawl_delay: no host could be crawled".into());
        }
        Ok(())
    }
}

/// The product token of a `User-Agent`: the part before the first `/` (or space).
pub(crate) fn product_token(agent: &str) -> &str {
    agent.trim().split(['/', ' ']).next().unwrap_or_default()
}

fn check_user_agent(agent: &str) -> Result<(), String> {
    if http::HeaderValue::from_str(agent).is_err() {
        return Err(format!("user_agent {agent:?} is not a valid header value"));
    }
    let contact = agent.contains('@') || agent.contains("http://") || agent.contains("https://");
    if product_token(agent).is_empty() || !contact {
        return Err(format!(
            "user_agent {agent:?} must name the crawler and a contact, such as \
             \"pricewatch/1.0 (+https://example.com/bot; ops@example.com)\", so a site's \
             operator can reach whoever runs it"
        ));
    }
    Ok(())
}

/// Parses an `http`/`https` URL with a host.
pub(crate) fn page_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ScrapeSettings {
        ScrapeSettings::new(
            "pricewatch/1.0 (+https://example.com/bot)",
            ["https://shop.example/a"],
            [("price", FieldSpec::Selector(".price".into()))],
        )
    }

    #[test]
    fn the_agent_needs_a_contact_and_gives_the_robots_token() {
        let s = settings();
        assert_eq!(s.check(), Ok(()));
        assert_eq!(s.robots_agent(), "pricewatch");
        let mut s = settings();
        s.user_agent = "pricewatch/1.0".into();
        assert!(s.check().unwrap_err().contains("contact"));
        s.user_agent = "pricewatch/1.0 (ops@example.com)".into();
        assert_eq!(s.check(), Ok(()));
        s.user_agent = "bad\nagent ops@example.com".into();
        assert!(s.check().unwrap_err().contains("header value"));
    }

    #[test]
    fn mistakes_are_named() {
        let mut s = settings();
        s.pages.clear();
        assert!(s.check().unwrap_err().contains("nothing to watch"));
        let mut s = settings();
        s.pages.push("ftp://x.example/".into());
        assert!(s.check().unwrap_err().contains("http(s)"));
        let mut s = settings();
        s.fields.clear();
        assert!(s.check().unwrap_err().contains("fields"));
        let mut s = settings();
        s.max_page_bytes = 0;
        assert!(s.check().unwrap_err().contains("max_page_bytes"));
        let mut s = settings();
        s.robots_agent = Some("price watch".into());
        assert!(s.check().unwrap_err().contains("product token"));
    }

    #[test]
    fn the_store_is_the_default_sink() {
        let mut s = settings();
        assert!(s.reports_to_store());
        s.report.jsonl = Some("changes.jsonl".into());
        assert!(!s.reports_to_store());
        s.report.store = Some(true);
        assert!(s.reports_to_store());
    }
}
