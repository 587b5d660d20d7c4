//! Notation signatures made in the test by independent code (rcgen certificates, p256
//! and rsa signatures): what verifies, and what is refused or logged at each level.

use super::*;
use crate::signature::testing::{
    envelope, notation_manifest, pki, protected, JwsKey, Pki, DIGEST, OTHER_DIGEST,
};

/// 2026-01-01T00:00:00Z: inside the test leaves' validity (2020..2030).
const NOW: i64 = 1_767_225_600;
const IDENTITY: &str = "x509.subject: C=US, O=Example, CN=signer";

fn authority(store_pem: &str, identities: &[&str], level: &str) -> NotationAuthority {
    let identities: Vec<String> = identities.iter().map(|s| s.to_string()).collect();
    NotationAuthority::new(store_pem.as_bytes(), &identities, level).unwrap()
}

/// Signs `signed_digest` with the leaf and CA chain; the manifest's subject is `DIGEST`.
fn signed(
    pki: &Pki,
    header: &serde_json::Value,
    signed_digest: &str,
) -> (SignatureManifest, Vec<u8>) {
    let env = envelope(pki, header, signed_digest, &[&pki.leaf_der, &pki.ca_der]);
    let manifest = signature_manifest(&notation_manifest(&env, DIGEST)).unwrap();
    (manifest, env)
}

fn check_with(
    _pki: &Pki,
    (m, env): &(SignatureManifest, Vec<u8>),
    a: &NotationAuthority,
) -> Result<NotationVerified, String> {
    check("sha256:sig", m, env, DIGEST, a, NOW)
}

#[test]
fn es256_and_ps256_signatures_chained_to_the_trust_store_verify() {
    for key in [JwsKey::es256(3), JwsKey::ps256()] {
        let pki = pki("Test CA", key, (2020, 2030));
        let sig = signed(&pki, &protected(&pki), DIGEST);
        for identities in [&[IDENTITY][..], &["*"], &["x509.subject: O=Example"]] {
            let a = authority(&pki.ca_pem, identities, "strict");
            let v = check_with(&pki, &sig, &a).unwrap();
            assert_eq!(v.signature, "sha256:sig");
            assert!(
                v.signer.contains("CN=signer") && v.signer.contains("O=Example"),
                "{}",
                v.signer
            );
            assert!(v.logged.is_empty());
        }
    }
}

#[test]
fn the_signing_certificate_itself_may_be_the_trust_store() {
    let pki = pki("Test CA", JwsKey::es256(4), (2020, 2030));
    let sig = signed(&pki, &protected(&pki), DIGEST);
    let leaf_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pki.leaf_der)
    );
    assert!(check_with(&pki, &sig, &authority(&leaf_pem, &["*"], "strict")).is_ok());
}

#[test]
fn a_foreign_trust_store_or_an_untrusted_identity_is_refused_but_logged_at_audit() {
    let pki_a = pki("Test CA", JwsKey::es256(5), (2020, 2030));
    let other = pki("Other CA", JwsKey::es256(6), (2020, 2030));
    let sig = signed(&pki_a, &protected(&pki_a), DIGEST);
    let foreign = authority(&other.ca_pem, &["*"], "permissive");
    let e = check_with(&pki_a, &sig, &foreign).unwrap_err();
    assert!(
        e.contains("does not lead to a certificate of the trust store"),
        "{e}"
    );
    let stranger = authority(
        &pki_a.ca_pem,
        &["x509.subject: C=US, O=Example, CN=someone"],
        "strict",
    );
    let e = check_with(&pki_a, &sig, &stranger).unwrap_err();
    assert!(e.contains("is not a trusted identity"), "{e}");
    let audit = authority(&other.ca_pem, &["*"], "audit");
    let v = check_with(&pki_a, &sig, &audit).unwrap();
    assert!(
        v.logged[0].contains("does not lead to a certificate of the trust store"),
        "{:?}",
        v.logged
    );
}

#[test]
fn integrity_failures_are_refused_at_every_level() {
    let pki = pki("Test CA", JwsKey::es256(7), (2020, 2030));
    for level in ["strict", "permissive", "audit"] {
        let a = authority(&pki.ca_pem, &["*"], level);
        // Tampered: the payload swapped after signing.
        let (m, env) = signed(&pki, &protected(&pki), DIGEST);
        let mut jws: serde_json::Value = serde_json::from_slice(&env).unwrap();
        let (_, other_env) = signed(&pki, &protected(&pki), OTHER_DIGEST);
        let other: serde_json::Value = serde_json::from_slice(&other_env).unwrap();
        jws["payload"] = other["payload"].clone();
        let tampered = serde_json::to_vec(&jws).unwrap();
        let m2 = signature_manifest(&notation_manifest(&tampered, DIGEST)).unwrap();
        let e = check("s", &m2, &tampered, DIGEST, &a, NOW).unwrap_err();
        assert_eq!(e, "does not verify with its leaf certificate's key");
        // Signs another image.
        let e = check_with(&pki, &signed(&pki, &protected(&pki), OTHER_DIGEST), &a).unwrap_err();
        assert!(e.starts_with("verifies but signs sha256:fedc"), "{e}");
        // The manifest is about another image.
        let e = check("s", &m, &env, OTHER_DIGEST, &a, NOW).unwrap_err();
        assert!(e.starts_with("is about sha256:0123"), "{e}");
        // The envelope is not the layer's.
        let e = check("s", &m, b"{}", DIGEST, &a, NOW).unwrap_err();
        assert_eq!(e, "its envelope does not have the layer's digest");
    }
}

