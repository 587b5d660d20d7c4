//! Test fixtures for the signature module: cosign signatures made with RustCrypto (p256,
//! rsa, ed25519-dalek), code independent of the ring-based verifier under test, and
//! signature manifests and Rekor bundles built as cosign writes them.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};

use super::cosign::{Layer, BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE};

/// Rekor's public key (rekor.sigstore.dev); its log ID is
/// c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d.
pub const REKOR_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
";

/// Two 2048-bit RSA test keys (generated with `openssl genpkey` for these tests only).
const RSA_A: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDDZddDeEiYCvFl
pRm/04RQEsn7lT5+eWvxMQRco6oVCg4tl8iwrxlls+YJQkNYxhqYDNwNUeIViMIe
XSbBOwFADsOKnIkZEP9oN+2i02M0Un3c9Sx9e6h19nMfNUMDOnfyNLwnEelzH+cY
8rK5X32deOctco2tPUlSidCf18wBFKtxGF6252j7sLRSsw1pGbwDWSMcww2OM91w
mnimZAXmS3dY0MkrUrwivJ8491lQsMZ4pPTHq1xkh3q6CesRcIg8bpB0NHyY1PaZ
6WXfbcwSySsOFub6aEkYLIrQmW/iMdIJ4OChLulbGkB3BT8ikvUK9p89qIRdk+sQ
aVeEDFxRAgMBAAECggEASFfEQy6dce1bQo7F4cemDR9nuMWgxaKe3EWRn9rYdcGr
TiYMH540gPsCCBuIY6202uan8iaG1gI0HJnQZ2o5JEZTD1a1S5qHdUZ/rPEmoZCJ
GO2M80h9Lm94X+2QSfmzvvDXWH/BNuZw4UO59/fqwgqpTKJE4gb2xqBPpV54IU2o
JMlhDlH81BrAtPRTJLYuETRv3d6Ghiq39phnssCtjfudDjq6GS1EFYBJ75H9BgCo
dLvbsP1VowGe0oBt0Q50OGmLDsVK8XM+mYRt0bqYEInejmW7x/3IfjW4Ytw+Ql2i
n4p1eo5gGMPFJ5G/ZJl5uLcOPZrjeYOsAD0fokhIoQKBgQDkpAwGN+T1uMDCcbNt
TH8UxaQjNLrrUrUClf2VV8hSIxLb23hIQOCS1SNKXkyLHipGiCnmrIGIEqNoxDd/
ICt0o/0Pni6Qcyf0FGE69q0hyFhVZSwa9TlvyA2DU1g6wUnkel7fWPtAIVxx6w1u
RLJUkTui4GlVi2rpBVDI/IWNewKBgQDax3YgtSpXLL5Dlf5xVyrJma6S1LhTI0Ia
ZZ+w9+uhYF7lJ9iK1ZrJ+xbY8wTRJtFMetvyifnm4qcx5/zKH2TtCM9TK2/qub24
s5XDiFudFy/Em3OYIp+xboab3e8R3Kptt4vpbUyd7KOUMBANEJh6eF8qEAEiSFYF
oamQ0ImlowKBgQDEHKWnq8e6sFa+MbJ6PJQAKCpKfE8by5ww9KBGub28HhNt+0in
iOZXa3PStSGobh5K0z5Feo+8PGhnU25anyhG6uYDwGUmR2/snpJrdew4vtRtotL6
6H30kD5u900FUIdl70RzBKq1bigSGlAx1cC0YsIpSZ1v35668nFBg7+2AwKBgEpX
yT5oEZE59RWGXMYq9rE29emTO2eU7ZuGuPMr6/gUhWqdVaon18eW+TaTrilcZXb1
sNQEKtVYY7RDvtT4QhWCDuGWOxuqLlwbOmMNbQQ+os7OfENQUK+8fSVuDxUkxQ0v
d+3EZGqtxRBQHMQzxXyodr4WXixGJGUZgENjecK9AoGBALwiFGDiTCD6IxptijtS
FmfMsWeH5/GTqjXeSvV9OH32xNqVX6J3RyAvjZegbaLx45HM9preaTS3fXNjuGHf
YkLUCD/35oeAw4yjq54YaivvZ8EwZ6OG4IcPbTTFbuEWvfzxloXX/BEc9ig9aPk1
kSZgoAzw1FBDef7zeGkDyqhE
-----END PRIVATE KEY-----";
const RSA_B: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCsRxiM4xzOVoQ1
twnrRyxS79vfPA0e5KzGpQr4lLyAxiNEuNZVhTQInFV3ZO7hrrWky/vG1aYnFRhs
8RB9WjutTrrrSEPD5255mCS3nDP5VitWk+LtlG5vln6epRBuEPI1fHc4xCw88x/R
kVkMnWtLItozYYMErQhBXTJw45ezqr2nBSuwIbvMx7OY6/ORJdNcbvETIQ4sx2Ow
j0onjzDb6Z4RV3q0jp4rXJQQ4c8swo7O5gz2vfQQiJdlg89Hg/R4m4mS6yhd8D2e
gVQBcHxpjTrXJVy2snAg60p75yyZkT6fdY2xVVL3y6gkdt33eKrvauIN0sCORCUC
KsU4MpXtAgMBAAECggEAD699db5r7gGEkhtzRL+7MmXyX/Xov+pULNX0FMP+Eb94
kJY/tZOmNC5/vZosAdJVaYbFCsqDEUXjbm/Yb4Fas6HadPeka97TeTC4Dxuiw83r
rjtSywzbrT9Hkgw3Xb4fP21wsXNzD62XNQ6FzBc9IJ8wvMLhGfjjKohgwlSGiG4Z
09AAUM71vxP+ERwrhmkcbqWVdEVB6qm5APitleKKJ2kt7Eyz/GXsiEGb601tc5es
xdPdW/651/ckzBF5M/4ZX6AshHhi0hWBe6aqTAUI2w/jPlm5lcAWCxLvngB1vU/g
ohFQzPjTDDttW5hcZMsyocnkL1tQClz+XyXuaAh4IQKBgQDqSmzNz/9j0oZDoK4H
Y5MgVY9nQrVhZMKIlNYcMTe5i6Pg2WgIVTDM6jQil6Cr7eT2uCvrdyqg5lCCwzHP
oBLQRX5u8ZlyIB34DSzRD7iUuOnayMfX8KhpLqFhl7FoO1h2f9yl6pYhCo3u6QL8
0X2xNA2y6oJRG98HI/VIfvu6WQKBgQC8Patz74Y9dkxfD8kHT3tS+m5FZASdYfgV
z+2VKW7uoL5S+JWNsnkFSaWKMHoJgM0wiw05qJY0zZfDfv/1CYEg3XTgbTJWa3St
QbJMg6iuEU8O9b2UlZLERNWSMBn6LYA3iz4AFv2pEJ2K8HiObOp7jks1hRFk8xn2
bzTy1gHdtQKBgQDanVepM8w6eNaPg/7fJirCoROOZtCYcEyU5UxkQgidOY9Q34wT
OmquylqbbKCfzPs4u+E/dZJxUHcPjNONyO/FJxMysn1b4FwWeTS4XtL88w5C99aB
yC1c+AXd6o2/lKCW8fgRWTN84TxPEV2YSmHeV5PwvqGazUbugr79Rn/dAQKBgHoX
mbvxkGUO9Iv3xhCaycdRLPKO47tcjrc/DL7hh9T4p1lTaFTmfD4kvVz7AjxlsTCa
D/Lk2L/Y1WV0WvmIt5skaCkkSjDpM10orkeYYXC9Q0TVuKfFt9LbPpa54i91EaN1
CbqvLslYQIacX+Uo2ZFYAontDBIo5x8ClBopGj69AoGAGZRa67QOdix2Xku9jI66
7bCWu8A1ejc9V76yD03VybOVrGMwLw3Tsx8B9td/Zt6s+6hGkMKv1YmdeaQ8jLWX
VcoFdqwBSJyC+JnnjuCIXWxIGvWGiiIc/heycV3PHzK4gQw6eifFE3tzbsE8ebxx
9J0rltW9LwMGi7SV5TYwSag=
-----END PRIVATE KEY-----";

pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const OTHER_DIGEST: &str =
    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// A signing key of one of the types cosign verifies.
pub enum Signer {
    P256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl Signer {
    /// A P-256 key from a fixed scalar (seed 1..=127).
    pub fn p256(seed: u8) -> Signer {
        let key = p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        Signer::P256(key)
    }

    /// RSA test key 0 or 1.
    pub fn rsa(which: usize) -> Signer {
        let pem = [RSA_A, RSA_B][which];
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
        Signer::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
    }

    pub fn ed25519(seed: u8) -> Signer {
        Signer::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    /// The public key as `cosign.pub` holds it: PEM SubjectPublicKeyInfo.
    pub fn public_pem(&self) -> String {
        let lf = p256::pkcs8::LineEnding::LF;
        match self {
            Signer::P256(k) => k.verifying_key().to_public_key_pem(lf).unwrap(),
            Signer::Rsa(k) => {
                let public = rsa::RsaPublicKey::from(k.as_ref().as_ref());
                public.to_public_key_pem(LineEnding::LF).unwrap()
            }
            Signer::Ed25519(k) => k.verifying_key().to_public_key_pem(lf).unwrap(),
        }
    }

    /// The signature cosign makes over `message` (ECDSA as ASN.1 DER).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Signer::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            Signer::Rsa(k) => {
                let s: rsa::pkcs1v15::Signature = k.sign(message);
                Box::<[u8]>::from(s).to_vec()
            }
            Signer::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

/// The simple-signing payload `cosign sign` writes for `digest`.
pub fn payload(digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.example/prod/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// A signature layer's descriptor for `payload` signed with `signature`.
pub fn layer(payload: &[u8], signature: &[u8], bundle: Option<String>) -> Layer {
    let mut annotations =
        BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), STANDARD.encode(signature))]);
    if let Some(bundle) = bundle {
        annotations.insert(BUNDLE_ANNOTATION.to_string(), bundle);
    }
    Layer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        digest: sha256_digest(payload),
        size: payload.len() as u64,
        annotations,
    }
}

