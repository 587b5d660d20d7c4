//! The X.509 side of a Notation signature: the `x5c` chain checked against a trust store,
//! the leaf's key and usages, validity times, and trusted identities (`x509.subject:`
//! distinguished names compared as attribute sets, as notation-go does).

use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;

/// The distinguished-name attributes a trusted identity may name, with their OIDs.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("CN", "2.5.4.3"),
];
const OID_P384: &str = "1.3.132.0.34";

/// A distinguished name as a set of (attribute, value), sorted.
pub type Dn = Vec<(String, String)>;

/// The leaf certificate's public key, as ring reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafKey {
    Rsa { bits: usize, der: Vec<u8> },
    P256(Vec<u8>),
    P384(Vec<u8>),
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok((&[], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after a certificate".into()),
        Err(e) => Err(format!("not a DER X.509 certificate: {e}")),
    }
}

/// Reads PEM `CERTIFICATE` blocks (a trust store), each checked to parse.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut certs = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM ({e})"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "a PEM block is {:?}; a trust store holds CERTIFICATE blocks only",
                block.label
            ));
        }
        parse(&block.contents).map_err(|e| format!("certificate {}: {e}", certs.len()))?;
        certs.push(block.contents);
    }
    if certs.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- block".into());
    }
    Ok(certs)
}

/// The leaf's key: RSA (2048 to 8192 bits), ECDSA P-256 or P-384.
pub fn leaf_key(leaf: &[u8]) -> Result<LeafKey, String> {
    let cert = parse(leaf)?;
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.to_vec();
    if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(ParsedKey::RSA(rsa)) => rsa.key_size(),
            _ => return Err("the leaf's RSA key cannot be read".into()),
        };
        if !(2048..=8192).contains(&bits) {
            return Err(format!(
                "the leaf's RSA key has {bits} bits; 2048 to 8192 are supported"
            ));
        }
        return Ok(LeafKey::Rsa { bits, der: key });
    }
    if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => return Ok(LeafKey::P256(key)),
            Some(c) if c.to_id_string() == OID_P384 => return Ok(LeafKey::P384(key)),
            _ => return Err("the leaf's EC key is not on P-256 or P-384".into()),
        }
    }
    Err(format!(
        "the leaf's key is of algorithm {}; supported: RSA, ECDSA P-256, P-384",
        spki.algorithm.algorithm.to_id_string()
    ))
}

/// The leaf's subject, as written in reports (`C=US, O=Example, CN=signer`).
pub fn subject(leaf: &[u8]) -> String {
    parse(leaf).map_or_else(|e| e, |c| c.subject().to_string())
}

/// The subject's attributes among [`ATTRIBUTES`]; a repeated one is an error (as in
/// notation-go: a set comparison would be ambiguous).
pub fn subject_dn(leaf: &[u8]) -> Result<Dn, String> {
    let cert = parse(leaf)?;
    let mut dn = Dn::new();
    for attribute in cert.subject().iter_attributes() {
        let oid = attribute.attr_type().to_id_string();
        let Some((name, _)) = ATTRIBUTES.iter().find(|(_, o)| *o == oid) else {
            continue;
        };
        let value = attribute
            .as_str()
            .map_err(|_| format!("the leaf's subject {name} is not a string"))?;
        if dn.iter().any(|(n, _)| n == name) {
            return Err(format!("the leaf's subject has {name} more than once"));
        }
        dn.push((name.to_string(), value.to_string()));
    }
    dn.sort();
    Ok(dn)
}

