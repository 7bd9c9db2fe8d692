//! A real nginx on 127.0.0.1, with its own configuration in a temporary directory, for tests
//! and measurements against the rate limiter most sites put in front of an API.
//!
//! Each location serves a small JSON file behind `limit_req` (a file, because `return` runs
//! before `limit_req` and is never limited), in a zone of its own, keyed by the client address
//! (all of them 127.0.0.1: one bucket per location). nginx runs in the foreground as a child
//! process (`daemon off`, `master_process off`, so it reads the temporary directory as the user
//! who started it) and is killed when the [`Nginx`] is dropped.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use unattended_core::Clock;

/// One limited location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    /// The path, such as `/with-retry-after`.
    pub path: String,
    /// `rate=<n>r/s`.
    pub rate: u32,
    /// `burst=<n> nodelay`.
    pub burst: u32,
    /// `add_header Retry-After <seconds> always`, if set.
    pub retry_after: Option<u64>,
}

impl Limited {
    /// `path` limited to `rate` per second with `burst`, refused with `429`.
    pub fn new(path: &str, rate: u32, burst: u32) -> Self {
        Self { path: path.to_owned(), rate, burst, retry_after: None }
    }

    /// Adds `Retry-After: <seconds>` to the answers.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// A running nginx; dropping it stops it and removes its directory.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    paths: Vec<String>,
}

/// Where nginx is, if it is installed: `$NGINX`, then `nginx` on the `PATH`, then the
/// distributions' `/usr/sbin/nginx`.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

impl Nginx {
    /// Starts nginx with `binary` on a free port of 127.0.0.1, serving `locations`, and waits
    /// (up to 10 s) until it accepts connections.
    ///
    /// # Errors
    ///
    /// The directory could not be written, nginx could not be started, or it did not listen in
    /// time (its error log is in the error).
    pub async fn start(binary: &Path, locations: &[Limited]) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("unattended-nginx").tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        std::fs::create_dir_all(dir.path().join("www"))?;
        let mut zones = String::new();
        let mut served = String::new();
        for (i, location) in locations.iter().enumerate() {
            let file = location.path.trim_start_matches('/').replace('/', "_");
            std::fs::write(dir.path().join("www").join(&file), b"{\"ok\":true}\n")?;
            zones.push_str(&format!(
                "    limit_req_zone $binary_remote_addr zone=z{i}:1m rate={}r/s;\n",
                location.rate
            ));
            let header = location
                .retry_after
                .map(|s| format!("            add_header Retry-After {s} always;\n"))
                .unwrap_or_default();
            served.push_str(&format!(
                "        location = {path} {{\n            limit_req zone=z{i} burst={burst} nodelay;\n{header}            access_log {root}/access-{i}.log statuses;\n            default_type application/json;\n            try_files /{file} =404;\n        }}\n",
                path = location.path,
                burst = location.burst,
                root = dir.path().display(),
            ));
        }
        let root = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {root}/nginx.pid;\n\
             error_log {root}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n    log_format statuses $status;\n    client_body_temp_path {root}/body;\n\
             \x20   proxy_temp_path {root}/proxy;\n    fastcgi_temp_path {root}/fastcgi;\n\
             \x20   uwsgi_temp_path {root}/uwsgi;\n    scgi_temp_path {root}/scgi;\n\
             \x20   keepalive_requests 100000;\n    limit_req_status 429;\n{zones}\
             \x20   server {{\n        listen {addr};\n        root {root}/www;\n{served}    }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let paths = locations.iter().map(|l| l.path.clone()).collect();
        let mut nginx = Self { child, addr, dir, paths };
        nginx.wait_listening().await?;
        Ok(nginx)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests to `path` nginx answered `200` and `429` so far (from its access log).
    ///
    /// # Errors
    ///
    /// `path` is not one of the locations, or its log cannot be read.
    pub fn statuses(&self, path: &str) -> io::Result<(usize, usize)> {
        let i = self.paths.iter().position(|p| p == path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no location {path}"))
        })?;
        let log = match std::fs::read_to_string(self.dir.path().join(format!("access-{i}.log"))) {
            Ok(log) => log,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let count = |status: &str| log.lines().filter(|l| l.trim() == status).count();
        Ok((count("200"), count("429")))
    }

    async fn wait_listening(&mut self) -> io::Result<()> {
        let clock = Clock::system();
        let deadline = clock.now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let log =
                    std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
                return Err(io::Error::other(format!("nginx exited with {status}: {log}")));
            }
            if clock.now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "nginx did not listen"));
            }
            clock.sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
