//! A post: a Markdown file whose YAML front matter says what it is and where it goes.
//!
//! ```markdown
//! ---
//! title: Retries without regrets
//! tags: [rust, http]            # or "rust, http"
//! series: Unattended
//! cover_image: https://example.com/cover.png
//! description: What a retry layer should know.
//! targets: [dev, hashnode]      # optional: the task's targets otherwise; the first is primary
//! canonical_url: https://blog.example/retries   # optional: the original lives elsewhere
//! id: retries                   # optional: keeps the post's identity if the file is renamed
//! publish: true                 # nothing is published without it
//! ---
//! The body…
//! ```
//!
//! The front matter is parsed by `serde-saphyr`; keys other than these are left alone (other
//! tools' keys, such as `date` or `layout`). A file without front matter is not a post.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::settings::Target;

/// A post read from the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// The file.
    pub path: PathBuf,
    /// Its identity: the front matter's `id`, else its path under the folder (with `/`).
    pub key: String,
    /// The mark the engine puts in the body on every target, to find the post there again.
    pub marker: String,
    /// The SHA-256 of the file, in hex: a change means the copies need an update.
    pub hash: String,
    /// What the front matter says.
    pub meta: Meta,
    /// The Markdown after the front matter.
    pub body: String,
}

/// What a post's front matter says, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// The title (never empty when `publish` is true).
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The series it belongs to.
    pub series: Option<String>,
    /// The cover image's URL.
    pub cover_image: Option<String>,
    /// A short description.
    pub description: Option<String>,
    /// Where it goes, the primary first.
    pub targets: Vec<Target>,
    /// The original's URL, when it lives outside the targets.
    pub canonical_url: Option<String>,
    /// Whether it is ready.
    pub publish: bool,
}

/// A file that could not be read as a post: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct PostError {
    /// The file.
    pub path: PathBuf,
    /// The line (from 1) in the file.
    pub line: u64,
    /// The column (from 1).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct FrontMatter {
    #[serde(default)]
    title: Option<Spanned<String>>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    series: Option<String>,
    #[serde(default, alias = "cover", alias = "main_image")]
    cover_image: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    targets: Option<Spanned<Vec<Target>>>,
    #[serde(default)]
    canonical_url: Option<Spanned<String>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    publish: bool,
}

/// Tags as a list or as one comma-separated string (DEV's own front matter writes them so).
#[derive(Deserialize)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn into_list(self) -> Vec<String> {
        let list = match self {
            Self::List(list) => list,
            Self::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        list.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
    }
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_url(text: &str) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl Post {
    /// Reads the post in `text`, the file `path` whose identity under the folder is `relative`;
    /// `targets` are the task's (the default, and all a post may name). `None`: the file has
    /// no front matter, so it is not a post.
    ///
    /// # Errors
    ///
    /// The front matter is not closed, is not valid YAML, has a key of the wrong type, or asks
    /// for what cannot be done (no title, a target the task does not publish to, a canonical
    /// URL that is not one); the error gives the line and column in the file.
    pub fn parse(
        path: &Path,
        relative: &str,
        text: &str,
        targets: &[Target],
    ) -> Result<Option<Self>, PostError> {
        let error = |line: u64, column: u64, message: String| PostError {
            path: path.to_owned(),
            line,
            column,
            message,
        };
        let text_no_bom = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text_no_bom.split_inclusive('\n');
        let Some(first) = lines.next() else { return Ok(None) };
        if first.trim_end() != "---" {
            return Ok(None);
        }
        // The front matter runs to the next line that is `---` (or YAML's `...`).
        let mut yaml_len = 0;
        let mut closed = None;
        for line in lines {
            if matches!(line.trim_end(), "---" | "...") {
                closed = Some(line.len());
                break;
            }
            yaml_len += line.len();
        }
        let Some(close_len) = closed else {
            return Err(error(
                1,
                1,
                "the front matter opened here is never closed by `---`".into(),
            ));
        };
        let start = first.len();
        let yaml = &text_no_bom[start..start + yaml_len];
        let body = &text_no_bom[start + yaml_len + close_len..];
        // Lines of the front matter start at 2 in the file.
        let at = |loc: serde_saphyr::Location| (loc.line() + 1, loc.column());
        let fm: FrontMatter = if yaml.trim().is_empty() {
            return Ok(None);
        } else {
            serde_saphyr::from_str(yaml).map_err(|e| {
                let (line, column) = e.location().map_or((2, 1), at);
                let plain =
                    serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
                let message = e.without_snippet().render_with_options(plain);
                error(line, column.max(1), strip_location(&message))
            })?
        };

        let title = fm.title.as_ref().map(|t| t.value.trim().to_owned()).unwrap_or_default();
        if fm.publish && title.is_empty() {
            let (line, column) = fm.title.as_ref().map_or((2, 1), |t| at(t.referenced));
            return Err(error(line, column, "a post to publish needs a `title`".into()));
        }
        let chosen = match &fm.targets {
            Some(spanned) => {
                let (line, column) = at(spanned.referenced);
                if spanned.value.is_empty() {
                    return Err(error(line, column, "`targets` is empty".into()));
                }
                for (i, t) in spanned.value.iter().enumerate() {
                    if !targets.contains(t) {
                        let known: Vec<&str> = targets.iter().map(|t| t.name()).collect();
                        return Err(error(
                            line,
                            column,
                            format!(
                                "target {t} is not one of the task's targets ({})",
                                known.join(", ")
                            ),
                        ));
                    }
                    if spanned.value[..i].contains(t) {
                        return Err(error(line, column, format!("`targets` names {t} twice")));
                    }
                }
                spanned.value.clone()
            }
            None => targets.to_vec(),
        };
        for (name, url) in [("canonical_url", &fm.canonical_url), ("cover_image", &fm.cover_image)]
        {
            if let Some(url) = url
                && !is_url(url.value.trim())
            {
                let (line, column) = at(url.referenced);
                return Err(error(line, column, format!("`{name}` must be an http(s) URL")));
            }
        }
        let key = match fm.id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => relative.to_owned(),
        };
        let meta = Meta {
            title,
            tags: fm.tags.map(Tags::into_list).unwrap_or_default(),
            series: fm.series.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            cover_image: fm.cover_image.map(|u| u.value.trim().to_owned()),
            description: fm.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
            targets: chosen,
            canonical_url: fm.canonical_url.map(|u| u.value.trim().to_owned()),
            publish: fm.publish,
        };
        Ok(Some(Self {
            path: path.to_owned(),
            marker: sha256(key.as_bytes())[..16].to_owned(),
            key,
            hash: sha256(text.as_bytes()),
            meta,
            body: body.to_owned(),
        }))
    }
}

