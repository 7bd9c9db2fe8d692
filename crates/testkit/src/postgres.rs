//! A real PostgreSQL server on 127.0.0.1, in a throwaway cluster of a temporary directory, for
//! the tests of several runners sharing one state.
//!
//! [`PgServer::start`] runs `initdb` (trust logins for the user `unattended`, no fsync: the
//! data dies with the test) and then `postgres` in the foreground as a child process, listening
//! on a free port of 127.0.0.1 only. As root, both run as the `postgres` user (PostgreSQL refuses
//! to run as root) through `setpriv`, which keeps the server the direct child. Dropping the
//! [`PgServer`] shuts the server down (fast shutdown, then a kill) and removes the directory.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use unattended_core::Clock;

/// Where PostgreSQL's server programs are, if installed: `$PG_BIN`, then the directory of
/// `initdb` on the `PATH`, then the newest `/usr/lib/postgresql/*/bin` (Debian, Ubuntu).
pub fn bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return has_server(&dir).then_some(dir);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
        // Debian links /usr/local/bin/initdb into its versioned directory: use the real one.
        return Some(
            std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir),
        );
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// A running throwaway PostgreSQL server; dropping it stops it and removes its files.
#[derive(Debug)]
pub struct PgServer {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    run_as: Option<(u32, u32)>,
}

impl PgServer {
    /// Creates a cluster with the programs of `bin` and starts it on a free port of 127.0.0.1;
    /// waits (up to 30 s) until it accepts connections.
    ///
    /// # Errors
    ///
    /// `initdb` or the server failed (their output is in the error), or the server was not
    /// ready in time.
    pub async fn start(bin: &Path, clock: Clock) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("unattended-pg").tempdir()?;
        let run_as =
            if rustix::process::geteuid().is_root() { Some(postgres_user()?) } else { None };
        if let Some((uid, gid)) = run_as {
            rustix::fs::chown(
                dir.path(),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
        }
        let data = dir.path().join("data");
        let out = command(run_as, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "unattended",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .arg("-D")
            .arg(&data)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        if let Some((uid, gid)) = run_as {
            rustix::fs::chown(
                dir.path().join("server.log"),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
        }
        let child = command(run_as, &bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = Self { child: Some(child), port, bin: bin.to_path_buf(), dir, run_as };
        server.wait_ready(clock).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, clock: Clock) -> io::Result<()> {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        for _ in 0..300 {
            // The last line of postmaster.pid says `ready` once connections are accepted.
            let ready = std::fs::read_to_string(&pid_file)
                .is_ok_and(|s| s.lines().last().is_some_and(|l| l.trim() == "ready"));
            if ready {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(io::Error::other(format!(
                    "postgres exited ({status}): {}",
                    self.log()
                )));
            }
            clock.sleep(Duration::from_millis(100)).await;
        }
        Err(io::Error::other(format!("postgres was not ready within 30 s: {}", self.log())))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://unattended@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` and returns its URL.
    ///
    /// # Errors
    ///
    /// `createdb` failed (its output is in the error).
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "unattended", name])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(self.url(name))
    }

    /// Stops the server now (fast shutdown: open connections are closed), and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        // A fast shutdown ends in well under a second; wait for it rather than poll.
        let _ = child.wait();
    }

    /// Whether the cluster's files are owned by another user (the server runs as `postgres`).
    pub fn runs_as_other_user(&self) -> bool {
        self.run_as.is_some()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `program`, run as `run_as` (uid, gid) through `setpriv` when given.
fn command(run_as: Option<(u32, u32)>, program: &Path) -> Command {
    match run_as {
        None => Command::new(program),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        }
    }
}

/// The uid and gid of the `postgres` user (or `nobody`), from `/etc/passwd`.
fn postgres_user() -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
    };
    find("postgres").or_else(|| find("nobody")).ok_or_else(|| {
        io::Error::other("running as root, and no `postgres` or `nobody` user to run the server as")
    })
}

/// A server for the test `test`, or `None` when PostgreSQL is not installed, said on stderr
/// past the test harness's capture so a skip shows in every run. With
/// `UNATTENDED_REQUIRE_POSTGRES` set (CI sets it where it installed PostgreSQL) a missing
/// server fails the test instead.
///
/// # Panics
///
/// PostgreSQL is required and missing, or it is installed and would not start.
pub async fn server_for(test: &str, clock: Clock) -> Option<PgServer> {
    use std::io::Write as _;
    let Some(bin) = bin_dir() else {
        assert!(
            std::env::var_os("UNATTENDED_REQUIRE_POSTGRES").is_none(),
            "UNATTENDED_REQUIRE_POSTGRES is set but no PostgreSQL server programs were found \
             (set PG_BIN to the directory of initdb and postgres)"
        );
        let _ = writeln!(
            io::stderr(),
            "\n!!! SKIPPED {test}: PostgreSQL is not installed (`apt-get install postgresql`, or \
             `bash .ci/run` as root, installs it; $PG_BIN names the directory of initdb) !!!\n"
        );
        return None;
    };
    match PgServer::start(&bin, clock).await {
        Ok(server) => Some(server),
        Err(e) => panic!("PostgreSQL in {} would not start: {e}", bin.display()),
    }
}