/// The signature manifest cosign pushes with these layers, as JSON.
pub fn manifest(layers: &[Layer]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size,
                "annotations": l.annotations})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(b"{}"), "size": 2},
        "layers": layers,
    }))
    .unwrap()
}

/// A Rekor bundle as cosign attaches it: a hashedrekord entry of `signature` over
/// `payload` by `signer_pem`, and a SET made with `log`.
pub fn rekor_bundle(
    log: &Signer,
    signer_pem: &str,
    signature: &[u8],
    payload: &[u8],
    log_index: i64,
) -> String {
    let body = serde_json::json!({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": format!("{:x}", Sha256::digest(payload))}},
            "signature": {"content": STANDARD.encode(signature),
                "publicKey": {"content": STANDARD.encode(signer_pem)}}
        }
    });
    let log_der = match log {
        Signer::P256(k) => k.verifying_key().to_public_key_der().unwrap().into_vec(),
        _ => unreachable!("test Rekor logs are P-256"),
    };
    let log_id = format!("{:x}", Sha256::digest(&log_der));
    let body = STANDARD.encode(serde_json::to_vec(&body).unwrap());
    // Canonical JSON by hand, keys sorted, as Rekor signs it.
    let canonical = format!(
        r#"{{"body":"{body}","integratedTime":1700000000,"logID":"{log_id}","logIndex":{log_index}}}"#
    );
    let set = STANDARD.encode(log.sign(canonical.as_bytes()));
    serde_json::json!({
        "SignedEntryTimestamp": set,
        "Payload": {"body": body, "integratedTime": 1700000000, "logIndex": log_index, "logID": log_id}
    })
    .to_string()
}

// ------------------------------------------------------------------ Notation fixtures
//
// Certificates made with rcgen and JWS envelopes signed with RustCrypto (p256, rsa), as
// notation sign writes them (Notary Project JWS envelope, notary.x509 scheme).

/// A deterministic RNG for RSA-PSS salts in tests (not for real keys).
struct TestRng(u64);

impl rsa::rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for TestRng {}