/// The YAML parser's message without its own " at line L column C" (the file's is given).
fn strip_location(message: &str) -> String {
    let message = message.trim();
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// What reading the folder gave: the posts, and the files that could not be read as posts.
#[derive(Debug, Default)]
pub struct Folder {
    /// Posts, by path.
    pub posts: Vec<Post>,
    /// Files that are not valid posts.
    pub errors: Vec<PostError>,
}

impl Folder {
    /// Reads every `*.md` file under `dir` (subfolders too, hidden ones skipped), in path order.
    ///
    /// # Errors
    ///
    /// The folder itself cannot be read; a file that cannot be read is in
    /// [`errors`](Self::errors).
    pub fn read(dir: &Path, targets: &[Target]) -> std::io::Result<Self> {
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        files.sort();
        let mut out = Self::default();
        for (relative, path) in files {
            let text = match std::fs::read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => {
                    out.errors.push(PostError {
                        path,
                        line: 1,
                        column: 1,
                        message: "the file is not UTF-8".into(),
                    });
                    continue;
                }
                Err(e) => {
                    out.errors.push(PostError { path, line: 1, column: 1, message: e.to_string() });
                    continue;
                }
            };
            match Post::parse(&path, &relative, &text, targets) {
                Ok(Some(post)) => out.posts.push(post),
                Ok(None) => {}
                Err(e) => out.errors.push(e),
            }
        }
        // Two files with one `id` would be one post twice: both are refused.
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for post in &out.posts {
            *seen.entry(post.key.clone()).or_default() += 1;
        }
        let (posts, twice): (Vec<Post>, Vec<Post>) =
            out.posts.into_iter().partition(|p| seen[&p.key] == 1);
        out.posts = posts;
        for post in twice {
            out.errors.push(PostError {
                path: post.path,
                line: 1,
                column: 1,
                message: format!("another file has the same id {:?}", post.key),
            });
        }
        out.errors.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("md")) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((relative.join("/"), path));
        }
    }
    Ok(())
}

impl fmt::Display for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.meta.title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Target; 2] = [Target::Dev, Target::Hashnode];

    fn parse(text: &str) -> Result<Option<Post>, PostError> {
        Post::parse(Path::new("posts/a.md"), "a.md", text, &BOTH)
    }

    #[test]
    fn front_matter_in_its_forms() {
        let post = parse("---\ntitle: Hi\ntags: rust, http , \npublish: true\n---\nBody\n")
            .unwrap()
            .unwrap();
        assert_eq!(post.meta.tags, ["rust", "http"], "a comma-separated string");
        assert_eq!(post.meta.targets, BOTH, "the task's targets");
        assert_eq!(post.body, "Body\n");
        assert_eq!((post.key.as_str(), post.marker.len()), ("a.md", 16));

        // A byte-order mark, CRLF lines, YAML's `...` closer, keys of other tools, an id.
        let text = "\u{feff}---\r\ntitle: Windows\r\nid: kept\r\ntargets: [hashnode]\r\nlayout: post\r\npublish: true\r\n...\r\nBody\r\n";
        let post = parse(text).unwrap().unwrap();
        assert_eq!(post.meta.title, "Windows");
        assert_eq!(post.meta.targets, [Target::Hashnode]);
        assert_eq!(post.key, "kept");
        assert_eq!(post.body, "Body\r\n");
        assert_eq!(post.hash, sha256(text.as_bytes()));

        // No front matter, or an empty one: not a post. Not ready: no title needed.
        assert_eq!(parse("# Just notes\n").unwrap(), None);
        assert_eq!(parse("---\n---\nbody\n").unwrap(), None);
        assert!(!parse("---\ndraft: yes\n---\n").unwrap().unwrap().meta.publish);
    }

    #[test]
    fn mistakes_have_their_line_and_column_in_the_file() {
        let err = parse("---\ntitle: x\npublish: maybe\n---\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 10), "{err}");
        let err = parse("---\ntitle: x\ncanonical_url: blog.example/x\npublish: true\n---\n")
            .unwrap_err();
        assert_eq!((err.line, err.column), (3, 16), "{err}");
        assert!(err.message.contains("http(s) URL"), "{err}");
        let err = parse("---\ntitle: x\ntargets: [dev, dev]\n---\n").unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
        let err = Post::parse(
            Path::new("a.md"),
            "a.md",
            "---\ntitle: x\ntargets: [hashnode]\n---\n",
            &[Target::Dev],
        )
        .unwrap_err();
        assert!(err.message.contains("not one of the task's targets (dev)"), "{err}");
        assert_eq!(err.to_string(), format!("a.md:3:10: {}", err.message));
    }
}
