//! `unattended run`: the long-lived runner.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{EngineKinds, Runner, RunnerSettings};

use crate::logging::{self, LogFormat, Sink};
use crate::{CliError, Code};

/// What `unattended help run` teaches.
pub(crate) const EXAMPLE: &str = "\
A first config, unattended.toml:

    [tasks.prices]
    engine = \"scrape\"
    every = \"30m\"          # or cron = \"*/30 * * * *\" with tz = \"Europe/London\"
    jitter = \"2m\"          # start up to 2 minutes late, so runs do not all hit at once
    user_agent = \"pricewatch/1.0 (you@example.com)\"
    pages = [\"https://shop.example/item/1\"]

    [tasks.prices.fields]
    price = \".price\"

    [tasks.prices.report]
    jsonl = \"changes.jsonl\"

    [tasks.backup]
    engine = \"command\"
    cron = \"30 2 * * *\"
    tz = \"Europe/London\"
    program = \"/usr/local/bin/backup.sh\"

Then:

    unattended check      # every mistake with its line and column; each task's next runs
    unattended run        # logs as text on a terminal, JSON lines otherwise
    unattended status     # in another terminal: what each task is doing
    unattended run --http 127.0.0.1:9464   # and a status page at http://127.0.0.1:9464/

At the first SIGTERM or Ctrl-C no new run starts, and running ones get
[runner] shutdown_grace (default 30s) to save their checkpoints; a second
signal exits at once. A task whose credentials were revoked is disabled and
alerted once, and `unattended status` names the `unattended auth CREDENTIAL`
that saves new ones and makes it run again (as `unattended reset TASK` does
after fixing another cause), without restarting the runner.";

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Serves the status page (`/`), `/status.json` and `/metrics` on this address, such as
    /// `127.0.0.1:9464` (as `[runner] http`). Any address but loopback needs
    /// `[runner] http_token_env`.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

pub(crate) async fn run(
    config: &Path,
    format: LogFormat,
    kinds: &EngineKinds,
    args: Args,
) -> Result<Code, CliError> {
    logging::init(format, Sink::Stdout, "info");
    let mut config = crate::load(config, kinds)?;
    if args.http.is_some() {
        config.runner.http = args.http;
    }
    let token = http_token(&config.runner)?;
    tracing::info!(
        config = %config.file.display(),
        state = %config.state.describe(),
        tasks = config.tasks.len(),
        "starting"
    );
    let notify = systemd::Notifier::from_env();
    notify.check_watchdog(config.monitor.interval);
    let watchdog = notify.clone();
    let http = config.runner.http;
    let shared = Arc::new(config.clone());
    let clock = Clock::system();
    let mut runner = Runner::builder(config)
        .clock(clock)
        .on_watch(move || watchdog.send("WATCHDOG=1"))
        .build()
        .await?;
    if let Some(addr) = http {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            CliError::new(format!("cannot listen on {addr} for the status page: {e}"), Code::Usage)
                .help("choose a free address with `--http` or `[runner] http`, or leave it out")
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!(%addr, "status page at http://{addr}/ (and /status.json, /metrics)");
        let site = crate::http::Site {
            view: runner.view(),
            store: runner.store().clone(),
            config: shared,
            clock,
            token,
        };
        tokio::spawn(crate::http::serve(listener, site));
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    notify.send("READY=1");
    runner.run(shutdown).await?;
    notify.send("STOPPING=1");
    tracing::info!("stopped");
    Ok(Code::Ok)
}

/// The page's token, read from the variable `[runner] http_token_env` names; an address off
/// loopback without one is refused.
fn http_token(runner: &RunnerSettings) -> Result<Option<Arc<SecretString>>, CliError> {
    let Some(addr) = runner.http else { return Ok(None) };
    let Some(var) = &runner.http_token_env else {
        if RunnerSettings::http_needs_token(&addr) {
            return Err(CliError::new(
                format!("--http {addr} is not a loopback address, and the page has no token"),
                Code::Usage,
            )
            .help(
                "set `[runner] http_token_env = \"UNATTENDED_HTTP_TOKEN\"` and put a long random \
                 token in that variable, or serve on 127.0.0.1 behind your own proxy",
            ));
        }
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(token) if token.trim().len() >= 16 => {
            Ok(Some(Arc::new(SecretString::from(token.trim().to_owned()))))
        }
        Ok(_) => Err(CliError::new(
            format!("the page's token in {var} is shorter than 16 characters"),
            Code::Usage,
        )
        .help("use a long random token, such as the output of `openssl rand -hex 24`")),
        Err(_) => Err(CliError::new(
            format!("`[runner] http_token_env` names {var}, which is not set"),
            Code::Usage,
        )
        .help(format!("set {var} to the page's token in the runner's environment"))),
    }
}

/// The first SIGTERM or SIGINT asks for a graceful stop; a second one exits at once.
async fn signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("cannot listen for signals; stop the runner with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        shutdown.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("a second signal: exiting now");
        #[allow(clippy::exit)] // the documented behaviour of a second signal
        std::process::exit(130);
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        let _ = tokio::signal::ctrl_c().await;
        #[allow(clippy::exit)]
        std::process::exit(130);
    }
}

/// The systemd notification protocol (`sd_notify`): one datagram per state to `NOTIFY_SOCKET`.
mod systemd {
    use std::sync::Arc;

    #[derive(Clone, Debug, Default)]
    pub(crate) struct Notifier {
        #[cfg(unix)]
        socket: Option<Arc<(std::os::unix::net::UnixDatagram, std::path::PathBuf)>>,
    }

    impl Notifier {
        /// The socket systemd gave, if any (`Type=notify`).
        pub(crate) fn from_env() -> Self {
            #[cfg(unix)]
            {
                let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Self::default() };
                let path = std::path::PathBuf::from(path);
                if path.as_os_str().to_string_lossy().starts_with('@') {
                    tracing::warn!(
                        "NOTIFY_SOCKET is an abstract socket, which is not supported; no notifications"
                    );
                    return Self::default();
                }
                match std::os::unix::net::UnixDatagram::unbound() {
                    Ok(socket) => Self { socket: Some(Arc::new((socket, path))) },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a socket for systemd notifications");
                        Self::default()
                    }
                }
            }
            #[cfg(not(unix))]
            Self::default()
        }

        /// Warns when systemd's watchdog (`WatchdogSec=`, given as `WATCHDOG_USEC`) would fire
        /// between two of the monitor's rounds, which ping it.
        pub(crate) fn check_watchdog(&self, interval: std::time::Duration) {
            let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse::<u64>().ok());
            if let Some(usec) = usec
                && std::time::Duration::from_micros(usec) < interval * 2
            {
                tracing::warn!(
                    watchdog_usec = usec,
                    monitor_interval = ?interval,
                    "WatchdogSec is less than twice [monitor] interval: systemd would restart a \
                     healthy runner; raise WatchdogSec or lower the interval"
                );
            }
        }

        pub(crate) fn send(&self, state: &str) {
            #[cfg(unix)]
            if let Some(socket) = &self.socket
                && let Err(e) = socket.0.send_to(state.as_bytes(), &socket.1)
            {
                tracing::warn!(error = %e, state, "systemd notification not sent");
            }
            #[cfg(not(unix))]
            let _ = state;
        }
    }
}
