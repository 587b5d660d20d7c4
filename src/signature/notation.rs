//! Notation (Notary Project) signatures, checked without I/O: the registry edge finds an
//! image's signature manifests through the OCI referrers API and fetches their envelopes;
//! this says whether one is a signature of the image under a `notation` authority
//! (docs/image-verification.md, "Notation signatures").
//!
//! A signature manifest is an OCI image manifest whose `artifactType` (or config media
//! type) is `application/vnd.cncf.notary.signature`, whose `subject` is the image
//! manifest, and whose one layer is the envelope: JWS (`application/jose+json`, read by
//! [`envelope`]) or COSE (`application/cose`, refused: not supported). The checks follow
//! the Notary Project trust-policy specification, grouped as it groups them:
//!
//! - integrity (always enforced): the envelope is well formed, its `crit` understood, its
//!   signature verifies with the leaf certificate's key, and its `targetArtifact` is the
//!   image (digest, and size and media type as the manifest's `subject` says);
//! - authenticity ([`chain`]): the `x5c` chain leads to the trust store and the leaf's
//!   subject matches a trusted identity — enforced at `strict` and `permissive`, logged
//!   at `audit`;
//! - expiry: the envelope's `io.cncf.notary.expiry`, and the chain's validity now (the
//!   specification's "authentic timestamp" check for a signature without a timestamp
//!   countersignature) — enforced at `strict`, logged at `permissive` and `audit`.
//!
//! Revocation (OCSP/CRL) and RFC 3161 timestamps are not checked (an envelope carrying a
//! timestamp countersignature is refused); `skip` accepts the image without a signature.

pub mod chain;
pub mod envelope;

use serde::Deserialize;

use super::key::sha256_hex;
use chain::Dn;
use envelope::Alg;

pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
pub const COSE_MEDIA_TYPE: &str = "application/cose";

/// `signatureVerification.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "strict" => Level::Strict,
            "permissive" => Level::Permissive,
            "audit" => Level::Audit,
            "skip" => Level::Skip,
            _ => return None,
        })
    }
}

/// `trustedIdentities`: any signer the trust store vouches for, or these subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identities {
    Any,
    Subjects(Vec<Dn>),
}

/// What a `notation` authority asks of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationAuthority {
    /// DER certificates: roots, intermediates or the signing certificates themselves.
    pub trust_store: Vec<Vec<u8>>,
    pub identities: Identities,
    pub level: Level,
}

