//! The default transport: hyper-util's pooled client over rustls.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::ConfigError;
use crate::stack::RequestBody;

/// The transport [`ClientBuilder::build`](crate::ClientBuilder::build) uses: hyper-util's
/// pooled client over rustls (system roots), HTTP/1.1 and HTTP/2, plain HTTP allowed.
pub type HttpsTransport = HyperClient<HttpsConnector<HttpConnector>, RequestBody>;

/// Builds the default transport with a connect timeout.
///
/// # Errors
///
/// The system's root certificates could not be loaded.
pub fn https_transport(connect_timeout: Duration) -> Result<HttpsTransport, ConfigError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ConfigError::invalid("tls", format!("no root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new()).build(https))
}
