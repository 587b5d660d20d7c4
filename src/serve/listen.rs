//! The listeners of `portcullis serve`: TCP with TLS (HTTP/2 or HTTP/1.1 by ALPN), plain
//! TCP (HTTP/1.1 or prior-knowledge HTTP/2) and unix sockets, all serving the same
//! [`Routes`]. Who is calling comes from the connection: the verified client certificate's
//! subject (mTLS) or the unix socket peer's credentials.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use super::routes::Routes;
use super::tls;
use crate::config::ListenerConfig;
use crate::net::listener;
use crate::net::peer::PeerCred;
use crate::review::UserInfo;

/// A bound listener, ready to serve.
pub enum Bound {
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
    Unix(UnixListener),
}

impl Bound {
    /// Binds `config` now, so a taken port or a bad certificate is a startup error.
    pub async fn bind(config: &ListenerConfig) -> anyhow::Result<Self> {
        if let Some(path) = &config.socket {
            let mode = config.mode.clone().unwrap_or_default();
            let listener = listener::bind(path, &mode)
                .with_context(|| format!("serve listener {}", path.display()))?;
            tracing::info!(socket = %path.display(), "serve listening");
            return Ok(Bound::Unix(listener));
        }
        let address = config
            .address
            .context("a serve listener needs an address or a socket")?;
        let acceptor = match &config.tls {
            Some(files) => Some(
                tls::acceptor(files)
                    .map_err(|e| anyhow::anyhow!("serve listener {address}: {e}"))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("serve listener {address}"))?;
        tracing::info!(address = %listener.local_addr()?, tls = acceptor.is_some(), "serve listening");
        Ok(Bound::Tcp(listener, acceptor))
    }

    /// The TCP address it listens on (with the port chosen, for `:0`).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Bound::Tcp(listener, _) => listener.local_addr().ok(),
            Bound::Unix(_) => None,
        }
    }

    /// Accepts and serves connections until dropped.
    pub async fn serve(self, routes: Arc<Routes>) {
        loop {
            match &self {
                Bound::Unix(listener) => match listener.accept().await {
                    Ok((stream, _)) => {
                        let peer = PeerCred::of(&stream).ok().map(|c| c.user_info());
                        // Node clients' HTTP/2 `:authority` (a socket path) made acceptable.
                        let stream = crate::net::h2::lenient::Lenient::new(stream);
                        tokio::spawn(connection(stream, peer, routes.clone()));
                    }
                    Err(e) => listener::accept_failed("serve", &e).await,
                },
                Bound::Tcp(listener, acceptor) => match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let routes = routes.clone();
                        match acceptor.clone() {
                            None => {
                                tokio::spawn(connection(stream, None, routes));
                            }
                            Some(acceptor) => {
                                tokio::spawn(async move {
                                    match tls::accept(&acceptor, stream).await {
                                        Ok(accepted) => {
                                            tracing::debug!(protocol = ?accepted.protocol, "TLS handshake");
                                            connection(accepted.stream, accepted.user, routes).await
                                        }
                                        Err(e) => tracing::debug!(error = %e, "TLS handshake"),
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => listener::accept_failed("serve", &e).await,
                },
            }
        }
    }
}

async fn connection<S>(stream: S, peer: Option<UserInfo>, routes: Arc<Routes>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = Arc::new(peer);
    let service = service_fn(move |req| {
        let routes = routes.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(routes.handle(peer.as_ref().as_ref(), req).await) }
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "serve connection ended");
    }
}
