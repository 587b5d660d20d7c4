//! The I/O edge: fetching a tag's digest and an image's cosign and Notation signatures
//! from its registry with oci-client, as `imageVerification:` says
//! (docs/image-verification.md).
//!
//! Notation signatures are the image's referrers of artifact type
//! `application/vnd.cncf.notary.signature`: `GET /v2/<repo>/referrers/<digest>`, and when
//! the registry answers 404 (distribution 2.8 has no referrers API) the referrers tag
//! schema (`sha256-<hex>`, an image index of referrers), as oci-client's `pull_referrers`
//! does. A missing referrers tag means no signatures.
//!
//! - HTTPS, verified against the system's roots plus `caFile`; plain HTTP only to the
//!   registries listed in `insecureRegistries`.
//! - Credentials from `dockerConfig` (`auths.<registry>`), sent as HTTP Basic or exchanged
//!   for a bearer token as the registry's `WWW-Authenticate` asks; anonymous otherwise.
//! - Every registry call (a token exchange included) is bounded by `timeoutSeconds`, on
//!   top of reqwest's connect and read timeouts of the same length.
//! - Redirects are followed (blob downloads redirect to storage); reqwest drops the
//!   `Authorization` header when a redirect leaves the registry's host.
//! - Sizes are bounded: at most [`MAX_LAYERS`] signatures of at most [`MAX_LAYER_BYTES`]
//!   each. Blobs are checked against their digest by oci-client, and again by
//!   `cosign::check_layer`.
//!
//! Errors here mean "could not read": the verifier applies the policy's `failurePolicy`.
//! A signature tag that does not exist is not an error: the image is unsigned.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::cosign::{manifest_layers, signature_tag, Fetched, Layer, Signatures};
use super::notation::{
    signature_manifest, NotationFetched, NotationSignatures, SIGNATURE_ARTIFACT_TYPE,
};
use crate::config::image_verification::DockerConfig;
use crate::config::ImageVerificationConfig;
use crate::policy::reference::ImageRef;

/// More layers than this in a signature manifest is an error, not a long wait.
pub const MAX_LAYERS: usize = 64;
/// A simple-signing payload is a few hundred bytes; this leaves room and bounds memory.
pub const MAX_LAYER_BYTES: usize = 256 * 1024;

const SIGNATURE_MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A registry client for the verifier; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    credentials: Option<Arc<DockerConfig>>,
    timeout: Duration,
}

impl Registry {
    /// A client as `imageVerification:` says. Needs the process's rustls crypto provider:
    /// ring, installed here unless one already is (reqwest is built without its own).
    pub fn new(config: &ImageVerificationConfig) -> Result<Registry, String> {
        // Fails only when a provider is already installed, which is what we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let extra_root_certificates = match &config.ca {
            Some((_, certs)) => certs
                .iter()
                .map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        let client_config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
            extra_root_certificates,
            connect_timeout: Some(config.timeout),
            read_timeout: Some(config.timeout),
            // Signature manifests are single manifests; never pick a platform.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = Client::try_from(client_config)
            .map_err(|e| format!("imageVerification: cannot build the registry client: {e}"))?;
        Ok(Registry {
            client,
            credentials: config.docker_config.clone().map(Arc::new),
            timeout: config.timeout,
        })
    }

    fn auth(&self, image: &ImageRef) -> RegistryAuth {
        match self
            .credentials
            .as_ref()
            .and_then(|c| c.credentials(&image.registry))
        {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// `f`, bounded by the timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_not_found(&e) => Err(Failure::NotFound),
            Ok(Err(e)) => Err(Failure::Other(format!("{what}: {}", describe(&e)))),
            Err(_) => Err(Failure::Other(format!(
                "{what}: no answer within {}s (imageVerification.timeoutSeconds)",
                self.timeout.as_secs()
            ))),
        }
    }