/// A Notation signing key: ES256 (P-256) or PS256 (RSA 2048).
pub enum JwsKey {
    Es256(p256::ecdsa::SigningKey),
    Ps256(Box<rsa::RsaPrivateKey>),
}

impl JwsKey {
    pub fn es256(seed: u8) -> JwsKey {
        JwsKey::Es256(p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap())
    }

    pub fn ps256() -> JwsKey {
        JwsKey::Ps256(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(RSA_A).unwrap()))
    }

    fn alg(&self) -> &'static str {
        match self {
            JwsKey::Es256(_) => "ES256",
            JwsKey::Ps256(_) => "PS256",
        }
    }

    /// The PKCS#8 PEM private key, for rcgen to certify its public half.
    fn pkcs8_pem(&self) -> String {
        use p256::pkcs8::EncodePrivateKey as _;
        match self {
            JwsKey::Es256(k) => k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            JwsKey::Ps256(_) => RSA_A.to_string(),
        }
    }

    /// The JWS signature: ECDSA `r||s`, or RSASSA-PSS with SHA-256 (salt 32 bytes).
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            JwsKey::Es256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            JwsKey::Ps256(k) => {
                use rsa::signature::RandomizedSigner as _;
                let key = rsa::pss::SigningKey::<rsa::sha2::Sha256>::new(k.as_ref().clone());
                let s = key.sign_with_rng(&mut TestRng(0x9e37_79b9_7f4a_7c15), input);
                Box::<[u8]>::from(s).to_vec()
            }
        }
    }
}

/// A CA and a code-signing leaf it issued, as DER and PEM.
pub struct Pki {
    pub ca_pem: String,
    pub leaf_der: Vec<u8>,
    pub ca_der: Vec<u8>,
    pub key: JwsKey,
}

/// The leaf's subject in tests.
pub const LEAF_SUBJECT: &[(rcgen::DnType, &str)] = &[
    (rcgen::DnType::CountryName, "US"),
    (rcgen::DnType::OrganizationName, "Example"),
    (rcgen::DnType::CommonName, "signer"),
];

/// A CA named `ca_name` and a leaf for `key` valid from `not_before` to `not_after`
/// (years), with digitalSignature and code signing.
pub fn pki(ca_name: &str, key: JwsKey, years: (i32, i32)) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name = DistinguishedName::new();
    for (t, v) in LEAF_SUBJECT {
        leaf.distinguished_name.push(t.clone(), *v);
    }
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    leaf.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let leaf_key = rcgen::KeyPair::from_pem(&key.pkcs8_pem()).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        leaf_der: leaf_cert.der().to_vec(),
        key,
    }
}

/// The image manifest media type the test signatures name.
pub const IMAGE_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A JWS envelope over `{"targetArtifact": {mediaType, digest, size: 1234}}` with this
/// protected header (JSON) and chain.
pub fn envelope(
    pki: &Pki,
    protected: &serde_json::Value,
    digest: &str,
    chain: &[&[u8]],
) -> Vec<u8> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = serde_json::json!({"targetArtifact":
        {"mediaType": IMAGE_MEDIA_TYPE, "digest": digest, "size": 1234}});
    let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(protected).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    let signature = pki.key.sign(format!("{protected}.{payload}").as_bytes());
    let x5c: Vec<String> = chain.iter().map(|c| STANDARD.encode(c)).collect();
    serde_json::to_vec(&serde_json::json!({
        "payload": payload, "protected": protected,
        "header": {"x5c": x5c, "io.cncf.notary.signingAgent": "test/1.0"},
        "signature": URL_SAFE_NO_PAD.encode(signature),
    }))
    .unwrap()
}

/// The protected header `notation sign` writes (notary.x509).
pub fn protected(pki: &Pki) -> serde_json::Value {
    serde_json::json!({
        "alg": pki.key.alg(),
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2025-06-01T12:00:00+02:00",
    })
}

/// The signature manifest `notation sign` pushes for `envelope` (subject: the image).
pub fn notation_manifest(envelope: &[u8], digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/jose+json",
            "digest": sha256_digest(envelope), "size": envelope.len()}],
        "subject": {"mediaType": IMAGE_MEDIA_TYPE, "digest": digest, "size": 1234},
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
    }))
    .unwrap()
}
