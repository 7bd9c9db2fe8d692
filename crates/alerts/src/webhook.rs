//! The webhook sink: each alert `POST`ed as JSON through the workspace's client.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri, header};
use http_body_util::BodyExt as _;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt as _};
use unattended_client::{Body, Client, RequestBody, SecretPath, ServiceConfig};
use unattended_core::{
    BoxError, Classifier as _, Clock, Disposition, HasDisposition, HttpClassifier,
};

use crate::alert::Alert;
use crate::config::{ConfigError, Env, WebhookConfig, env};
use crate::sink::{AlertSink, DeliverFuture, SinkError};

/// Any HTTP transport a webhook's client can run on (hyper-util by default; an in-process
/// service in tests).
pub type Transport = BoxCloneSyncService<Request<RequestBody>, Response<Body>, BoxError>;

/// Boxes `transport` as a [`Transport`].
pub fn transport<T, B>(transport: T) -> Transport
where
    T: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(
        transport
            .map_response(|res: Response<B>| res.map(|b| b.map_err(Into::into).boxed_unsync()))
            .map_err(Into::into),
    )
}

/// `POST`s each alert as JSON (shape: [`Alert`]) to a URL, through a
/// [`Client`](unattended_client::Client): attempt timeouts, retries of what is safe to retry,
/// `Retry-After` and a circuit breaker. A `2xx` answer is a delivery; anything else a failure
/// that names the status and the URL's origin only. A `429` or `503` with `Retry-After` makes
/// the next attempt wait at least that long.
///
/// The URL may hold a secret: it appears in no log, error or `Debug` output; only its origin
/// does.
pub(crate) struct WebhookSink {
    name: String,
    url: Uri,
    origin: String,
    client: Client,
    clock: Clock,
}

impl WebhookSink {
    /// A webhook named `name`, on `transport` (else HTTPS), its client's jitter seeded by
    /// `seed`.
    pub(crate) fn new(
        name: &str,
        config: &WebhookConfig,
        clock: Clock,
        transport: Option<Transport>,
        seed: Option<u64>,
        lookup: &Env,
    ) -> Result<Self, ConfigError> {
        let text = match (&config.url, &config.url_env) {
            (Some(url), None) => url.clone(),
            (None, Some(var)) => env(lookup, name, var)?,
            _ => return Err(ConfigError::invalid(name, "give exactly one of `url` and `url_env`")),
        };
        // The parser's error and the text itself may show the secret: say only what is wrong.
        let url: Uri = text.trim().parse().map_err(|_| {
            ConfigError::invalid(
                name,
                "the URL is not valid (it is not shown: it may hold a secret)",
            )
        })?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(ConfigError::invalid(
                name,
                "the URL must start with https:// or http:// and name a host",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::invalid(name, "`timeout` must be more than zero"));
        }
        let mut service = ServiceConfig::default();
        service.timeouts.overall = config.timeout;
        service.timeouts.attempt = service.timeouts.attempt.min(config.timeout);
        let mut builder = Client::builder(service).clock(clock);
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        let transport = match transport {
            Some(transport) => transport,
            None => self::transport(
                unattended_client::https_transport(Duration::from_secs(10))
                    .map_err(|e| ConfigError::invalid(name, e.to_string()))?,
            ),
        };
        let client =
            builder.build_with(transport).map_err(|e| ConfigError::invalid(name, e.to_string()))?;
        let origin = origin_of(&url);
        Ok(Self { name: name.to_owned(), url, origin, client, clock })
    }

    async fn post(&self, alert: &Alert) -> Result<(), SinkError> {
        let body = serde_json::to_vec(alert)
            .map_err(|e| SinkError::new(format!("{}: {e}", self.origin)))?;
        let mut req = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(RequestBody::from(body))
            .map_err(|_| {
                SinkError::new(format!("{}: the request could not be made", self.origin))
            })?;
        // The client's logs then show the origin only.
        req.extensions_mut().insert(SecretPath);
        let res = match self.client.send(req).await {
            Ok(res) => res,
            Err(e) => {
                let error = SinkError::new(e.to_string());
                return Err(match e.disposition() {
                    Disposition::RetryAt(at) => error.not_before(at),
                    _ => error,
                });
            }
        };
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let not_before = HttpClassifier::new()
            .classify_response(&res, &self.clock)
            .err()
            .and_then(|class| class.not_before());
        let error = SinkError::new(format!("HTTP {status} from {}", self.origin));
        Err(match not_before {
            Some(at) => error.not_before(at),
            None => error,
        })
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> DeliverFuture<'a> {
        Box::pin(self.post(alert))
    }
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// `scheme://host[:port]` of `url`, without user information, path or query.
fn origin_of(url: &Uri) -> String {
    let scheme = url.scheme_str().unwrap_or("http");
    let host = url.host().unwrap_or("");
    match url.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// The origin of the URL in `text`, for `Debug` output of a config.
pub(crate) fn origin(text: &str) -> String {
    text.trim().parse::<Uri>().map_or_else(|_| "<not a valid URL>".to_owned(), |u| origin_of(&u))
}
