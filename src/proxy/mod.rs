//! The containerd door: a unix-socket gRPC proxy that relays every call to containerd
//! untouched and admits the calls that create or change containers.
//!
//! Relaying is plain HTTP/2 forwarding (bodies and trailers streamed, never buffered), so
//! every service — containerd's, CRI's, health — and every streaming shape passes without
//! the proxy knowing its protos. Only the methods in [`admit::Method`] are read.

mod admit;
pub mod docker;
pub mod grpc;
pub mod raw;
pub mod record;
pub mod upstream;

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixListener;

use crate::config::{Config, Conversion};
use crate::convert::PodOptions;
use crate::net::peer::PeerCred;
use crate::reload::LiveDecider;
use crate::review::UserInfo;
use upstream::{Body, Upstream};

/// The proxy's settings, resolved from the config file.
pub struct Proxy {
    upstream: Upstream,
    decider: LiveDecider,
    conversion: Conversion,
    pod: PodOptions,
    docker: Option<docker::Docker>,
}

/// Who is calling on one connection. `userInfo` is resolved once, on the first admitted call.
struct Caller {
    cred: Option<PeerCred>,
    user: OnceLock<UserInfo>,
}

impl Caller {
    fn user_info(&self) -> &UserInfo {
        self.user
            .get_or_init(|| self.cred.map(|c| c.user_info()).unwrap_or_default())
    }
}

impl Proxy {
    pub fn new(config: &Config, decider: LiveDecider) -> Self {
        let p = &config.proxy;
        Self {
            upstream: Upstream::new(&p.containerd),
            decider,
            conversion: p.conversion,
            pod: PodOptions {
                runtime_classes: p.runtime_classes.clone(),
            },
            docker: p.docker.as_deref().map(docker::Docker::new),
        }
    }

    /// Serves connections from `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    crate::net::listener::accept_failed("proxy", &e).await;
                    continue;
                }
            };
            let caller = Arc::new(Caller {
                cred: PeerCred::of(&stream).ok(),
                user: OnceLock::new(),
            });
            let this = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let this = this.clone();
                    let caller = caller.clone();
                    async move { Ok::<_, Infallible>(this.handle(&caller, req).await) }
                });
                let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(upstream::WINDOW)
                    .initial_connection_window_size(2 * upstream::WINDOW)
                    .max_frame_size(1 << 20)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "client connection ended");
                }
            });
        }
    }

    async fn handle(&self, caller: &Caller, req: Request<Incoming>) -> Response<Body> {
        match admit::Method::from_path(req.uri().path()) {
            Some(method) => self.admit_call(method, caller, req).await,
            None => self.relay(req.map(Either::Left)).await,
        }
    }

    async fn relay(&self, req: Request<Body>) -> Response<Body> {
        match self.upstream.forward(req).await {
            Ok(response) => response.map(Either::Left),
            Err(status) => status_response(&status),
        }
    }
}

fn status_response(status: &grpc::Status) -> Response<Body> {
    grpc::status_response::<Full<bytes::Bytes>>(status).map(Either::Right)
}
