//! Notation signatures made for the tests with code independent of the verifier under test
//! (rcgen certificates, RustCrypto's p256 for the JWS signature, not ring): a test CA and
//! a code-signing leaf, and `sign`, which pushes to a registry what `notation sign` pushes
//! to a registry without the referrers API — the JWS envelope as the one layer of an OCI
//! manifest of artifact type `application/vnd.cncf.notary.signature` whose `subject` is
//! the image, and the referrers tag `sha256-<hex>`: an image index listing it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

use super::registry::{sha256_digest, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

/// A CA and a leaf certificate `C=US, O=Example, CN=signer` it issued, with the leaf's key.
pub struct Signer {
    pub ca_pem: String,
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    key: SigningKey,
}

impl Signer {
    pub fn new(ca_name: &str, seed: u8) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = SigningKey::from_slice(&[seed.max(1); 32]).unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name.push(DnType::CountryName, "US");
        leaf.distinguished_name
            .push(DnType::OrganizationName, "Example");
        leaf.distinguished_name.push(DnType::CommonName, "signer");
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let leaf_key = rcgen::KeyPair::from_pem(&pem).unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            leaf_der: leaf_cert.der().to_vec(),
            key,
        }
    }

    /// The ES256 JWS envelope `notation sign` makes for the manifest `digest` of `size`.
    fn envelope(&self, digest: &str, size: usize) -> Vec<u8> {
        let protected = serde_json::json!({
            "alg": "ES256",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2025-06-01T12:00:00Z",
        });
        let payload = serde_json::json!({"targetArtifact":
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}});
        let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).unwrap());
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        let signature: Signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        serde_json::to_vec(&serde_json::json!({
            "payload": payload,
            "protected": protected,
            "header": {"x5c": [STANDARD.encode(&self.leaf_der), STANDARD.encode(&self.ca_der)],
                "io.cncf.notary.signingAgent": "portcullis-tests"},
            "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }))
        .unwrap()
    }

    /// Signs `repo@digest` (an OCI manifest of `size` bytes) in `registry`: the signature
    /// manifest, and the referrers tag index listing it.
    pub fn sign(&self, registry: &Registry, repo: &str, digest: &str, size: usize) {
        let envelope = self.envelope(digest, size);
        let envelope_digest = registry.put_blob(repo, &envelope);
        let config_digest = registry.put_blob(repo, b"{}");
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTARY_SIGNATURE,
            "config": {"mediaType": NOTARY_SIGNATURE, "digest": config_digest, "size": 2},
            "layers": [{"mediaType": "application/jose+json",
                "digest": envelope_digest, "size": envelope.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": size},
        }))
        .unwrap();
        let manifest_digest = sha256_digest(&manifest);
        registry.put_manifest(repo, &manifest_digest, &manifest, OCI_MANIFEST);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest,
                "size": manifest.len(), "artifactType": NOTARY_SIGNATURE}],
        }))
        .unwrap();
        registry.put_manifest(repo, &digest.replace(':', "-"), &index, OCI_INDEX);
    }
}
