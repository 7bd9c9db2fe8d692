//! IETF `RateLimit` and `RateLimit-Policy` fields (draft-ietf-httpapi-ratelimit-headers-11).
//!
//! Both are RFC 9651 structured-field lists. `RateLimit: "default";r=50;t=30` says that policy
//! `default` has 50 units left and its window ends in 30 seconds;
//! `RateLimit-Policy: "burst";q=100;w=60` says that policy `burst` allows 100 units per 60
//! seconds. The draft says malformed fields must be ignored, so the parsers return an empty list
//! for a field that is not a valid list, and skip members that lack a required parameter.

use std::fmt;
use std::time::Duration;

use sfv::{BareItem, Item, KeyRef, List, ListEntry, Parser, StringRef};

/// One member of a `RateLimit` field: the state of one quota policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitItem {
    /// The policy name (the list member's value).
    pub policy: String,
    /// `r`: units left in the current window.
    pub remaining: u64,
    /// `t`: time until the current window ends, if the server said.
    pub reset: Option<Duration>,
    /// `pk`: the partition key the server applied, if any.
    pub partition_key: Option<Vec<u8>>,
}

/// One member of a `RateLimit-Policy` field: a quota policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// The policy name.
    pub name: String,
    /// `q`: units allowed per window.
    pub quota: u64,
    /// `qu`: what a unit is (requests when absent).
    pub unit: QuotaUnit,
    /// `w`: the window length, if the server said.
    pub window: Option<Duration>,
    /// `pk`: the partition key, if any.
    pub partition_key: Option<Vec<u8>>,
}

/// What a quota counts (`qu`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaUnit {
    /// `requests` (the default).
    Requests,
    /// `content-bytes`.
    ContentBytes,
    /// `concurrent-requests`.
    ConcurrentRequests,
    /// A unit this version does not know.
    Other(String),
}

impl QuotaUnit {
    fn parse(value: &str) -> Self {
        match value {
            "requests" => Self::Requests,
            "content-bytes" => Self::ContentBytes,
            "concurrent-requests" => Self::ConcurrentRequests,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The unit's name as the draft spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Requests => "requests",
            Self::ContentBytes => "content-bytes",
            Self::ConcurrentRequests => "concurrent-requests",
            Self::Other(other) => other,
        }
    }
}

/// Parses a `RateLimit` field value (the lines of a repeated field joined with `,`).
pub fn parse_ratelimit(value: &[u8]) -> Vec<RateLimitItem> {
    let list = parse_list(value);
    named_items(&list)
        .filter_map(|(name, item)| {
            Some(RateLimitItem {
                policy: name,
                remaining: non_negative(item, "r")?,
                reset: non_negative(item, "t").map(Duration::from_secs),
                partition_key: byte_param(item, "pk"),
            })
        })
        .collect()
}

/// Parses a `RateLimit-Policy` field value.
pub fn parse_ratelimit_policy(value: &[u8]) -> Vec<QuotaPolicy> {
    let list = parse_list(value);
    named_items(&list)
        .filter_map(|(name, item)| {
            let unit = match item.params.get(KeyRef::constant("qu")) {
                None => QuotaUnit::Requests,
                Some(BareItem::String(s)) => QuotaUnit::parse(s.as_str()),
                Some(BareItem::Token(t)) => QuotaUnit::parse(t.as_str()),
                Some(_) => return None,
            };
            Some(QuotaPolicy {
                name,
                quota: non_negative(item, "q")?,
                unit,
                window: non_negative(item, "w").map(Duration::from_secs),
                partition_key: byte_param(item, "pk"),
            })
        })
        .collect()
}

/// A structured-field list, or an empty one when the value is malformed (the draft: ignore it).
fn parse_list(value: &[u8]) -> List {
    Parser::new(value).parse().unwrap_or_default()
}

/// The list's items with their names; inner lists and unnamed members are skipped.
fn named_items(list: &List) -> impl Iterator<Item = (String, &Item)> {
    list.iter().filter_map(|entry| match entry {
        ListEntry::Item(item) => {
            let name = match &item.bare_item {
                BareItem::String(s) => s.as_str().to_owned(),
                BareItem::Token(t) => t.as_str().to_owned(),
                _ => return None,
            };
            Some((name, item))
        }
        ListEntry::InnerList(_) => None,
    })
}

fn non_negative(item: &Item, key: &str) -> Option<u64> {
    match item.params.get(KeyRef::from_str(key).ok()?)? {
        BareItem::Integer(i) => u64::try_from(i64::from(*i)).ok(),
        _ => None,
    }
}

fn byte_param(item: &Item, key: &str) -> Option<Vec<u8>> {
    match item.params.get(KeyRef::from_str(key).ok()?)? {
        BareItem::ByteSequence(bytes) => Some(bytes.clone()),
        _ => None,
    }
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    // A structured-field string: printable ASCII with `"` and `\` escaped.
    if StringRef::from_str(name).is_err() {
        return Err(fmt::Error);
    }
    f.write_str("\"")?;
    for c in name.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

fn write_bytes(f: &mut fmt::Formatter<'_>, key: &str, bytes: &[u8]) -> fmt::Result {
    write!(f, ";{key}={}", sfv::ItemSerializer::new().bare_item(bytes).finish())
}

impl fmt::Display for RateLimitItem {
    /// Serializes the item as a server would send it, e.g. `"default";r=0;t=30`.
    ///
    /// Fails (with [`fmt::Error`]) when the policy name is not a valid structured-field string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(f, &self.policy)?;
        write!(f, ";r={}", self.remaining)?;
        if let Some(reset) = self.reset {
            write!(f, ";t={}", reset.as_secs())?;
        }
        if let Some(pk) = &self.partition_key {
            write_bytes(f, "pk", pk)?;
        }
        Ok(())
    }
}

impl fmt::Display for QuotaPolicy {
    /// Serializes the policy as a server would send it, e.g. `"burst";q=100;w=60`.
    ///
    /// Fails (with [`fmt::Error`]) when the name is not a valid structured-field string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(f, &self.name)?;
        write!(f, ";q={}", self.quota)?;
        if self.unit != QuotaUnit::Requests {
            f.write_str(";qu=")?;
            write_name(f, self.unit.as_str())?;
        }
        if let Some(window) = self.window {
            write!(f, ";w={}", window.as_secs())?;
        }
        if let Some(pk) = &self.partition_key {
            write_bytes(f, "pk", pk)?;
        }
        Ok(())
    }
}
