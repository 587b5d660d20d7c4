//! The offline Rekor check of a cosign signature: the bundle cosign attaches to a
//! signature layer (annotation `dev.sigstore.cosign/bundle`) proves that the transparency
//! log recorded this signature, without asking the log.
//!
//! Checked, as `cosign verify` does for a key-signed image (pkg/cosign `VerifyBundle`):
//!
//! 1. `Payload.logID` is the configured Rekor key's ID (hex SHA-256 of its DER
//!    SubjectPublicKeyInfo): the bundle comes from the log we trust.
//! 2. `SignedEntryTimestamp` is the log's signature over the canonical JSON (RFC 8785) of
//!    `Payload` — keys sorted, no spaces: `{"body":…,"integratedTime":…,"logID":…,"logIndex":…}`.
//! 3. The logged entry (`Payload.body`, a `hashedrekord` or `rekord` 0.0.1) is about this
//!    signature: the same signature bytes, the SHA-256 of this payload, and the authority's
//!    public key. A valid SET over some other entry proves nothing about this layer.
//!
//! Not checked: inclusion proofs and checkpoints (the SET is the log's promise of
//! inclusion, which is what cosign checks offline too).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::key::{sha256_hex, PublicKey};

/// What a verified bundle says about the log entry, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorEntry {
    pub log_index: i64,
    pub integrated_time: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Bundle {
    signed_entry_timestamp: String,
    payload: Payload,
}

/// The signed payload. Field order is the canonical (sorted) key order, which is what
/// makes `serde_json::to_vec` of it canonical JSON: the strings are base64 and hex (no
/// escapes) and the numbers integers.
#[derive(Deserialize, Serialize)]
struct Payload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

/// A `rekord` or `hashedrekord` entry, the parts we compare.
#[derive(Deserialize)]
struct Entry {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: EntrySpec,
}

#[derive(Deserialize)]
struct EntrySpec {
    data: EntryData,
    signature: EntrySignature,
}

#[derive(Deserialize)]
struct EntryData {
    hash: EntryHash,
}

#[derive(Deserialize)]
struct EntryHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct EntrySignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: EntryPublicKey,
}

#[derive(Deserialize)]
struct EntryPublicKey {
    content: String,
}

/// Checks `bundle` (the annotation's JSON) against the log's key, and that its entry is
/// `signature` (raw bytes) over `payload` by `signer`. The error says which step failed.
pub fn verify_bundle(
    bundle: &str,
    rekor: &PublicKey,
    signature: &[u8],
    payload: &[u8],
    signer: &PublicKey,
) -> Result<RekorEntry, String> {
    let bundle: Bundle = serde_json::from_str(bundle)
        .map_err(|e| format!("the Rekor bundle is not JSON of the cosign bundle shape: {e}"))?;
    verify_set(&bundle, rekor)?;
    let body = STANDARD
        .decode(&bundle.payload.body)
        .map_err(|e| format!("the Rekor bundle's body is not base64: {e}"))?;
    let entry: Entry = serde_json::from_slice(&body)
        .map_err(|e| format!("the Rekor entry is not a rekord or hashedrekord: {e}"))?;
    check_entry(&entry, signature, payload, signer)?;
    Ok(RekorEntry {
        log_index: bundle.payload.log_index,
        integrated_time: bundle.payload.integrated_time,
    })
}

/// Steps 1 and 2: the log is ours and signed this payload.
fn verify_set(bundle: &Bundle, rekor: &PublicKey) -> Result<(), String> {
    let wanted = rekor.log_id();
    if bundle.payload.log_id != wanted {
        return Err(format!(
            "the Rekor bundle is from log {}, not from the configured Rekor key's log {wanted}",
            crate::policy::quote(&bundle.payload.log_id)
        ));
    }
    let set = STANDARD
        .decode(&bundle.signed_entry_timestamp)
        .map_err(|e| format!("the Rekor bundle's SignedEntryTimestamp is not base64: {e}"))?;
    let canonical = serde_json::to_vec(&bundle.payload)
        .map_err(|e| format!("the Rekor bundle cannot be re-encoded: {e}"))?;
    if !rekor.verifies(&canonical, &set) {
        return Err(
            "the Rekor bundle's SignedEntryTimestamp does not verify with the Rekor key".into(),
        );
    }
    Ok(())
}

