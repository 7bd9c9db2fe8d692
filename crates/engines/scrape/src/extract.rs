//! Fields out of HTML with CSS selectors, and the hash that says whether they changed.

use std::collections::BTreeMap;

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::settings::FieldSpec;

/// The fields of one page: name → `null` (no match), a string, or a list of strings.
pub type Fields = BTreeMap<String, Value>;

/// The fields a task extracts, their selectors parsed once.
#[derive(Debug)]
pub struct Extractor {
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Field {
    name: String,
    selector: Selector,
    attr: Option<String>,
    all: bool,
}

impl Extractor {
    /// Parses the selectors of `specs`.
    ///
    /// # Errors
    ///
    /// A selector that is not valid CSS, named with its field.
    pub fn new<'a>(
        specs: impl IntoIterator<Item = (&'a String, &'a FieldSpec)>,
    ) -> Result<Self, String> {
        let mut fields = Vec::new();
        for (name, spec) in specs {
            let (css, attr, all) = match spec {
                FieldSpec::Selector(css) => (css, None, false),
                FieldSpec::Detailed { selector, attr, all } => (selector, attr.clone(), *all),
            };
            let selector = Selector::parse(css)
                .map_err(|e| format!("fields.{name}: {css:?} is not a CSS selector: {e}"))?;
            fields.push(Field { name: name.clone(), selector, attr, all });
        }
        Ok(Self { fields })
    }

    /// The fields of `html`. Text is trimmed and its runs of white space made one space, so a
    /// page re-indented by its CMS does not count as changed.
    pub fn extract(&self, html: &str) -> Fields {
        // `Html` is not `Send`: it lives and dies inside this call, never across an await.
        let doc = Html::parse_document(html);
        self.fields
            .iter()
            .map(|f| {
                let mut values =
                    doc.select(&f.selector).filter_map(|el| value(el, f.attr.as_deref()));
                let value = if f.all {
                    Value::Array(values.map(Value::String).collect())
                } else {
                    values.next().map_or(Value::Null, Value::String)
                };
                (f.name.clone(), value)
            })
            .collect()
    }
}

fn value(el: ElementRef<'_>, attr: Option<&str>) -> Option<String> {
    match attr {
        Some(attr) => el.value().attr(attr).map(collapse),
        None => Some(collapse(&el.text().collect::<String>())),
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The SHA-256 of the fields' canonical JSON (keys sorted), in hex: equal fields, equal hash,
/// whatever else on the page moved.
pub fn hash(fields: &Fields) -> String {
    let json = serde_json::to_vec(fields).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extractor(specs: &[(&str, FieldSpec)]) -> Extractor {
        let specs: BTreeMap<String, FieldSpec> =
            specs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        Extractor::new(&specs).unwrap()
    }

    const PAGE: &str = r#"<html><body>
        <h1 class="title">  Blue   kettle </h1>
        <span class="price">£12.50</span>
        <div class="stock" data-count="3">In stock</div>
        <a class="tag">kitchen</a><a class="tag">tea</a>
    </body></html>"#;

    #[test]
    fn text_attributes_and_lists() {
        let x = extractor(&[
            ("title", FieldSpec::Selector("h1.title".into())),
            ("price", FieldSpec::Selector(".price".into())),
            (
                "stock",
                FieldSpec::Detailed {
                    selector: ".stock".into(),
                    attr: Some("data-count".into()),
                    all: false,
                },
            ),
            ("tags", FieldSpec::Detailed { selector: ".tag".into(), attr: None, all: true }),
            ("missing", FieldSpec::Selector(".nothing".into())),
        ]);
        let f = x.extract(PAGE);
        assert_eq!(f["title"], "Blue kettle");
        assert_eq!(f["price"], "£12.50");
        assert_eq!(f["stock"], "3");
        assert_eq!(f["tags"], serde_json::json!(["kitchen", "tea"]));
        assert_eq!(f["missing"], Value::Null);
    }

    #[test]
    fn the_hash_follows_the_fields_not_the_page() {
        let x = extractor(&[("price", FieldSpec::Selector(".price".into()))]);
        let a = hash(&x.extract(PAGE));
        let moved = PAGE.replace("<h1", "<p>new banner</p>\n\n   <h1");
        assert_eq!(hash(&x.extract(&moved)), a);
        assert_ne!(hash(&x.extract(&PAGE.replace("12.50", "11.99"))), a);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn a_bad_selector_is_named() {
        let specs = BTreeMap::from([("price".to_owned(), FieldSpec::Selector("..x[".into()))]);
        let err = Extractor::new(&specs).unwrap_err();
        assert!(err.contains("fields.price"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_panic() {
        let x = extractor(&[("p", FieldSpec::Selector("p".into()))]);
        let f = x.extract("<p>\u{0}<<<>>></p><p><![CDATA[");
        assert!(f.contains_key("p"));
    }
}
