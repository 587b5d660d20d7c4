//! cosign signatures made for the tests with code independent of the verifier under test
//! (RustCrypto's p256, not ring): a key pair, and `sign`, which pushes to a registry what
//! `cosign sign --key` pushes — the simple-signing payload as the one layer of an OCI
//! manifest tagged `sha256-<hex>.sig` in the image's repository, its base64 ECDSA P-256
//! signature in the layer's `dev.cosignproject.cosign/signature` annotation.

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};

use super::registry::{sha256_digest, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A signing key; `seed` picks one deterministically.
pub struct Key(SigningKey);

impl Key {
    pub fn new(seed: u8) -> Self {
        let mut bytes = [7u8; 32];
        bytes[0] = seed.max(1);
        Self(SigningKey::from_slice(&bytes).expect("a valid P-256 scalar"))
    }

    /// The public key as `cosign.pub` holds it (PEM SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        self.0
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM")
    }

    /// Signs `repo@digest` in `registry` as `cosign sign --key` does.
    pub fn sign(&self, registry: &Registry, repo: &str, digest: &str) {
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{}/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#,
            registry.host()
        );
        let signature: DerSignature = self.0.sign(payload.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_bytes());
        let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = registry.put_blob(repo, config);
        let layer_digest = registry.put_blob(repo, payload.as_bytes());
        assert_eq!(layer_digest, sha256_digest(payload.as_bytes()));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": layer_digest, "size": payload.len(),
                "annotations": {"dev.cosignproject.cosign/signature": signature}}],
        });
        let tag = format!("{}.sig", digest.replace(':', "-"));
        registry.put_manifest(
            repo,
            &tag,
            &serde_json::to_vec(&manifest).unwrap(),
            OCI_MANIFEST,
        );
    }
}

/// A `policyDir` under `dir` whose `ImageVerificationPolicy` "signed-apps" requires
/// `key`'s signature on `HOST/apps/**`, with `failure_policy`, and the config naming it
/// (the registry at `host` spoken to in plain HTTP).
pub fn policy_config(dir: &std::path::Path, host: &str, key: &Key, failure_policy: &str) -> String {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let pem: String = key
        .public_pem()
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    std::fs::write(
        policies.join("signed.yaml"),
        format!(
            "apiVersion: portcullis.dev/v1alpha1
kind: ImageVerificationPolicy
metadata: {{name: signed-apps}}
spec:
  images: [{{glob: '{host}/apps/**'}}]
  failurePolicy: {failure_policy}
  authorities:
  - name: release-key
    key:
      data: |
{pem}"
        ),
    )
    .unwrap();
    format!(
        "policyDir: '{}'\nimageVerification: {{insecureRegistries: ['{host}'], timeoutSeconds: 2}}\n",
        policies.display()
    )
}

/// Adds `field` (a line of the policy's `spec:`, e.g. `mode: audit`) to the
/// `ImageVerificationPolicy` [`policy_config`] wrote under `dir`.
pub fn amend_policy(dir: &std::path::Path, field: &str) {
    let policy = dir.join("policies/signed.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("\nspec:\n"), "{text}");
    std::fs::write(
        &policy,
        text.replacen("\nspec:\n", &format!("\nspec:\n  {field}\n"), 1),
    )
    .unwrap();
}

/// The selector the namespace-aware tests give the policy: namespaces labelled `tier: prod`.
pub const PROD_ONLY: &str = "namespaceSelector: {matchLabels: {tier: prod}}";