impl NotationAuthority {
    /// From the policy's fields; the error is `(field, what is wrong)`.
    pub fn new(
        trust_store_pem: &[u8],
        identities: &[String],
        level: &str,
    ) -> Result<NotationAuthority, (&'static str, String)> {
        let trust_store = chain::certificates_from_pem(trust_store_pem)
            .map_err(|e| ("trustStore.certificates", e))?;
        let level = Level::parse(level).ok_or((
            "signatureVerification.level",
            format!("{level:?} is not strict, permissive, audit or skip"),
        ))?;
        let identities = match identities {
            [] => {
                return Err((
                    "trustedIdentities",
                    "is empty; list x509.subject: DNs or \"*\"".into(),
                ))
            }
            [any] if any == "*" => Identities::Any,
            _ => Identities::Subjects(
                (identities.iter().enumerate())
                    .map(|(i, id)| {
                        identity(id).map_err(|e| ("trustedIdentities", format!("[{i}]: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(NotationAuthority {
            trust_store,
            identities,
            level,
        })
    }
}

fn identity(text: &str) -> Result<Dn, String> {
    if text == "*" {
        return Err("\"*\" must be the only trusted identity".into());
    }
    let Some(dn) = text.strip_prefix("x509.subject:") else {
        return Err(format!("{text:?} is not \"x509.subject: <DN>\" or \"*\""));
    };
    chain::parse_dn(dn.trim())
}

/// A descriptor, as signature manifests hold them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// A signature manifest, as far as verification reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    /// The envelope layer.
    pub envelope: Descriptor,
    /// The signed manifest.
    pub subject: Descriptor,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u32,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
}

/// Reads a signature manifest: an OCI manifest of the Notary signature artifact type
/// with one layer and a subject.
pub fn signature_manifest(bytes: &[u8]) -> Result<SignatureManifest, String> {
    let m: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the signature manifest is not an OCI image manifest: {e}"))?;
    let kind = m.artifact_type.as_deref().unwrap_or(&m.config.media_type);
    if m.schema_version != 2 || kind != SIGNATURE_ARTIFACT_TYPE {
        return Err(format!(
            "the manifest is not a Notary signature (artifact type {kind:?})"
        ));
    }
    let Some(subject) = m.subject else {
        return Err("the signature manifest has no subject".into());
    };
    match <[Descriptor; 1]>::try_from(m.layers) {
        Ok([envelope]) => Ok(SignatureManifest { envelope, subject }),
        Err(layers) => Err(format!(
            "the signature manifest has {} layers, expected 1",
            layers.len()
        )),
    }
}

/// An image's Notation signatures as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationSignatures {
    /// `registry/repository@digest` whose referrers were listed, for messages.
    pub source: String,
    pub signatures: Vec<NotationFetched>,
}

/// One referrer: its manifest digest, and its manifest and envelope or why they could not
/// be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationFetched {
    pub digest: String,
    pub content: Result<(SignatureManifest, Vec<u8>), String>,
}

/// A signature that satisfies a `notation` authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationVerified {
    /// The signature manifest's digest.
    pub signature: String,
    /// The leaf certificate's subject.
    pub signer: String,
    /// Failures the level logs rather than enforces.
    pub logged: Vec<String>,
}

/// Whether the signature (`manifest`, `envelope` bytes) is a signature of the image
/// `digest` under `authority` at `now` (Unix seconds). The error says why not.
pub fn check(
    signature: &str,
    manifest: &SignatureManifest,
    envelope_bytes: &[u8],
    digest: &str,
    authority: &NotationAuthority,
    now: i64,
) -> Result<NotationVerified, String> {
    let layer = &manifest.envelope;
    match layer.media_type.as_str() {
        JWS_MEDIA_TYPE => {}
        COSE_MEDIA_TYPE => {
            return Err("is a COSE envelope, which is not supported (only JWS)".into())
        }
        other => return Err(format!("has an envelope of media type {other:?}, not JWS")),
    }
    if format!("sha256:{}", sha256_hex(envelope_bytes)) != layer.digest {
        return Err("its envelope does not have the layer's digest".into());
    }
    if manifest.subject.digest != digest {
        return Err(format!(
            "is about {}, not {digest}",
            manifest.subject.digest
        ));
    }
    let env = envelope::parse(envelope_bytes).map_err(|e| format!("its envelope {e}"))?;
    let leaf = env
        .certs
        .first()
        .ok_or("its envelope has no certificate (x5c)")?;
    let key = chain::leaf_key(leaf)?;
    let key_bytes = match (env.alg, &key) {
        (Alg::Es256, chain::LeafKey::P256(k)) | (Alg::Es384, chain::LeafKey::P384(k)) => k,
        (Alg::Ps256 | Alg::Ps384 | Alg::Ps512, chain::LeafKey::Rsa { der, .. }) => der,
        _ => {
            return Err(format!(
                "is signed with {:?}, which does not fit its leaf key",
                env.alg
            ))
        }
    };
    if !envelope::verifies(env.alg, key_bytes, &env.signing_input, &env.signature) {
        return Err("does not verify with its leaf certificate's key".into());
    }
    let target = &env.target;
    if target.digest != digest {
        return Err(format!(
            "verifies but signs {}, not {digest}",
            target.digest
        ));
    }
    if target.size != manifest.subject.size || target.media_type != manifest.subject.media_type {
        return Err(
            "verifies but its targetArtifact's size or media type is not the subject's".into(),
        );
    }
    let mut logged = Vec::new();
    let authentic = chain::authenticity(&env.certs, &authority.trust_store)
        .and_then(|()| trusted_identity(leaf, &authority.identities));
    enforce_or_log(authority.level != Level::Audit, authentic, &mut logged)?;
    let expiry = match env.expiry {
        Some(at) if at < now => Err(format!("the signature expired at {at} (Unix time)")),
        _ => chain::validity(&env.certs, now),
    };
    enforce_or_log(authority.level == Level::Strict, expiry, &mut logged)?;
    Ok(NotationVerified {
        signature: signature.to_string(),
        signer: chain::subject(leaf),
        logged,
    })
}

fn enforce_or_log(
    enforced: bool,
    r: Result<(), String>,
    logged: &mut Vec<String>,
) -> Result<(), String> {
    match r {
        Err(e) if enforced => Err(format!("verifies but {e}")),
        Err(e) => {
            logged.push(e);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn trusted_identity(leaf: &[u8], identities: &Identities) -> Result<(), String> {
    let Identities::Subjects(trusted) = identities else {
        return Ok(());
    };
    let dn = chain::subject_dn(leaf)?;
    if trusted.iter().any(|t| chain::is_subset(t, &dn)) {
        Ok(())
    } else {
        Err(format!(
            "its signer {:?} is not a trusted identity",
            chain::subject(leaf)
        ))
    }
}

#[cfg(test)]
mod tests;
