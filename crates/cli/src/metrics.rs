//! `/metrics` (Prometheus text) from the running runner, over plain HTTP/1.1.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use unattended_runner::RunnerView;

/// Answers `GET /metrics` with the view's metrics, anything else with 404, until the process
/// ends.
pub(crate) async fn serve(listener: TcpListener, view: RunnerView) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let view = view.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let view = view.clone();
                async move { Ok::<_, Infallible>(answer(&req, &view)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer<B>(req: &Request<B>, view: &RunnerView) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", view.metrics())
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_owned(),
        ),
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(kind) {
        res.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    res
}
