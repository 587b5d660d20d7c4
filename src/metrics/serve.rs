//! The metrics endpoint: `GET /metrics` (OpenMetrics text, which Prometheus scrapes),
//! `GET /healthz` and `/readyz`, over plain HTTP/1.1. Bind it to loopback or a trusted network.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Metrics, SharedMetrics};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` now (so a taken port is a startup error) and returns the serving future.
pub async fn serve(
    addr: SocketAddr,
    metrics: SharedMetrics,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr()?, "metrics serving");
    Ok(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    crate::net::listener::accept_failed("metrics", &e).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// What `GET` of `path` answers, for the paths every HTTP endpoint of Portcullis serves:
/// `/metrics`, and `/healthz` and `/readyz` (serving at all means a config loaded: a bad
/// one never starts, a bad reload is rejected). `None` for any other path.
pub(crate) fn probe(metrics: &Metrics, path: &str) -> Option<(&'static str, String)> {
    match path {
        "/metrics" => Some((OPENMETRICS, metrics.encode())),
        "/healthz" | "/readyz" => Some(("text/plain", "ok\n".to_owned())),
        _ => None,
    }
}

fn respond(metrics: &SharedMetrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match probe(metrics, path) {
        Some((content_type, body)) if req.method() == Method::GET => {
            reply(StatusCode::OK, content_type, body)
        }
        Some(_) => reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n"),
        None => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; metrics are at /metrics\n",
        ),
    }
}

/// A response with `status`, `content_type` and `body`.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
