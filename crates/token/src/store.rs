//! Where a refresh token is kept between runs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use unattended_core::{Disposition, HasDisposition};

/// Keeps the refresh token of one credential across restarts.
///
/// Token endpoints may rotate refresh tokens: the new one replaces the old, which may stop
/// working at once. An [`OAuth2Source`](crate::OAuth2Source) with a store saves every new refresh
/// token before it uses the access token that came with it, and reads the store at start, so a
/// restarted process continues with the newest one.
pub trait CredentialStore: Send + Sync + 'static {
    /// The refresh token saved last, if any.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    fn load(&self) -> Result<Option<SecretString>, CredentialStoreError>;

    /// Replaces the saved refresh token, all at once: after a crash the store holds either the
    /// old token or the new one, never a mix.
    ///
    /// # Errors
    ///
    /// The token could not be written durably; the old one is still in place.
    fn save(&self, refresh_token: &SecretString) -> Result<(), CredentialStoreError>;
}

/// A credential store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("credential store {}: could not {action}", path.display())]
pub struct CredentialStoreError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl CredentialStoreError {
    /// An error of the store at `path` while doing `action` ("read", "write", …).
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self { action, path: path.into(), source }
    }

    /// The file or database the store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl HasDisposition for CredentialStoreError {
    /// A full disk or a read-only file needs a human.
    fn disposition(&self) -> Disposition {
        Disposition::Stop
    }
}

/// Keeps a refresh token in a file of its own, readable by its owner only (mode `0600` on Unix).
///
/// A save writes a temporary file beside it, flushes it to disk, renames it over the old file
/// and flushes the directory: a crash at any point leaves the old token or the new one.
#[derive(Clone, Debug)]
pub struct FileCredentialStore {
    path: PathBuf,
}

impl FileCredentialStore {
    /// A store in the file at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file the token is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, action: &'static str) -> impl FnOnce(io::Error) -> CredentialStoreError + '_ {
        move |source| CredentialStoreError::new(action, &self.path, source)
    }
}

impl CredentialStore for FileCredentialStore {
    fn load(&self) -> Result<Option<SecretString>, CredentialStoreError> {
        match fs::read_to_string(&self.path) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Ok(Some(SecretString::from(text.trim().to_owned()))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.error("read the refresh token")(err)),
        }
    }

    fn save(&self, refresh_token: &SecretString) -> Result<(), CredentialStoreError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let write = || -> io::Result<()> {
            // A leftover temporary file could have looser permissions: start afresh.
            match fs::remove_file(&temp) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
            let mut file = private_file(&temp)?;
            file.write_all(refresh_token.expose_secret().as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)?;
            // The rename is durable only once the directory is.
            File::open(dir)?.sync_all()
        };
        write().map_err(|err| {
            let _ = fs::remove_file(&temp);
            self.error("save the refresh token")(err)
        })
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).open(path)
}