    /// The digest the image's tag points to now (`HEAD` of the manifest, `GET` when the
    /// registry sends no `Docker-Content-Digest`).
    pub async fn resolve(&self, image: &ImageRef) -> Result<String, String> {
        let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
        let reference = Reference::with_tag(image.registry.clone(), image.repository.clone(), tag);
        let what = format!("resolving {reference}");
        let auth = self.auth(image);
        match self
            .bounded(&what, self.client.fetch_manifest_digest(&reference, &auth))
            .await
        {
            Ok(digest) => Ok(digest),
            Err(Failure::NotFound) => Err(format!("{what}: the registry has no such image")),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// The layers of `image`'s signature manifest for `digest`, with their contents.
    pub async fn signatures(&self, image: &ImageRef, digest: &str) -> Result<Signatures, String> {
        let tag = signature_tag(digest)?;
        let reference = Reference::with_tag(image.registry.clone(), image.repository.clone(), tag);
        let shown = format!(
            "{}/{}:{}",
            image.registry,
            image.repository,
            reference.tag().unwrap_or_default()
        );
        let auth = self.auth(image);
        let what = format!("reading {shown}");
        let pulled = self
            .client
            .pull_manifest_raw(&reference, &auth, SIGNATURE_MANIFEST_TYPES);
        let bytes = match self.bounded(&what, pulled).await {
            Ok((bytes, _)) => bytes,
            Err(Failure::NotFound) => {
                return Ok(Signatures {
                    tag: shown,
                    layers: None,
                })
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        let layers = manifest_layers(&bytes).map_err(|e| format!("{what}: {e}"))?;
        if layers.len() > MAX_LAYERS {
            return Err(format!(
                "{what}: {} layers, more than the {MAX_LAYERS} Portcullis reads",
                layers.len()
            ));
        }
        let mut fetched = Vec::with_capacity(layers.len());
        for layer in layers {
            let content = self.blob(&reference, &layer, &what).await;
            fetched.push(Fetched { layer, content });
        }
        Ok(Signatures {
            tag: shown,
            layers: Some(fetched),
        })
    }

    /// The Notation signatures of `image` at `digest`: each referrer of the signature
    /// artifact type, its manifest and its envelope.
    pub async fn notation_signatures(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<NotationSignatures, String> {
        let subject = Reference::with_digest(
            image.registry.clone(),
            image.repository.clone(),
            digest.to_string(),
        );
        let source = format!("{}/{}@{digest}", image.registry, image.repository);
        let what = format!("listing the referrers of {source}");
        let auth = self.auth(image);
        self.client
            .store_auth_if_needed(subject.resolve_registry(), &auth)
            .await;
        let listed = self
            .client
            .pull_referrers(&subject, Some(SIGNATURE_ARTIFACT_TYPE));
        let index = match self.bounded(&what, listed).await {
            Ok(index) => index,
            Err(Failure::NotFound) => {
                return Ok(NotationSignatures {
                    source,
                    signatures: Vec::new(),
                })
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        let entries: Vec<_> = (index.manifests.into_iter())
            .filter(|m| m.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE))
            .collect();
        if entries.len() > MAX_LAYERS {
            return Err(format!(
                "{what}: {} Notation signatures, more than the {MAX_LAYERS} Portcullis reads",
                entries.len()
            ));
        }
        let mut signatures = Vec::with_capacity(entries.len());
        for entry in entries {
            let content = self.notation_signature(image, &entry.digest, &auth).await;
            signatures.push(NotationFetched {
                digest: entry.digest,
                content,
            });
        }
        Ok(NotationSignatures { source, signatures })
    }

    async fn notation_signature(
        &self,
        image: &ImageRef,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Result<(super::notation::SignatureManifest, Vec<u8>), String> {
        let reference = Reference::with_digest(
            image.registry.clone(),
            image.repository.clone(),
            digest.to_string(),
        );
        let what = format!("reading {}/{}@{digest}", image.registry, image.repository);
        let pulled =
            self.client
                .pull_manifest_raw(&reference, auth, &SIGNATURE_MANIFEST_TYPES[..1]);
        let bytes = match self.bounded(&what, pulled).await {
            Ok((bytes, _)) => bytes,
            Err(Failure::NotFound) => {
                return Err(format!("{what}: the registry has no such manifest"))
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        if format!("sha256:{}", super::key::sha256_hex(&bytes)) != digest {
            return Err(format!("{what}: the manifest does not have its digest"));
        }
        let manifest = signature_manifest(&bytes).map_err(|e| format!("{what}: {e}"))?;
        let e = &manifest.envelope;
        let layer = Layer {
            media_type: e.media_type.clone(),
            digest: e.digest.clone(),
            size: e.size,
            annotations: Default::default(),
        };
        let envelope = self.blob(&reference, &layer, &what).await?;
        Ok((manifest, envelope))
    }

    async fn blob(
        &self,
        reference: &Reference,
        layer: &Layer,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        if layer.size > MAX_LAYER_BYTES as u64 {
            return Err(format!(
                "layer {} has {} bytes, more than the {MAX_LAYER_BYTES} a signature may have",
                layer.digest, layer.size
            ));
        }
        let mut out = Bounded {
            bytes: Vec::new(),
            limit: MAX_LAYER_BYTES,
        };
        let what = format!("{what}: layer {}", layer.digest);
        let pulled = self
            .client
            .pull_blob(reference, layer.digest.as_str(), &mut out);
        match self.bounded(&what, pulled).await {
            Ok(()) => Ok(out.bytes),
            Err(Failure::NotFound) => Err(format!("{what}: the registry has no such blob")),
            Err(Failure::Other(e)) => Err(e),
        }
    }
}

enum Failure {
    NotFound,
    Other(String),
}

/// A 404, or the distribution API's "unknown manifest/repository".
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NotFound | OciErrorCode::BlobUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// The error with its causes (reqwest hides the useful part, "connection refused", in
/// its source chain).
fn describe(e: &OciDistributionError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A sink that refuses to grow past `limit` bytes.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() + data.len() > this.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "more than {} bytes",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    #[tokio::test]
    async fn the_sink_refuses_to_grow_past_its_limit() {
        let mut out = Bounded {
            bytes: Vec::new(),
            limit: 4,
        };
        out.write_all(b"abc").await.unwrap();
        let e = out.write_all(b"de").await.unwrap_err();
        assert_eq!(e.to_string(), "more than 4 bytes");
        assert_eq!(out.bytes, b"abc");
    }

    #[test]
    fn not_found_is_a_404_or_an_unknown_manifest_and_nothing_else() {
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#))
                .unwrap(),
            url: "u".into(),
        };
        let server = |code: u16| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: String::new(),
        };
        assert!(is_not_found(&envelope("MANIFEST_UNKNOWN")));
        assert!(is_not_found(&server(404)));
        assert!(!is_not_found(&envelope("DENIED")));
        assert!(!is_not_found(&envelope("NAME_UNKNOWN")));
        assert!(!is_not_found(&server(500)));
        assert!(!is_not_found(&OciDistributionError::UnauthorizedError {
            url: "u".into()
        }));
    }

    #[test]
    fn the_client_builds_from_the_config() {
        let config = ImageVerificationConfig {
            insecure_registries: vec!["localhost:5000".into()],
            ..Default::default()
        };
        assert!(Registry::new(&config).is_ok());
    }
}
