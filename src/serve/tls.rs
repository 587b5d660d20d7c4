//! TLS for `serve` listeners: the server side of what kube-apiserver dials.
//!
//! The HTTP layer needs three things, in this order:
//!
//! ```ignore
//! let acceptor = tls::acceptor(&listener.tls)?;            // at start: errors name the file
//! let (tcp, peer) = tcp_listener.accept().await?;
//! let accepted = tls::accept(&acceptor, tcp).await?;       // handshake, 10 s at most
//! match accepted.protocol { Protocol::Http2 => /* hyper http2 */, Protocol::Http1 => /* http1 */ }
//! // accepted.user: the client certificate's subject as a Kubernetes user (mTLS), else None
//! ```
//!
//! - The serving certificate follows `certFile`/`keyFile` on disk (cert-manager or kubelet
//!   style rotation, symlink swaps included): their metadata is checked at most once a second,
//!   during a handshake, and a changed pair is loaded; a pair that does not load (half
//!   written, key not matching) is logged and the previous certificate kept ([`reload`]).
//! - With `clientCAFile`, every client must present a certificate that bundle signed (mTLS);
//!   the bundle is read at start (restart to change it). The certificate's subject becomes the
//!   user as kube-apiserver's x509 authenticator maps it ([`client_user`]).
//! - ALPN offers `h2` then `http/1.1`; a client that offers none speaks HTTP/1.1.

mod identity;
mod reload;
#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::core::tls::TlsSetupError;
use crate::review::UserInfo;

pub use identity::client_user;

/// How long a client has to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a listener's TLS settings cannot be used. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ServeTlsError {
    /// Unreadable, not PEM, or no certificate / key in it.
    #[error(transparent)]
    File(#[from] TlsSetupError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{key_file}: private key does not match the certificate in {cert_file}")]
    KeyMismatch { cert_file: String, key_file: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

impl ServeTlsError {
    fn invalid(path: &Path, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// Why one connection did not become a TLS stream; the caller logs it with the peer.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("TLS handshake not completed within {0:?}")]
    Timeout(Duration),
}

/// The HTTP version the client chose by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http2,
    Http1,
}

/// A connection after its handshake.
#[derive(Debug)]
pub struct Accepted<IO = TcpStream> {
    pub stream: TlsStream<IO>,
    pub protocol: Protocol,
    /// The verified client certificate's user (listeners with `clientCAFile`); `None` when
    /// there is no client certificate or its subject has no CommonName.
    pub user: Option<UserInfo>,
}

/// The rustls configuration of one listener: ring, safe default protocol versions, ALPN `h2`
/// and `http/1.1`, the certificate re-read on change, client certificates required when
/// `client_ca_file` is set. Fails when the files cannot be used now.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, ServeTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca_file {
        Some(ca_file) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(
                Arc::new(client_roots(ca_file)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| ServeTlsError::invalid(ca_file, e))?,
        ),
        None => builder.with_no_client_auth(),
    };
    let resolver = reload::ReloadingCert::new(&tls.cert_file, &tls.key_file, provider)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`server_config`] as a tokio acceptor.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, ServeTlsError> {
    server_config(tls).map(TlsAcceptor::from)
}

/// The TLS handshake on an accepted connection, at most [`HANDSHAKE_TIMEOUT`].
pub async fn accept<IO>(acceptor: &TlsAcceptor, io: IO) -> Result<Accepted<IO>, AcceptError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    accept_within(acceptor, io, HANDSHAKE_TIMEOUT).await
}

/// [`accept`] with another handshake timeout.
pub async fn accept_within<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
    timeout: Duration,
) -> Result<Accepted<IO>, AcceptError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let stream = tokio::time::timeout(timeout, acceptor.accept(io))
        .await
        .map_err(|_| AcceptError::Timeout(timeout))?
        .map_err(AcceptError::Handshake)?;
    let connection = stream.get_ref().1;
    let protocol = match connection.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    let user = connection.peer_certificates().and_then(client_user);
    Ok(Accepted {
        stream,
        protocol,
        user,
    })
}

/// The `clientCAFile` bundle: every certificate in it is a trust anchor.
fn client_roots(path: &Path) -> Result<RootCertStore, ServeTlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in crate::core::tls::read_certs(path)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ServeTlsError::invalid(path, format!("certificate {i}: {e}")))?;
    }
    Ok(roots)
}