#[test]
fn an_expired_leaf_is_refused_at_strict_and_logged_at_permissive_and_audit() {
    let pki = pki("Test CA", JwsKey::es256(8), (2019, 2021));
    let sig = signed(&pki, &protected(&pki), DIGEST);
    let e = check_with(&pki, &sig, &authority(&pki.ca_pem, &["*"], "strict")).unwrap_err();
    assert!(e.contains("x5c[0] expired at"), "{e}");
    for level in ["permissive", "audit"] {
        let v = check_with(&pki, &sig, &authority(&pki.ca_pem, &["*"], level)).unwrap();
        assert!(
            v.logged[0].contains("x5c[0] expired at"),
            "{level}: {:?}",
            v.logged
        );
    }
    // The envelope's own expiry.
    let fresh = crate::signature::testing::pki("Test CA", JwsKey::es256(9), (2020, 2030));
    let mut header = protected(&fresh);
    header["io.cncf.notary.expiry"] = "2025-12-31T23:59:59Z".into();
    header["crit"] = serde_json::json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
    let sig = signed(&fresh, &header, DIGEST);
    let e = check_with(&fresh, &sig, &authority(&fresh.ca_pem, &["*"], "strict")).unwrap_err();
    assert!(e.contains("the signature expired at 1767225599"), "{e}");
}

#[test]
fn headers_outside_the_specification_are_refused() {
    let pki = pki("Test CA", JwsKey::es256(10), (2020, 2030));
    let a = authority(&pki.ca_pem, &["*"], "permissive");
    let with = |key: &str, value: serde_json::Value| {
        let mut h = protected(&pki);
        h[key] = value;
        check_with(&pki, &signed(&pki, &h, DIGEST), &a).unwrap_err()
    };
    let mut h = protected(&pki);
    h["io.example.policy"] = "x".into();
    let e = with(
        "crit",
        serde_json::json!(["io.cncf.notary.signingScheme", "io.example.policy"]),
    );
    assert!(
        e.contains("\"io.example.policy\", which Portcullis does not understand"),
        "{e}"
    );
    assert!(
        with("crit", serde_json::json!([])).contains("crit must list io.cncf.notary.signingScheme")
    );
    assert!(with(
        "crit",
        serde_json::json!(["io.cncf.notary.signingScheme", 1])
    )
    .contains("no crit list of strings"));
    assert!(with("cty", "application/json".into()).contains("cty is not"));
    assert!(with("alg", "ES512".into()).contains("ES512 (P-521), which is not supported"));
    assert!(with("alg", "PS256".into()).contains("does not fit its leaf key"));
    assert!(with(
        "io.cncf.notary.signingScheme",
        "notary.x509.signingAuthority".into()
    )
    .contains("notary.x509.signingAuthority, which is not supported"));
    assert!(with("io.cncf.notary.signingTime", "yesterday".into()).contains("not an RFC 3339 time"));
    let _ = h;
}

#[test]
fn cose_envelopes_and_other_manifests_are_refused_with_the_reason() {
    let pki = pki("Test CA", JwsKey::es256(11), (2020, 2030));
    let (mut m, env) = signed(&pki, &protected(&pki), DIGEST);
    m.envelope.media_type = COSE_MEDIA_TYPE.into();
    let a = authority(&pki.ca_pem, &["*"], "strict");
    let e = check("s", &m, &env, DIGEST, &a, NOW).unwrap_err();
    assert_eq!(e, "is a COSE envelope, which is not supported (only JWS)");
    let e = signature_manifest(br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0","size":1},"layers":[]}"#).unwrap_err();
    assert!(e.contains("not a Notary signature"), "{e}");
}

#[test]
fn authority_fields_are_checked_with_their_names() {
    let pki = pki("Test CA", JwsKey::es256(12), (2020, 2030));
    let new = |store: &str, ids: &[&str], level: &str| {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        NotationAuthority::new(store.as_bytes(), &ids, level).unwrap_err()
    };
    let (f, e) = new("nope", &["*"], "strict");
    assert_eq!(
        (f, e.as_str()),
        (
            "trustStore.certificates",
            "no -----BEGIN CERTIFICATE----- block"
        )
    );
    let (f, e) = new(&pki.ca_pem, &["*"], "lenient");
    assert_eq!(f, "signatureVerification.level");
    assert!(e.contains("\"lenient\" is not strict, permissive, audit or skip"));
    for (ids, wanted) in [
        (&[][..], "is empty"),
        (
            &["*", IDENTITY],
            "[0]: \"*\" must be the only trusted identity",
        ),
        (&["CN=signer"], "is not \"x509.subject: <DN>\""),
        (&["x509.subject: CN=a, CN=b"], "attribute CN is given twice"),
        (&["x509.subject: E=a@b"], "attribute \"E\" is not one of"),
        (&["x509.subject: CN=a\\,b"], "without escapes"),
    ] {
        let (f, e) = new(&pki.ca_pem, ids, "strict");
        assert_eq!(f, "trustedIdentities");
        assert!(e.contains(wanted), "{ids:?}: {e}");
    }
}

#[test]
fn rfc3339_times_read_with_offsets_and_fractions() {
    use envelope::rfc3339;
    assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339("2026-01-01T00:00:00Z"), Some(NOW));
    assert_eq!(rfc3339("2026-01-01T02:00:00.123+02:00"), Some(NOW));
    assert_eq!(rfc3339("2025-12-31T19:00:00-05:00"), Some(NOW));
    for bad in [
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.Z",
        "２０26-01-01T00:00:00Z",
    ] {
        assert_eq!(rfc3339(bad), None, "{bad}");
    }
}
