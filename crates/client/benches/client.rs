//! What the layers cost per call, and the client's loopback throughput next to bare hyper-util.
//!
//! `cargo bench -p unattended-client`.
//! - `stack/*`: the five layers (gate, retry with budget, rate limit, breaker, token) composed
//!   with `ServiceBuilder` around a no-op transport, polled by hand: valid token, open gate,
//!   closed breaker. `client/*` adds what the `Client` adds (tracing, redirects, decompression,
//!   `User-Agent`, attempt timeout, one boxed service).
//! - `loopback/*`: 32 concurrent GETs against a local hyper server, for the client and for a
//!   bare hyper-util client; report the ratio of the two.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{ServiceBuilder, service_fn};
use unattended_breaker::CircuitBreakerLayer;
use unattended_client::{Client, ServiceConfig};
use unattended_core::Clock;
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_ratelimit::RateLimitLayer;
use unattended_retry::RetryLayer;
use unattended_testkit::drive::call_once;
use unattended_token::{StaticToken, TokenCache, TokenLayer};

fn ok(_: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    ready(Ok(Response::new(Full::default())))
}

fn request() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1/items")
        .header("accept", "application/json")
        .body(Full::default())
        .unwrap()
}

fn bare_get() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1/items").body(Full::default()).unwrap()
}

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("stack");
    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(request, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    group.bench_function("bare service_fn, GET without headers", |b| {
        b.iter_batched(bare_get, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let clock = Clock::system();
    let always = WindowCalendar::always();
    let cache = Arc::new(TokenCache::new(StaticToken::new("token"), clock));
    let mut five = ServiceBuilder::new()
        .layer(GateLayer::new().class("write", always.clone(), WhenClosed::Reject).clock(clock))
        .layer(
            RetryLayer::new(unattended_retry::RetryConfig::standard().attempt_timeout(None))
                .unwrap()
                .clock(clock),
        )
        .layer(RateLimitLayer::new().clock(clock))
        .layer(CircuitBreakerLayer::standard().clock(clock))
        .layer(TokenLayer::new(cache.clone()).replay_refused(false))
        .service(service_fn(ok));
    group.bench_function("five layers", |b| {
        b.iter_batched(request, |req| call_once(&mut five, req), BatchSize::SmallInput)
    });
    // What `Client::get_json` hands the layers: no header yet (the User-Agent is set inside).
    group.bench_function("five layers, GET without headers", |b| {
        b.iter_batched(bare_get, |req| call_once(&mut five, req), BatchSize::SmallInput)
    });
    // Each layer alone, to see where the five layers' cost goes.
    macro_rules! alone {
        ($name:literal, $layer:expr) => {{
            let mut svc = ServiceBuilder::new().layer($layer).service(service_fn(ok));
            group.bench_function(concat!("alone: ", $name), |b| {
                b.iter_batched(request, |req| call_once(&mut svc, req), BatchSize::SmallInput)
            });
        }};
    }
    alone!("gate", GateLayer::new().class("write", always, WhenClosed::Reject).clock(clock));
    alone!(
        "retry",
        RetryLayer::new(unattended_retry::RetryConfig::standard().attempt_timeout(None))
            .unwrap()
            .clock(clock)
    );
    alone!("ratelimit", RateLimitLayer::new().clock(clock));
    alone!("breaker", CircuitBreakerLayer::standard().clock(clock));
    alone!("token", TokenLayer::new(cache).replay_refused(false));
    group.bench_function("copy_request", |b| {
        b.iter_batched_ref(request, |req| unattended_core::copy_request(req), BatchSize::SmallInput)
    });
    group.finish();

    // The whole client (tracing, redirects, decompression, User-Agent, attempt timeout, the
    // boxed stack cloned per call) around the same no-op transport.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();
    let config = ServiceConfig::from_toml("base_url = \"https://api.example.com\"").unwrap();
    let client = Client::builder(config).build_with(service_fn(ok)).unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut group = c.benchmark_group("client");
    group.bench_function("send, no-op transport", |b| {
        b.iter_batched(
            request,
            |req| match std::pin::pin!(client.send(req)).as_mut().poll(&mut cx) {
                std::task::Poll::Ready(Ok(res)) => res,
                _ => panic!("the no-op path completes at the first poll"),
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn loopback(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"{\"ok\":true}",
                        ))))
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(conn), svc).await;
                });
            }
        });
        addr
    });
    let url = format!("http://{addr}/v1/items");
    const CONCURRENCY: u64 = 32;
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(CONCURRENCY));
    group.measurement_time(Duration::from_secs(5));

    // The transport settings the client uses (TCP_NODELAY, as reqwest too), without the layers.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let bare: HyperClient<_, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    group.bench_function("bare hyper-util, 32 concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..CONCURRENCY).map(|_| {
                    let bare = bare.clone();
                    let req = Request::get(url.as_str()).body(Full::default()).unwrap();
                    tokio::spawn(async move {
                        // The same work as the others: the body read and parsed as JSON.
                        let res = bare.request(req).await.unwrap();
                        let body = res.into_body().collect().await.unwrap().to_bytes();
                        let _: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await.unwrap();
                }
            })
        })
    });

    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(3);
    let retrying = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(policy))
        .build();
    group.bench_function("reqwest + reqwest-retry, 32 concurrent", |b| {
        b.iter(|| rt.block_on(concurrent_gets(&retrying, &url, CONCURRENCY)))
    });
    let ours = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            unattended_client::ResilienceMiddleware::from_config(&ServiceConfig::default())
                .unwrap(),
        )
        .build();
    group.bench_function("reqwest + unattended middleware, 32 concurrent", |b| {
        b.iter(|| rt.block_on(concurrent_gets(&ours, &url, CONCURRENCY)))
    });

    let text = format!("base_url = \"http://{addr}\"");
    let client = rt.block_on(async {
        Client::builder(ServiceConfig::from_toml(&text).unwrap()).build().unwrap()
    });
    group.bench_function("unattended client, 32 concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..CONCURRENCY).map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let _: serde_json::Value = client.get_json("/v1/items").await.unwrap();
                    })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await.unwrap();
                }
            })
        })
    });
    group.finish();
}

/// `n` concurrent GETs of `url` through a reqwest-middleware client, their JSON read.
async fn concurrent_gets(client: &reqwest_middleware::ClientWithMiddleware, url: &str, n: u64) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let _: serde_json::Value =
                    client.get(url).send().await.unwrap().json().await.unwrap();
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
}

criterion_group!(benches, per_call, loopback);
criterion_main!(benches);