/// Parses `C=US, ST=WA, O=Example, CN=signer` (the part after `x509.subject:`).
/// Attributes are those of [`ATTRIBUTES`], each at most once; no escapes, no multi-valued
/// RDNs (`+`).
pub fn parse_dn(text: &str) -> Result<Dn, String> {
    let mut dn = Dn::new();
    for part in text.split(',') {
        let Some((name, value)) = part.split_once('=') else {
            return Err(format!("{:?} is not ATTRIBUTE=value", part.trim()));
        };
        let (name, value) = (name.trim(), value.trim());
        if !ATTRIBUTES.iter().any(|(n, _)| *n == name) {
            return Err(format!(
                "attribute {name:?} is not one of C, ST, L, O, OU, CN"
            ));
        }
        if value.is_empty() || value.contains(['\\', '"', '+', '=']) {
            return Err(format!(
                "{name}={value:?}: values must be non-empty, without escapes, quotes, + or ="
            ));
        }
        if dn.iter().any(|(n, _)| n == name) {
            return Err(format!("attribute {name} is given twice"));
        }
        dn.push((name.to_string(), value.to_string()));
    }
    dn.sort();
    Ok(dn)
}

/// Whether every attribute of `trusted` is in `leaf` with the same value.
pub fn is_subset(trusted: &Dn, leaf: &Dn) -> bool {
    trusted.iter().all(|a| leaf.contains(a))
}

/// Authenticity: the chain `certs` (leaf first) is well formed — each certificate signed
/// by the next, every one after the leaf a CA — and reaches the trust store: one of its
/// certificates is in the store, or the last one is signed by a store certificate that
/// is its issuer. The leaf has `digitalSignature` key usage and, when it lists extended
/// key usages, code signing (and not `anyExtendedKeyUsage`).
pub fn authenticity(certs: &[Vec<u8>], trust_store: &[Vec<u8>]) -> Result<(), String> {
    let parsed: Vec<X509Certificate> = certs
        .iter()
        .enumerate()
        .map(|(i, der)| parse(der).map_err(|e| format!("x5c[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    let Some(leaf) = parsed.first() else {
        return Err("the signature has no certificate (x5c is empty)".into());
    };
    leaf_usages(leaf)?;
    for (i, pair) in parsed.windows(2).enumerate() {
        let (cert, issuer) = (&pair[0], &pair[1]);
        if !issuer.is_ca() {
            return Err(format!("x5c[{}] signs x5c[{i}] but is not a CA", i + 1));
        }
        if cert.issuer().as_raw() != issuer.subject().as_raw()
            || cert.verify_signature(Some(issuer.public_key())).is_err()
        {
            return Err(format!("x5c[{i}] is not signed by x5c[{}]", i + 1));
        }
    }
    if certs.iter().any(|c| trust_store.contains(c)) {
        return Ok(());
    }
    let last = parsed.last().unwrap_or(leaf);
    let anchored = trust_store
        .iter()
        .filter_map(|der| parse(der).ok())
        .any(|root| {
            root.is_ca()
                && last.issuer().as_raw() == root.subject().as_raw()
                && last.verify_signature(Some(root.public_key())).is_ok()
        });
    if anchored {
        Ok(())
    } else {
        Err(format!(
            "its certificate chain (issuer {}) does not lead to a certificate of the trust store",
            last.issuer()
        ))
    }
}

fn leaf_usages(leaf: &X509Certificate) -> Result<(), String> {
    match leaf.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        Ok(_) => return Err("the leaf certificate lacks the digitalSignature key usage".into()),
        Err(e) => return Err(format!("the leaf's key usage cannot be read: {e}")),
    }
    if leaf.is_ca() {
        return Err("the leaf certificate is a CA".into());
    }
    match leaf.extended_key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(eku)) if eku.value.code_signing && !eku.value.any => Ok(()),
        Ok(Some(_)) => Err("the leaf's extended key usages do not allow code signing".into()),
        Err(e) => Err(format!("the leaf's extended key usage cannot be read: {e}")),
    }
}

/// Every certificate of the chain is valid at `now` (Unix seconds).
pub fn validity(certs: &[Vec<u8>], now: i64) -> Result<(), String> {
    for (i, der) in certs.iter().enumerate() {
        let cert = parse(der)?;
        let v = cert.validity();
        if now < v.not_before.timestamp() {
            return Err(format!("x5c[{i}] is not valid before {}", v.not_before));
        }
        if now > v.not_after.timestamp() {
            return Err(format!("x5c[{i}] expired at {}", v.not_after));
        }
    }
    Ok(())
}
