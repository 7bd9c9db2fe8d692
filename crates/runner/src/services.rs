//! One client per configured service, shared by every task that names it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use tower::util::BoxCloneSyncService;
use unattended_client::{Body, Client, RequestBody, ServiceConfig};
use unattended_core::{BoxError, Clock};
use unattended_store::Store;
use unattended_token::{CacheConfig, OAuth2Client, OAuth2Source, Placement, TokenCache};

use crate::config::{OAuthSettings, RunnerConfig};
use crate::error::RunnerError;

/// An HTTP transport for a service's client: what the client sends its requests through (the
/// default is HTTPS over hyper-util; simulations and tests give in-process mock services).
pub type Transport = BoxCloneSyncService<Request<RequestBody>, Response<Body>, BoxError>;

/// Boxes any HTTP service (a testkit mock, a `tower::service_fn`) as a [`Transport`].
pub fn transport<S, B>(service: S) -> Transport
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    use tower::ServiceExt as _;
    BoxCloneSyncService::new(
        service
            .map_response(|res: Response<B>| res.map(|b| b.map_err(Into::into).boxed_unsync()))
            .map_err(Into::into),
    )
}

/// Where the OAuth client ids and secrets are read: the process environment, unless a test or a
/// simulation gives its own.
#[derive(Clone)]
pub(crate) struct Env(pub(crate) Arc<dyn Fn(&str) -> Option<String> + Send + Sync>);

impl Env {
    /// The process environment.
    pub(crate) fn process() -> Self {
        Self(Arc::new(|var: &str| std::env::var(var).ok()))
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

/// Where the clients' transports come from.
#[derive(Clone, Default)]
pub(crate) struct Transports {
    by_service: BTreeMap<String, Transport>,
    fallback: Option<Transport>,
}

impl Transports {
    pub(crate) fn set(&mut self, service: &str, t: Transport) {
        self.by_service.insert(service.to_owned(), t);
    }

    pub(crate) fn set_fallback(&mut self, t: Transport) {
        self.fallback = Some(t);
    }

    pub(crate) fn get(&self, service: &str) -> Option<Transport> {
        self.by_service.get(service).or(self.fallback.as_ref()).cloned()
    }
}

/// A client, as a tower service: how OAuth token requests go through a resilient client.
#[derive(Clone, Debug)]
pub(crate) struct ClientService(pub(crate) Client);

impl tower::Service<Request<RequestBody>> for ClientService {
    type Response = Response<Body>;
    type Error = unattended_client::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(req).await })
    }
}

/// The token cache of one OAuth credential, shared by the services that name it.
pub(crate) type OAuthCache = unattended_client::SharedCache;

/// The OAuth source behind a credential's cache, kept to give it a renewed refresh token.
pub(crate) type OAuthSource = Arc<OAuth2Source<ClientService, RequestBody>>;

/// The clients, and the OAuth credentials they share.
#[derive(Clone, Debug, Default)]
pub(crate) struct Services {
    pub(crate) clients: BTreeMap<String, Client>,
    pub(crate) credentials: BTreeMap<String, (OAuthCache, OAuthSource)>,
    /// The refresh token each credential's source was last given from the store: a different
    /// one in the store is a human's renewal.
    loaded: Arc<std::sync::Mutex<BTreeMap<String, Option<SecretString>>>>,
}

fn build_client(
    name: &str,
    config: ServiceConfig,
    clock: Clock,
    seed: u64,
    transports: &Transports,
    token: Option<OAuthCache>,
    env: Option<&Env>,
) -> Result<Client, RunnerError> {
    let mut builder = Client::builder(config).clock(clock).seed(seed);
    if let Some(env) = env {
        let env = env.0.clone();
        builder = builder.environment(move |var| env(var));
    }
    if let Some(cache) = token {
        builder = builder.token_cache(cache, Placement::Bearer);
    }
    let built = match transports.get(name) {
        Some(t) => builder.build_with(t),
        None => builder.build(),
    };
    built.map_err(|e| RunnerError::Service { service: name.to_owned(), source: e })
}

