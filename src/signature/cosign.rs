//! cosign's signature format, checked without I/O: the registry edge fetches bytes, this
//! says whether they are a signature of the image by a key.
//!
//! cosign stores the signatures of `repo@sha256:D` as the layers of the image manifest
//! tagged `sha256-D.sig` in the same repository (the tag scheme of
//! github.com/sigstore/cosign `pkg/oci/remote`). Each layer is a simple-signing payload
//! (`application/vnd.dev.cosign.simplesigning.v1+json`, the "Red Hat simple signing"
//! JSON of containers/image) and carries in its descriptor's annotations the base64
//! signature over the payload bytes (`dev.cosignproject.cosign/signature`) and, when the
//! signature was logged, a Rekor bundle (`dev.sigstore.cosign/bundle`).
//!
//! A layer is a signature of the image by a key when (cosign `verifyOCISignature` then
//! `checkClaims`): its bytes have the descriptor's digest; the signature verifies with
//! the key over those bytes; the payload's `critical.type` is
//! `cosign container image signature` and `critical.image.docker-manifest-digest` is D.
//! `critical.identity.docker-reference` is not compared (cosign does not either: an image
//! copied to another registry keeps its signatures); `optional` is not read.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::key::{sha256_hex, PublicKey};
use super::rekor::{self, RekorEntry};
use crate::policy::quote;

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Why a layer is not a signature by the key, in the most common case.
pub const NOT_BY_KEY: &str = "does not verify with the key";

/// The tag cosign stores the signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> Result<String, String> {
    match digest.split_once(':') {
        Some((algorithm, hex))
            if !algorithm.is_empty()
                && algorithm.bytes().all(|b| b.is_ascii_alphanumeric())
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(format!("{algorithm}-{hex}.sig"))
        }
        _ => Err(format!(
            "{} is not a digest such as sha256:<64 hex digits>",
            quote(digest)
        )),
    }
}

/// One layer of a signature manifest: a descriptor and its annotations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default)]
    layers: Vec<Layer>,
}

/// The layers of a signature manifest (an OCI or Docker v2 image manifest). An index or
/// anything else is an error: cosign writes image manifests.
pub fn manifest_layers(bytes: &[u8]) -> Result<Vec<Layer>, String> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the signature manifest is not an image manifest: {e}"))?;
    if manifest.schema_version != 2 {
        return Err(format!(
            "the signature manifest has schemaVersion {}, expected 2",
            manifest.schema_version
        ));
    }
    Ok(manifest.layers)
}

/// An image's signatures as fetched: every layer of its `.sig` manifest, with its content
/// or why that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// `registry/repository:sha256-<hex>.sig`, for messages.
    pub tag: String,
    /// `None`: the tag does not exist, the image is not signed.
    pub layers: Option<Vec<Fetched>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub layer: Layer,
    pub content: Result<Vec<u8>, String>,
}

/// What an authority asks of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAuthority {
    pub key: PublicKey,
    /// When set, a signature counts only with a Rekor bundle of this log.
    pub rekor: Option<PublicKey>,
}

/// A layer that is a valid signature of the image by the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signature layer's digest.
    pub layer: String,
    /// `sha256:<hex>` of the key's SubjectPublicKeyInfo.
    pub key_id: String,
    pub rekor: Option<RekorEntry>,
}

/// Whether `layer`, whose content is `payload`, is a signature of the image `digest` by
/// `authority`. The error says why not, in words for a refusal message.
pub fn check_layer(
    layer: &Layer,
    payload: &[u8],
    digest: &str,
    authority: &KeyAuthority,
) -> Result<Verified, String> {
    if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
        return Err(format!(
            "is a {}, not a cosign simple-signing payload",
            quote(&layer.media_type)
        ));
    }
    if format!("sha256:{}", sha256_hex(payload)) != layer.digest {
        return Err("its content does not have the layer's digest".into());
    }
    let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
        return Err(format!("has no {SIGNATURE_ANNOTATION} annotation"));
    };
    let signature = STANDARD
        .decode(encoded.trim())
        .map_err(|_| format!("its {SIGNATURE_ANNOTATION} annotation is not base64"))?;
    if !authority.key.verifies(payload, &signature) {
        return Err(NOT_BY_KEY.into());
    }
    check_payload(payload, digest)?;
    let rekor = match &authority.rekor {
        None => None,
        Some(log) => {
            let Some(bundle) = layer.annotations.get(BUNDLE_ANNOTATION) else {
                return Err(format!(
                    "verifies with the key but has no Rekor bundle ({BUNDLE_ANNOTATION}), \
                     which the authority requires"
                ));
            };
            let entry = rekor::verify_bundle(bundle, log, &signature, payload, &authority.key)
                .map_err(|e| format!("verifies with the key but {e}"))?;
            Some(entry)
        }
    };
    Ok(Verified {
        layer: layer.digest.clone(),
        key_id: authority.key.id(),
        rekor,
    })
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The signed claims: a cosign image signature, of this digest.
pub fn check_payload(payload: &[u8], digest: &str) -> Result<(), String> {
    let signed: SimpleSigning = serde_json::from_slice(payload).map_err(|e| {
        format!("verifies with the key but its payload is not a simple-signing document: {e}")
    })?;
    if signed.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "verifies with the key but signs a {}, not a {SIGNATURE_TYPE:?}",
            quote(&signed.critical.kind)
        ));
    }
    let signed_digest = &signed.critical.image.docker_manifest_digest;
    if signed_digest != digest {
        return Err(format!(
            "verifies with the key but signs {}, not {digest}",
            quote(signed_digest)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
