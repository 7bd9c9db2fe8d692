//! `unattended fetch URL`: one request through the full stack.

use std::io::Write as _;
use std::path::Path;

use http::{Method, Request};
use http_body_util::BodyExt as _;
use unattended_client::{Client, RequestBody, ServiceConfig};
use unattended_core::HasDisposition as _;
use unattended_runner::{EngineKinds, Runner};

use crate::logging::{self, LogFormat, Sink};
use crate::{CliError, Code};

/// Arguments of `fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The URL, or a path relative to the service's `base_url` (with `--service`).
    url: String,
    /// The service whose client (retries, breaker, pause, token) carries the request; default:
    /// the service whose `base_url` the URL starts with, else a client with default settings.
    #[arg(long, short)]
    service: Option<String>,
    /// The method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// Tells what each layer did (debug logs of the layers on standard error), and prints the
    /// response head.
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) async fn run(
    config: &Path,
    format: LogFormat,
    kinds: &EngineKinds,
    args: Args,
) -> Result<Code, CliError> {
    let level = if args.verbose {
        "warn,unattended=debug,unattended_client=debug,unattended_retry=debug,unattended_ratelimit=debug,unattended_breaker=debug,unattended_token=debug,unattended_gate=debug"
    } else {
        "warn"
    };
    logging::init(format, Sink::Stderr, level);
    let config = crate::load(config, kinds)?;
    let service = args.service.clone().or_else(|| {
        config.services.iter().find_map(|(name, s)| {
            let base = s.config.base_url.as_deref()?;
            args.url.starts_with(base).then(|| name.clone())
        })
    });
    let runner = Runner::builder(config).build().await?;
    let client = match &service {
        Some(name) => runner.client(name).cloned().ok_or_else(|| {
            CliError::new(format!("no service is called {name:?}"), Code::Usage)
                .help("the services are the `[services.NAME]` tables of the config")
        })?,
        None => Client::builder(ServiceConfig::default())
            .build()
            .map_err(|e| CliError::from_error(&e, Code::Usage))?,
    };
    let method: Method = args.method.parse().map_err(|_| {
        CliError::new(format!("{:?} is not an HTTP method", args.method), Code::Usage)
    })?;
    let req = Request::builder()
        .method(method)
        .uri(args.url.as_str())
        .body(RequestBody::default())
        .map_err(|e| CliError::new(format!("{:?} is not a URL: {e}", args.url), Code::Usage))?;
    if args.verbose {
        eprintln!(
            "> {} {} via {}",
            args.method,
            args.url,
            service.as_deref().unwrap_or("a default client")
        );
    }
    let result = client.send(req).await;
    runner.save_state().await?;
    let res = match result {
        Ok(res) => res,
        Err(e) => {
            let d = e.disposition();
            let code = match d {
                unattended_core::Disposition::Reauthorize | unattended_core::Disposition::Stop => {
                    Code::NeedsHuman
                }
                _ => Code::TaskFailed,
            };
            let attempts =
                e.attempts().map_or_else(String::new, |n| format!(" after {n} attempt(s)"));
            return Err(
                CliError::from_error(&e, code).help(format!("the runner would {d}{attempts}"))
            );
        }
    };
    if args.verbose {
        eprintln!("< {:?} {}", res.version(), res.status());
        for (name, value) in res.headers() {
            eprintln!("< {name}: {}", value.to_str().unwrap_or("(binary)"));
        }
    }
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::new(format!("the body could not be read: {e}"), Code::TaskFailed))?
        .to_bytes();
    let mut out = std::io::stdout();
    let _ = out.write_all(&body);
    let _ = out.flush();
    Ok(if status.is_success() || status.is_redirection() { Code::Ok } else { Code::TaskFailed })
}