/// Step 3: the logged entry is this signature of this payload by this key.
fn check_entry(
    entry: &Entry,
    signature: &[u8],
    payload: &[u8],
    signer: &PublicKey,
) -> Result<(), String> {
    if !matches!(entry.kind.as_str(), "hashedrekord" | "rekord") || entry.api_version != "0.0.1" {
        return Err(format!(
            "the Rekor entry is a {} {}, expected hashedrekord or rekord 0.0.1",
            crate::policy::quote(&entry.kind),
            crate::policy::quote(&entry.api_version)
        ));
    }
    let spec = &entry.spec;
    let logged_signature = STANDARD.decode(&spec.signature.content).ok();
    if logged_signature.as_deref() != Some(signature) {
        return Err("the Rekor entry records a different signature".into());
    }
    let hash = &spec.data.hash;
    if hash.algorithm != "sha256" || hash.value != sha256_hex(payload) {
        return Err("the Rekor entry records the hash of a different payload".into());
    }
    let logged_key = STANDARD
        .decode(&spec.signature.public_key.content)
        .ok()
        .and_then(|pem| PublicKey::from_pem(&pem).ok());
    if logged_key.as_ref() != Some(signer) {
        return Err("the Rekor entry records a different public key (or a certificate)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real bundle of the public Rekor log (log index 783606), as sigstore-rs tests it.
    const REAL_BUNDLE: &str = r#"{"SignedEntryTimestamp":"MEUCIDx9M+yRpD0O47/Mzm8NAPCbtqy4uiTkLWWexW0bo4jZAiEA1wwueIW8XzJWNkut5y9snYj7UOfbMmUXp7fH3CzJmWg=","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoicmVrb3JkIiwic3BlYyI6eyJkYXRhIjp7Imhhc2giOnsiYWxnb3JpdGhtIjoic2hhMjU2IiwidmFsdWUiOiIzYWY0NDE0ZDIwYzllMWNiNzZjY2M3MmFhZThiMjQyMTY2ZGFiZTZhZjUzMWE0YTc5MGRiOGUyZjBlNWVlN2M5In19LCJzaWduYXR1cmUiOnsiY29udGVudCI6Ik1FWUNJUURXV3hQUWEzWEZVc1BieVRZK24rYlp1LzZQd2hnNVd3eVlEUXRFZlFobzl3SWhBUGtLVzdldWI4YjdCWCtZYmJSYWM4VHd3SXJLNUt4dmR0UTZOdW9EK2l2VyIsImZvcm1hdCI6Ing1MDkiLCJwdWJsaWNLZXkiOnsiY29udGVudCI6IkxTMHRMUzFDUlVkSlRpQlFWVUpNU1VNZ1MwVlpMUzB0TFMwS1RVWnJkMFYzV1VoTGIxcEplbW93UTBGUldVbExiMXBKZW1vd1JFRlJZMFJSWjBGRlRFdG9SRGRHTlU5TGVUYzNXalU0TWxrMmFEQjFNVW96UjA1Qkt3cHJkbFZ6YURSbFMzQmtNV3gzYTBSQmVtWkdSSE0zZVZoRlJYaHpSV3RRVUhWcFVVcENaV3hFVkRZNGJqZFFSRWxYUWk5UlJWazNiWEpCUFQwS0xTMHRMUzFGVGtRZ1VGVkNURWxESUV0RldTMHRMUzB0Q2c9PSJ9fX19","integratedTime":1634714179,"logIndex":783606,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}"#;

    fn rekor() -> PublicKey {
        PublicKey::from_pem(super::super::testing::REKOR_PEM.as_bytes()).unwrap()
    }

    #[test]
    fn a_real_rekor_set_verifies_and_a_changed_one_does_not() {
        let bundle: Bundle = serde_json::from_str(REAL_BUNDLE).unwrap();
        verify_set(&bundle, &rekor()).unwrap();
        let changed = REAL_BUNDLE.replace("783606", "783607");
        let bundle: Bundle = serde_json::from_str(&changed).unwrap();
        let e = verify_set(&bundle, &rekor()).unwrap_err();
        assert!(e.contains("does not verify with the Rekor key"), "{e}");
    }

    #[test]
    fn a_bundle_of_another_log_is_refused_by_its_id() {
        let other = REAL_BUNDLE.replace("c0d23d6a", "00d23d6a");
        let bundle: Bundle = serde_json::from_str(&other).unwrap();
        let e = verify_set(&bundle, &rekor()).unwrap_err();
        assert!(
            e.contains("not from the configured Rekor key's log c0d23d6a"),
            "{e}"
        );
    }

    #[test]
    fn a_real_entry_about_another_signature_is_refused() {
        // The SET is genuine, but the entry is not about these bytes.
        let e = verify_bundle(REAL_BUNDLE, &rekor(), b"sig", b"payload", &rekor()).unwrap_err();
        assert!(e.contains("different signature"), "{e}");
        let e = verify_bundle("{}", &rekor(), b"s", b"p", &rekor()).unwrap_err();
        assert!(e.contains("cosign bundle shape"), "{e}");
    }
}