impl Services {
    /// A client per `[services.NAME]`; services with `oauth` share one token cache per credential.
    pub(crate) fn build(
        config: &RunnerConfig,
        clock: Clock,
        seed: u64,
        store: &Store,
        transports: &Transports,
        env: &Env,
    ) -> Result<Self, RunnerError> {
        let mut out = Self::default();
        for (n, (name, entry)) in config.services.iter().enumerate() {
            let seed = seed.wrapping_add(n as u64 + 1);
            let token = match &entry.oauth {
                Some(oauth) => Some(out.credential(oauth, clock, seed, store, transports, env)?),
                None => None,
            };
            let client = build_client(
                name,
                entry.config.clone(),
                clock,
                seed,
                transports,
                token,
                Some(env),
            )?;
            out.clients.insert(name.clone(), client);
        }
        Ok(out)
    }

    fn credential(
        &mut self,
        oauth: &OAuthSettings,
        clock: Clock,
        seed: u64,
        store: &Store,
        transports: &Transports,
        env: &Env,
    ) -> Result<OAuthCache, RunnerError> {
        if let Some((cache, _)) = self.credentials.get(&oauth.credential) {
            return Ok(cache.clone());
        }
        let env = |var: &str| {
            (env.0)(var).ok_or_else(|| RunnerError::MissingEnv {
                var: var.to_owned(),
                what: format!("the OAuth client of credential {:?}", oauth.credential),
            })
        };
        let (id, secret) = (env(&oauth.client_id_env)?, env(&oauth.client_secret_env)?);
        let endpoint = format!("oauth:{}", oauth.credential);
        let http =
            build_client(&endpoint, ServiceConfig::default(), clock, seed, transports, None, None)?;
        let client =
            OAuth2Client::new(id, secret, &oauth.token_url).map_err(|e| RunnerError::Invalid {
                what: format!("token_url of credential {:?}", oauth.credential),
                problem: e.to_string(),
            })?;
        let saved = store.blocking(|db| db.credential(&oauth.credential)).ok().flatten();
        if saved.is_none() {
            tracing::warn!(
                credential = %oauth.credential,
                "no refresh token saved: tasks using it will need `unattended auth {}`",
                oauth.credential
            );
        }
        let source = OAuth2Source::refresh_token(client, String::new(), ClientService(http), clock)
            .with_store(store.credential(oauth.credential.clone()))
            .map_err(|e| RunnerError::Invalid {
                what: "the credential store".into(),
                problem: e.to_string(),
            })?;
        let source = Arc::new(source);
        self.loaded_tokens().insert(oauth.credential.clone(), saved);
        // The refresh skew's random part comes from the runner's seed too (a stream of its
        // own), so a seeded run refreshes at the same instants every time.
        let config = CacheConfig::new().seed(Some(seed.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        let any = unattended_client::AnySource::new(source.clone());
        let cache = Arc::new(TokenCache::with_config(any, clock, config));
        self.credentials.insert(oauth.credential.clone(), (cache.clone(), source));
        Ok(cache)
    }

    /// Reloads credentials a human renewed (`unattended auth` in another process): a saved
    /// refresh token that differs from the one in use replaces it and clears the revocation.
    pub(crate) fn reload_credentials(&self, store: &Store) -> Vec<String> {
        use secrecy::ExposeSecret as _;
        let mut renewed = Vec::new();
        for (name, (cache, source)) in &self.credentials {
            let saved = store.blocking(|db| db.credential(name)).ok().flatten();
            let Some(saved) = saved else { continue };
            let mut loaded = self.loaded_tokens();
            let known = loaded.get(name).and_then(Option::as_ref);
            // The token in use refused is not a renewal; only a different one is.
            if known.is_some_and(|k| k.expose_secret() == saved.expose_secret()) {
                continue;
            }
            if source.set_refresh_token(saved.expose_secret().to_owned()).is_ok() {
                cache.reset_credentials();
                loaded.insert(name.clone(), Some(saved));
                renewed.push(name.clone());
            }
        }
        renewed
    }

    fn loaded_tokens(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<SecretString>>> {
        self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The client that sends ping URLs: short timeouts, few retries.
pub(crate) fn ping_client(
    clock: Clock,
    seed: u64,
    transports: &Transports,
) -> Result<Client, RunnerError> {
    let config = ServiceConfig::from_toml(
        "[timeouts]\nattempt = \"10s\"\noverall = \"30s\"\n[retry]\nmax_attempts = 3\n",
    )
    .map_err(|e| RunnerError::Invalid { what: "the ping client".into(), problem: e.to_string() })?;
    build_client("ping", config, clock, seed, transports, None, None)
}
