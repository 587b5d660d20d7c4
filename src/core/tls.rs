//! TLS settings for one webhook `url`, as kube-apiserver builds them from
//! `clientConfig.caBundle`: the bundle, when given, is the only trust; otherwise the
//! system roots (with Mozilla's, from webpki-roots, when the system has none). A client
//! certificate is presented when `clientCertFile`/`clientKeyFile` are set.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::tls_verify::BundleVerifier;
use crate::config::webhook::WebhookClientConfig;

/// Why a webhook's TLS settings cannot be used; the caller names the webhook.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("clientConfig.caBundle: {0}")]
    CaBundle(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

pub(crate) fn client_config(
    cc: &WebhookClientConfig,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &cc.ca_bundle {
        // Not a weaker check: webpki's, plus Go's trust in a leaf that is itself in the
        // bundle (see `tls_verify`).
        Some(bundle) => {
            let verifier = BundleVerifier::new(bundle_certs(bundle)?, provider)
                .map_err(|e| TlsSetupError::CaBundle(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
        None => builder.with_root_certificates(system_roots()),
    };
    let config = match (&cc.client_cert_file, &cc.client_key_file) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

fn bundle_certs(bundle: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle.trim())
        .map_err(|e| TlsSetupError::CaBundle(format!("not base64: {e}")))?;
    let mut certs = Vec::new();
    for (i, cert) in rustls_pemfile::certs(&mut pem.as_slice()).enumerate() {
        let cert = cert.map_err(|e| TlsSetupError::CaBundle(format!("not PEM: {e}")))?;
        // Each must be usable as a trust anchor, as before: a typo is an error at load.
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| TlsSetupError::CaBundle(format!("certificate {i}: {e}")))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(TlsSetupError::CaBundle(
            "holds no PEM CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping unreadable system CA certificates");
    }
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        tracing::warn!("no system CA certificates found; trusting the webpki-roots set");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(path)?;
    let pem_err = |message: String| TlsSetupError::Pem {
        path: path.display().to_string(),
        message,
    };
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err("holds no PEM CERTIFICATE block".into()));
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read(path)?;
    let pem_err = |message: String| TlsSetupError::Pem {
        path: path.display().to_string(),
        message,
    };
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| pem_err(format!("not PEM: {e}")))?
        .ok_or_else(|| pem_err("holds no PEM private key".into()))
}
