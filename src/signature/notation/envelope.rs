//! The Notary Project JWS envelope (`application/jose+json`, JSON serialization), read
//! strictly per the signature specification (notaryproject/specifications
//! `specs/signature-envelope-jws.md`), and its signature checked with ring.
//!
//! Read: the protected header's `alg` (PS256/PS384/PS512, ES256/ES384), `cty`
//! (`application/vnd.cncf.notary.payload.v1+json`), `crit` (must list
//! `io.cncf.notary.signingScheme`, and `io.cncf.notary.expiry` when present; any other
//! entry is refused), `io.cncf.notary.signingScheme` (`notary.x509` only),
//! `io.cncf.notary.signingTime` (required, RFC 3339) and `io.cncf.notary.expiry`; the
//! unprotected header's `x5c` (base64 DER, leaf first); the payload's `targetArtifact`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use serde_json::Value;

pub const PAYLOAD_CTY: &str = "application/vnd.cncf.notary.payload.v1+json";
const SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const EXPIRY: &str = "io.cncf.notary.expiry";

/// The JWS algorithms the Notary Project allows that ring verifies (ES512 is P-521,
/// which ring does not verify: refused with that reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
}

/// The signed artifact's descriptor (`targetArtifact`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An envelope whose structure and headers are valid (its signature not yet checked).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub alg: Alg,
    pub signing_time: i64,
    pub expiry: Option<i64>,
    /// `x5c`, DER, leaf first.
    pub certs: Vec<Vec<u8>>,
    pub target: Target,
    /// `BASE64URL(protected) . BASE64URL(payload)`, as signed.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Jws {
    payload: String,
    protected: String,
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unprotected {
    x5c: Vec<String>,
    #[serde(default, rename = "io.cncf.notary.signingAgent")]
    _agent: Option<String>,
    #[serde(default, rename = "io.cncf.notary.timestampSignature")]
    timestamp: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    target_artifact: Target,
}

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("its {field} is not base64url"))
}

/// Reads an envelope; the error says what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let jws: Jws =
        serde_json::from_slice(bytes).map_err(|e| format!("is not a JWS JSON envelope: {e}"))?;
    if jws.header.timestamp.is_some() {
        return Err(
            "carries an RFC 3161 timestamp countersignature, which Portcullis does not \
                    verify"
                .into(),
        );
    }
    let protected: BTreeMap<String, Value> =
        serde_json::from_slice(&b64url("protected header", &jws.protected)?)
            .map_err(|e| format!("its protected header is not a JSON object: {e}"))?;
    let (alg, signing_time, expiry) = protected_header(&protected)?;
    let payload: Payload = serde_json::from_slice(&b64url("payload", &jws.payload)?)
        .map_err(|e| format!("its payload is not a Notary Project payload: {e}"))?;
    let certs = (jws.header.x5c.iter())
        .map(|c| {
            STANDARD
                .decode(c)
                .map_err(|_| "an x5c entry is not base64".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Envelope {
        alg,
        signing_time,
        expiry,
        certs,
        target: payload.target_artifact,
        signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
        signature: b64url("signature", &jws.signature)?,
    })
}

fn string<'a>(header: &'a BTreeMap<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match header.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("its protected header's {key} is not a string")),
    }
}

fn protected_header(h: &BTreeMap<String, Value>) -> Result<(Alg, i64, Option<i64>), String> {
    let alg = match string(h, "alg")? {
        Some("PS256") => Alg::Ps256,
        Some("PS384") => Alg::Ps384,
        Some("PS512") => Alg::Ps512,
        Some("ES256") => Alg::Es256,
        Some("ES384") => Alg::Es384,
        Some("ES512") => return Err("is signed with ES512 (P-521), which is not supported".into()),
        other => {
            return Err(format!(
                "has alg {other:?}; the Notary Project allows PS256/384/512, ES256/384/512"
            ))
        }
    };
    if string(h, "cty")? != Some(PAYLOAD_CTY) {
        return Err(format!("its cty is not {PAYLOAD_CTY}"));
    }
    let crit: Vec<&str> = match h.get("crit") {
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => return Err("its protected header has no crit list of strings".into()),
    };
    for entry in &crit {
        if !matches!(*entry, SCHEME | EXPIRY) {
            return Err(format!(
                "its crit lists {entry:?}, which Portcullis does not understand"
            ));
        }
        if !h.contains_key(*entry) {
            return Err(format!(
                "its crit lists {entry:?}, which the header does not have"
            ));
        }
    }
    if !crit.contains(&SCHEME) || (h.contains_key(EXPIRY) && !crit.contains(&EXPIRY)) {
        return Err(format!(
            "its crit must list {SCHEME} (and {EXPIRY} when present)"
        ));
    }
    match string(h, SCHEME)? {
        Some("notary.x509") => {}
        Some("notary.x509.signingAuthority") => {
            return Err(
                "uses signing scheme notary.x509.signingAuthority, which is not supported".into(),
            )
        }
        other => {
            return Err(format!(
                "has signing scheme {other:?}, expected notary.x509"
            ))
        }
    }
    let time = |key: &str| -> Result<Option<i64>, String> {
        string(h, key)?
            .map(|t| rfc3339(t).ok_or_else(|| format!("its {key} {t:?} is not an RFC 3339 time")))
            .transpose()
    };
    let signing_time =
        time(SIGNING_TIME)?.ok_or(format!("its protected header has no {SIGNING_TIME}"))?;
    Ok((alg, signing_time, time(EXPIRY)?))
}

/// Whether `signature` over `input` verifies with `key` (the leaf's SPKI bit string) under
/// `alg`: RSASSA-PSS with the SHA of `alg`; ECDSA with fixed-size `r||s` (JWS).
pub fn verifies(alg: Alg, key: &[u8], input: &[u8], signature: &[u8]) -> bool {
    let algorithm: &'static dyn VerificationAlgorithm = match alg {
        Alg::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
        Alg::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
        Alg::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
        Alg::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
        Alg::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(input, signature)
        .is_ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as Unix seconds.
pub fn rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..).filter(|_| digits > 0)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (num_of(&rest[1..3])? * 3600 + num_of(&rest[4..6])? * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

fn num_of(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())?
}
