//! Public keys of cosign authorities and Rekor logs: PEM `PUBLIC KEY` (SubjectPublicKeyInfo)
//! parsed with x509-parser, signatures checked with ring — the crypto library the rest of
//! Portcullis (rustls) already uses.
//!
//! The algorithms are those cosign verifies with for a key of each type (sigstore-go
//! `signature.LoadVerifier` with SHA-256): ECDSA P-256 with SHA-256 (ASN.1 DER
//! signatures), RSA PKCS#1 v1.5 with SHA-256 (2048 to 8192 bits), and Ed25519 over the
//! message itself. Other key types and curves are refused when the policy is loaded.

use std::fmt;

use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// A public key checked at load: its type is one we verify with, its encoding sound.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// The SubjectPublicKeyInfo, DER: what key IDs are hashes of, and what keys are
    /// compared by.
    spki: Vec<u8>,
    /// The key as ring reads it: the SPKI's bit string.
    key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    Rsa { bits: usize },
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.kind, self.id())
    }
}

impl PublicKey {
    /// Reads one PEM `PUBLIC KEY` block. The error says what the text is instead.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("not a PEM block ({e}); expected -----BEGIN PUBLIC KEY-----"))?;
        if block.label != "PUBLIC KEY" {
            return Err(format!(
                "the PEM block is {:?}, expected PUBLIC KEY (a SubjectPublicKeyInfo, as \
                 `cosign generate-key-pair` writes cosign.pub)",
                block.label
            ));
        }
        Self::from_spki_der(&block.contents)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, String> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the SubjectPublicKeyInfo".into());
        }
        let algorithm = &spki.algorithm.algorithm;
        let key = spki.subject_public_key.data.to_vec();
        let kind = if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            if curve != Some(OID_EC_P256) {
                return Err(format!(
                    "an elliptic-curve key on curve {}; only P-256 (prime256v1) is supported",
                    curve.map_or("(none)".into(), |c| c.to_id_string())
                ));
            }
            if key.len() != 65 || key[0] != 4 {
                return Err("a P-256 key must be an uncompressed point (65 bytes)".into());
            }
            KeyKind::EcdsaP256
        } else if *algorithm == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(ParsedKey::RSA(rsa)) => rsa.key_size(),
                _ => return Err("an RSA key whose modulus cannot be read".into()),
            };
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "an RSA key of {bits} bits; 2048 to 8192 are supported"
                ));
            }
            KeyKind::Rsa { bits }
        } else if *algorithm == OID_SIG_ED25519 {
            if key.len() != 32 {
                return Err("an Ed25519 key must be 32 bytes".into());
            }
            KeyKind::Ed25519
        } else {
            return Err(format!(
                "a key of algorithm {}; supported: ECDSA P-256, RSA, Ed25519",
                algorithm.to_id_string()
            ));
        };
        Ok(PublicKey {
            kind,
            spki: der.to_vec(),
            key,
        })
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether `signature` over `message` was made with this key's private key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &'static dyn VerificationAlgorithm = match self.kind {
            KeyKind::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
            KeyKind::Rsa { .. } => &sig::RSA_PKCS1_2048_8192_SHA256,
            KeyKind::Ed25519 => &sig::ED25519,
        };
        UnparsedPublicKey::new(algorithm, &self.key)
            .verify(message, signature)
            .is_ok()
    }

    /// `sha256:<hex>` of the SubjectPublicKeyInfo: names the key in reports.
    pub fn id(&self) -> String {
        format!("sha256:{}", self.log_id())
    }

    /// The hex SHA-256 of the SubjectPublicKeyInfo, which is how Rekor names its log
    /// (`logID` in a bundle).
    pub fn log_id(&self) -> String {
        sha256_hex(&self.spki)
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rekor_key_reads_with_its_published_log_id() {
        let key = PublicKey::from_pem(super::super::testing::REKOR_PEM.as_bytes()).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP256);
        assert_eq!(
            key.log_id(),
            "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
        );
        assert!(key.id().starts_with("sha256:c0d23d6a"));
    }

    #[test]
    fn what_is_not_a_supported_public_key_says_what_it_is() {
        for (pem, wanted) in [
            ("hello", "not a PEM block"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "is \"CERTIFICATE\", expected PUBLIC KEY",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "not a SubjectPublicKeyInfo",
            ),
            (
                "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE/s/dM2udQR3lgF3UIaFg7D9Hit+iCvW9
W7sD3xMy/NLFAyVwqmWTyEWMwzCeHFRmDL3olBHoA95Oreui0CF4Owc//w9HpGoG
LCHkyMqI5SQAyaOrCiKWZuOYOkDKvIV9
-----END PUBLIC KEY-----
",
                "curve 1.3.132.0.34; only P-256",
            ),
            (
                "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDHx4J+CS/EmpTx6TBYAZhOG6+O
UyIMAiJwIvuCoKNLmEn6xN0ZmdzS+7wyOTaxcPh+lyTsnIjNyVX0yiaLkYimYJSm
yTl/xwZaURJQlcSvfKbYKulG8J55dBVE67UrQs6jZuEz6sZpNW7g9DF/UnQ7m+S1
O9jknsEiOVvo9MCqAQIDAQAB
-----END PUBLIC KEY-----
",
                "RSA key of 1024 bits",
            ),
        ] {
            let e = PublicKey::from_pem(pem.as_bytes()).unwrap_err();
            assert!(e.contains(wanted), "{pem}: {e}");
        }
    }
}
