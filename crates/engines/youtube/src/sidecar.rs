//! The sidecar file beside each video: its title, description, tags, category and privacy.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a sidecar (`<stem>.toml` beside `<stem>.mp4`) says about its video.
///
/// ```toml
/// title = "Unattended uploads, a talk"
/// description = "Recorded at the meetup."
/// tags = ["rust", "automation"]
/// category = 28                        # YouTube's category id (28: Science & Technology)
/// privacy = "unlisted"                 # public | unlisted | private (the default)
/// publish_at = "2026-12-24T18:00:00Z"  # optional: scheduled, needs privacy = "private"
/// made_for_kids = false                # optional
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Metadata {
    /// The title (required).
    pub title: String,
    /// The description.
    #[serde(default)]
    pub description: String,
    /// Keywords.
    #[serde(default)]
    pub tags: Vec<String>,
    /// YouTube's category id, as a number or a string of digits.
    #[serde(default, deserialize_with = "de_category")]
    pub category: Option<String>,
    /// Who may see it (default private).
    #[serde(default)]
    pub privacy: Privacy,
    /// When a private video becomes public.
    #[serde(default)]
    pub publish_at: Option<Timestamp>,
    /// The audience declaration YouTube asks for.
    #[serde(default)]
    pub made_for_kids: Option<bool>,
}

/// A video's privacy status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Anyone can find it.
    Public,
    /// Anyone with the link.
    Unlisted,
    /// Only the owner (the default).
    #[default]
    Private,
}

impl Privacy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }
}

fn de_category<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Category {
        Number(u32),
        Text(String),
    }
    match Category::deserialize(de)? {
        Category::Number(n) => Ok(Some(n.to_string())),
        Category::Text(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => Ok(Some(t)),
        Category::Text(t) => Err(serde::de::Error::custom(format!(
            "category {t:?} is not a YouTube category id (a number such as 22 or 28)"
        ))),
    }
}

impl Metadata {
    /// Reads a sidecar's text, checking what can be checked without asking YouTube.
    ///
    /// # Errors
    ///
    /// A sentence saying what is wrong (with the line and column for TOML mistakes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let meta: Self = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        if meta.title.trim().is_empty() {
            return Err("`title` is empty".to_owned());
        }
        if meta.publish_at.is_some() && meta.privacy != Privacy::Private {
            return Err("`publish_at` needs privacy = \"private\" (YouTube makes the video \
                        public at that time)"
                .to_owned());
        }
        Ok(meta)
    }

    /// The video resource for `videos.insert` (`snippet` and `status`).
    pub fn resource(&self) -> Value {
        let mut snippet = json!({ "title": self.title, "description": self.description });
        if !self.tags.is_empty() {
            snippet["tags"] = json!(self.tags);
        }
        if let Some(category) = &self.category {
            snippet["categoryId"] = json!(category);
        }
        let mut status = json!({ "privacyStatus": self.privacy.as_str() });
        if let Some(at) = self.publish_at {
            status["publishAt"] = json!(at.to_string());
        }
        if let Some(kids) = self.made_for_kids {
            status["selfDeclaredMadeForKids"] = json!(kids);
        }
        json!({ "snippet": snippet, "status": status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sidecar() {
        let meta = Metadata::parse(
            r#"
            title = "A talk"
            description = "Recorded."
            tags = ["rust", "talk"]
            category = 28
            privacy = "private"
            publish_at = "2026-12-24T18:00:00Z"
            made_for_kids = false
            "#,
        )
        .unwrap();
        assert_eq!(
            meta.resource(),
            json!({
                "snippet": {"title": "A talk", "description": "Recorded.", "tags": ["rust", "talk"],
                    "categoryId": "28"},
                "status": {"privacyStatus": "private", "publishAt": "2026-12-24T18:00:00Z",
                    "selfDeclaredMadeForKids": false}
            })
        );
    }

    #[test]
    fn defaults_are_private_and_bare() {
        let meta = Metadata::parse("title = \"t\"\ncategory = \"22\"").unwrap();
        assert_eq!(meta.privacy, Privacy::Private);
        assert_eq!(meta.resource()["snippet"]["categoryId"], "22");
        assert!(meta.resource()["snippet"].get("tags").is_none());
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let cases = [
            ("", "title"),
            ("title = \"  \"", "empty"),
            ("title = \"t\"\nprivacy = \"secret\"", "secret"),
            ("title = \"t\"\ncategory = \"music\"", "category"),
            ("title = \"t\"\npublish_at = \"tomorrow\"", "publish_at"),
            (
                "title = \"t\"\nprivacy = \"public\"\npublish_at = \"2026-12-24T18:00:00Z\"",
                "private",
            ),
            ("title = \"t\"\ncolour = \"red\"", "colour"),
            ("title = ", "line 1"),
        ];
        for (text, says) in cases {
            let err = Metadata::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
