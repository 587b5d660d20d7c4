//! Decisions from what the registry said: modes, failurePolicy, allow lists, several
//! policies and authorities, and the words of each refusal.

use std::path::PathBuf;

use super::*;
use crate::signature::cosign::{Fetched, Layer, Signatures};
use crate::signature::glob::names;
use crate::signature::testing::{self, Signer, DIGEST, OTHER_DIGEST};
use crate::signature::trust::{load, TrustPolicy};

const IMAGE: &str = "registry.example/prod/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TAG: &str = "registry.example/prod/app:sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig";

fn policy_with(name: &str, extra: &str, keys: &[(&str, &Signer)]) -> TrustPolicy {
    let mut text = format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ImageVerificationPolicy\nmetadata: {{name: {name}}}\nspec:\n  images: [{{glob: \"registry.example/prod/**\"}}]\n{extra}"
    );
    if !keys.is_empty() {
        text.push_str("  authorities:\n");
    }
    for (authority, signer) in keys {
        let pem = signer.public_pem().replace('\n', "\\n");
        text.push_str(&format!(
            "  - name: {authority}\n    key: {{data: \"{pem}\"}}\n"
        ));
    }
    let read = |_: &std::path::Path| -> std::io::Result<Vec<u8>> { unreachable!() };
    load(&[(PathBuf::from("p.yaml"), text)], &read)
        .unwrap()
        .remove(0)
}

fn signed_by(signer: &Signer, digest: &str) -> Fetched {
    let payload = testing::payload(digest);
    let signature = signer.sign(&payload);
    Fetched {
        layer: testing::layer(&payload, &signature, None),
        content: Ok(payload),
    }
}

fn sigs(layers: Vec<Fetched>) -> Signatures {
    Signatures {
        tag: TAG.into(),
        layers: Some(layers),
    }
}

fn image_names() -> Vec<String> {
    names("registry.example", "prod/app", Some("1.0"), Some(DIGEST))
}

fn judge_with(policies: &[&TrustPolicy], signatures: Option<Result<&Signatures, &str>>) -> Verdict {
    let names = image_names();
    let subject = Subject {
        image: IMAGE,
        names: &names,
        digest: Ok(DIGEST),
        signatures,
        notation: None,
        now: 0,
    };
    judge(policies, &subject, None)
}

fn refusal(v: &Verdict) -> &str {
    match &v.decision {
        Decision::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_image_no_policy_applies_to_is_allowed_and_says_so() {
    let v = judge_with(&[], None);
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(
        v.summary,
        format!("no ImageVerificationPolicy applies to {IMAGE}")
    );
    assert!(v.reports.is_empty());
}

#[test]
fn a_valid_signature_allows_and_reports_who_signed() {
    let release = Signer::p256(1);
    let p = policy_with("signed-prod", "", &[("release-key", &release)]);
    let s = sigs(vec![
        signed_by(&Signer::p256(2), DIGEST),
        signed_by(&release, DIGEST),
    ]);
    let v = judge_with(&[&p], Some(Ok(&s)));
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.digest.as_deref(), Some(DIGEST));
    let [r] = v.reports.as_slice() else { panic!() };
    assert_eq!(r.outcome, Outcome::Verified);
    assert_eq!(r.authority.as_deref(), Some("release-key"));
    assert_eq!(r.key_id, Some(p.authorities[0].key().unwrap().key.id()));
    assert_eq!(
        r.signature,
        Some(s.layers.as_ref().unwrap()[1].layer.digest.clone())
    );
    assert_eq!(
        v.summary,
        format!(
            "verified (enforce): ImageVerificationPolicy \"signed-prod\": {IMAGE} is signed by authority \"release-key\" (key {}, signature {})",
            p.authorities[0].key().unwrap().key.id(),
            s.layers.as_ref().unwrap()[1].layer.digest
        )
    );
}

#[test]
fn refusals_name_the_policy_the_image_the_authority_and_what_was_missing() {
    let p = policy_with("signed-prod", "", &[("release-key", &Signer::p256(1))]);
    let s = sigs(vec![
        signed_by(&Signer::p256(2), DIGEST),
        signed_by(&Signer::rsa(0), DIGEST),
    ]);
    let v = judge_with(&[&p], Some(Ok(&s)));
    assert_eq!(
        refusal(&v),
        format!("ImageVerificationPolicy \"signed-prod\": {IMAGE} has no signature by authority \"release-key\": {TAG} has 2 signatures, none verifies with the key")
    );
    assert_eq!(v.reports[0].outcome, Outcome::NotVerified);

    let unsigned = Signatures {
        tag: TAG.into(),
        layers: None,
    };
    let v = judge_with(&[&p], Some(Ok(&unsigned)));
    assert_eq!(
        refusal(&v),
        format!(
            "ImageVerificationPolicy \"signed-prod\": {IMAGE} is not signed: {TAG} does not exist"
        )
    );

    let other_digest = signed_by(&Signer::p256(1), OTHER_DIGEST);
    let layer = other_digest.layer.digest.clone();
    let s = sigs(vec![other_digest]);
    let v = judge_with(&[&p], Some(Ok(&s)));
    assert_eq!(
        refusal(&v),
        format!("ImageVerificationPolicy \"signed-prod\": {IMAGE} has no signature by authority \"release-key\": {TAG} has 1 signature, none valid: {layer} verifies with the key but signs \"{OTHER_DIGEST}\", not {DIGEST}")
    );
}

#[test]
fn authorities_are_alternatives_and_policies_all_apply() {
    let (a, b) = (Signer::p256(1), Signer::ed25519(1));
    let either = policy_with("either", "", &[("a", &a), ("b", &b)]);
    let s = sigs(vec![signed_by(&b, DIGEST)]);
    let v = judge_with(&[&either], Some(Ok(&s)));
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.reports[0].authority.as_deref(), Some("b"));

    let s = sigs(vec![signed_by(&Signer::rsa(1), DIGEST)]);
    let v = judge_with(&[&either], Some(Ok(&s)));
    assert_eq!(
        refusal(&v),
        format!("ImageVerificationPolicy \"either\": {IMAGE} has no signature by any of its authorities in {TAG}: \"a\": has 1 signature, it does not verify with the key; \"b\": has 1 signature, it does not verify with the key")
    );

    let only_a = policy_with("only-a", "", &[("a", &a)]);
    let s = sigs(vec![signed_by(&b, DIGEST)]);
    let v = judge_with(&[&either, &only_a], Some(Ok(&s)));
    assert!(
        refusal(&v).starts_with("ImageVerificationPolicy \"only-a\""),
        "{v:?}"
    );
    assert_eq!(v.reports.len(), 2);
    assert_eq!(v.reports[0].outcome, Outcome::Verified);
}

#[test]
fn modes_warn_and_audit_let_the_image_through() {
    let key = Signer::p256(1);
    let unsigned = Signatures {
        tag: TAG.into(),
        layers: None,
    };
    let warn = policy_with("w", "  mode: warn\n", &[("k", &key)]);
    let v = judge_with(&[&warn], Some(Ok(&unsigned)));
    assert!(
        matches!(&v.decision, Decision::Warn(w) if w.contains("is not signed")),
        "{v:?}"
    );
    let audit = policy_with("a", "  mode: audit\n", &[("k", &key)]);
    let v = judge_with(&[&audit], Some(Ok(&unsigned)));
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.reports[0].outcome, Outcome::NotVerified);
    assert_eq!(v.reports[0].mode, Mode::Audit);
    // The config's global mode overrides the policy's.
    let enforce = policy_with("e", "", &[("k", &key)]);
    let names = image_names();
    let subject = Subject {
        image: IMAGE,
        names: &names,
        digest: Ok(DIGEST),
        signatures: Some(Ok(&unsigned)),
        notation: None,
        now: 0,
    };
    let v = judge(&[&enforce], &subject, Some(Mode::Audit));
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.reports[0].mode, Mode::Audit);
}

#[test]
fn an_unreachable_registry_follows_the_failure_policy() {
    let key = Signer::p256(1);
    let fail = policy_with("f", "", &[("k", &key)]);
    let ignore = policy_with("i", "  failurePolicy: Ignore\n", &[("k", &key)]);
    let down = "reading x: error sending request: connection refused";
    let v = judge_with(&[&fail], Some(Err(down)));
    assert_eq!(
        refusal(&v),
        format!(
            "ImageVerificationPolicy \"f\": cannot verify {IMAGE} (failurePolicy Fail): {down}"
        )
    );
    assert_eq!(
        v.reports[0].outcome,
        Outcome::Unverifiable { ignored: false }
    );
    let v = judge_with(&[&ignore], Some(Err(down)));
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(
        v.reports[0].outcome,
        Outcome::Unverifiable { ignored: true }
    );
    assert!(v.reports[0].detail.contains("(failurePolicy Ignore)"));

    // A tag that could not be resolved is the same case.
    let names = names("registry.example", "prod/app", Some("1.0"), None);
    let subject = Subject {
        image: "registry.example/prod/app:1.0",
        names: &names,
        digest: Err("resolving: timed out"),
        signatures: None,
        notation: None,
        now: 0,
    };
    let v = judge(&[&fail], &subject, None);
    assert!(
        refusal(&v).ends_with("(failurePolicy Fail): resolving: timed out"),
        "{v:?}"
    );
    assert_eq!(v.digest, None);

    // An unreadable signature when no other verifies; a readable valid one still counts.
    let broken = Fetched {
        layer: signed_by(&key, DIGEST).layer,
        content: Err("layer x: no answer within 10s".into()),
    };
    let s = sigs(vec![broken.clone(), signed_by(&Signer::p256(2), DIGEST)]);
    let v = judge_with(&[&fail], Some(Ok(&s)));
    assert!(
        refusal(&v).contains("(failurePolicy Fail): 1 of the 2 signatures of"),
        "{v:?}"
    );
    let s = sigs(vec![broken, signed_by(&key, DIGEST)]);
    assert_eq!(
        judge_with(&[&fail], Some(Ok(&s))).decision,
        Decision::Allowed
    );
}

#[test]
fn allow_listed_images_need_no_signature() {
    let key = Signer::p256(1);
    let by_glob = policy_with(
        "g",
        "  allow: [{glob: \"registry.example/prod/app:1.*\"}]\n",
        &[("k", &key)],
    );
    let v = judge_with(&[&by_glob], None);
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.reports[0].outcome, Outcome::AllowListed);
    assert!(v.reports[0]
        .detail
        .ends_with("is allowed by glob \"registry.example/prod/app:1.*\""));
    let pinned = policy_with("d", &format!("  allow: [{{digest: \"{DIGEST}\"}}]\n"), &[]);
    let v = judge_with(&[&pinned], None);
    assert_eq!(v.reports[0].outcome, Outcome::AllowListed);
    let other = Layer {
        digest: OTHER_DIGEST.into(),
        ..signed_by(&key, DIGEST).layer
    };
    let s = sigs(vec![Fetched {
        layer: other,
        content: Ok(vec![]),
    }]);
    let names = names(
        "registry.example",
        "prod/app",
        Some("1.0"),
        Some(OTHER_DIGEST),
    );
    let subject = Subject {
        image: "x",
        names: &names,
        digest: Ok(OTHER_DIGEST),
        signatures: Some(Ok(&s)),
        notation: None,
        now: 0,
    };
    let v = judge(&[&pinned], &subject, None);
    assert_eq!(refusal(&v), "ImageVerificationPolicy \"d\": x is not in the policy's allow list, and the policy names no authority");
}

// ------------------------------------------------------------------ Notation authorities

mod notation_authorities {
    use super::*;
    use crate::signature::notation::{signature_manifest, NotationFetched, NotationSignatures};
    use crate::signature::testing::{envelope, notation_manifest, pki, protected, JwsKey, Pki};

    const SOURCE: &str = "registry.example/prod/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /// 2026-01-01T00:00:00Z.
    const NOW: i64 = 1_767_225_600;

    fn notation_policy(extra: &str, pki: &Pki, level: &str, key: Option<&Signer>) -> TrustPolicy {
        let pem: String = pki
            .ca_pem
            .lines()
            .map(|l| format!("            {l}\n"))
            .collect();
        let mut text = format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: ImageVerificationPolicy\nmetadata: {{name: n}}\nspec:\n  images: [{{glob: \"registry.example/prod/**\"}}]\n{extra}  authorities:\n  - name: notary\n    notation:\n      trustStore:\n        certificates:\n          data: |\n{pem}      trustedIdentities: [\"x509.subject: O=Example, CN=signer\"]\n      signatureVerification: {{level: {level}}}\n"
        );
        if let Some(signer) = key {
            let pem = signer.public_pem().replace('\n', "\\n");
            text.push_str(&format!(
                "  - name: release-key\n    key: {{data: \"{pem}\"}}\n"
            ));
        }
        let read = |_: &std::path::Path| -> std::io::Result<Vec<u8>> { unreachable!() };
        load(&[(PathBuf::from("p.yaml"), text)], &read)
            .unwrap()
            .remove(0)
    }

    fn notation_signed(pki: &Pki, digest: &str) -> NotationFetched {
        let env = envelope(pki, &protected(pki), digest, &[&pki.leaf_der, &pki.ca_der]);
        let manifest = notation_manifest(&env, DIGEST);
        NotationFetched {
            digest: testing::sha256_digest(&manifest),
            content: Ok((signature_manifest(&manifest).unwrap(), env)),
        }
    }

    fn judge_notation(
        policy: &TrustPolicy,
        cosign: Option<Result<&Signatures, &str>>,
        notation: Option<Result<&NotationSignatures, &str>>,
    ) -> Verdict {
        let names = image_names();
        let subject = Subject {
            image: IMAGE,
            names: &names,
            digest: Ok(DIGEST),
            signatures: cosign,
            notation,
            now: NOW,
        };
        judge(&[policy], &subject, None)
    }

    fn found(signatures: Vec<NotationFetched>) -> NotationSignatures {
        NotationSignatures {
            source: SOURCE.into(),
            signatures,
        }
    }

    #[test]
    fn a_valid_notation_signature_satisfies_the_policy_and_names_the_signer() {
        let ca = pki("Test CA", JwsKey::es256(21), (2020, 2030));
        let p = notation_policy("", &ca, "strict", None);
        let sig = notation_signed(&ca, DIGEST);
        let sig_digest = sig.digest.clone();
        let v = judge_notation(&p, None, Some(Ok(&found(vec![sig]))));
        assert_eq!(v.decision, Decision::Allowed);
        let r = &v.reports[0];
        assert_eq!(r.outcome, Outcome::Verified);
        assert_eq!(r.authority.as_deref(), Some("notary"));
        assert_eq!(r.signature.as_deref(), Some(sig_digest.as_str()));
        assert_eq!(r.signer.as_deref(), Some("C=US, O=Example, CN=signer"));
        assert_eq!(r.key_id, None);
        assert!(r.detail.contains("is signed by authority \"notary\" (Notation, signer \"C=US, O=Example, CN=signer\""), "{}", r.detail);
    }

    #[test]
    fn unsigned_foreign_and_unreadable_notation_signatures_are_refused_with_reasons() {
        let ca = pki("Test CA", JwsKey::es256(22), (2020, 2030));
        let other = pki("Other CA", JwsKey::es256(23), (2020, 2030));
        let p = notation_policy("", &ca, "strict", None);
        let v = judge_notation(&p, None, Some(Ok(&found(vec![]))));
        assert_eq!(refusal(&v), format!("ImageVerificationPolicy \"n\": {IMAGE} has no signature by authority \"notary\": {SOURCE} has no Notation signature"));
        let foreign = notation_signed(&other, DIGEST);
        let v = judge_notation(&p, None, Some(Ok(&found(vec![foreign]))));
        assert!(
            refusal(&v).contains(&format!(
                "{SOURCE} has 1 Notation signature, none valid: sha256:"
            )),
            "{}",
            refusal(&v)
        );
        assert!(refusal(&v).contains("verifies but its certificate chain (issuer CN=Other CA) does not lead to a certificate of the trust store"), "{}", refusal(&v));
        let v = judge_notation(
            &p,
            None,
            Some(Err("listing the referrers: connection refused")),
        );
        assert!(
            refusal(&v).contains("cannot verify")
                && refusal(&v)
                    .contains("(failurePolicy Fail): listing the referrers: connection refused"),
            "{}",
            refusal(&v)
        );
        let unreadable = NotationFetched {
            digest: "sha256:aa".into(),
            content: Err("reading: timed out".into()),
        };
        let ignore = notation_policy("  failurePolicy: Ignore\n", &ca, "strict", None);
        let v = judge_notation(&ignore, None, Some(Ok(&found(vec![unreadable]))));
        assert_eq!(v.decision, Decision::Allowed);
        assert_eq!(
            v.reports[0].outcome,
            Outcome::Unverifiable { ignored: true }
        );
    }

    #[test]
    fn a_cosign_key_or_a_notation_signature_satisfies_a_mixed_policy() {
        let ca = pki("Test CA", JwsKey::ps256(), (2020, 2030));
        let signer = Signer::p256(24);
        let p = notation_policy("", &ca, "strict", Some(&signer));
        let cosign = sigs(vec![signed_by(&signer, DIGEST)]);
        let v = judge_notation(&p, Some(Ok(&cosign)), Some(Ok(&found(vec![]))));
        assert_eq!(v.reports[0].authority.as_deref(), Some("release-key"));
        let unsigned = Signatures {
            tag: TAG.into(),
            layers: None,
        };
        let v = judge_notation(
            &p,
            Some(Ok(&unsigned)),
            Some(Ok(&found(vec![notation_signed(&ca, DIGEST)]))),
        );
        assert_eq!(v.reports[0].authority.as_deref(), Some("notary"));
        let v = judge_notation(&p, Some(Ok(&unsigned)), Some(Ok(&found(vec![]))));
        assert_eq!(refusal(&v), format!("ImageVerificationPolicy \"n\": {IMAGE} has no signature by any of its authorities: \"notary\": {SOURCE} has no Notation signature; \"release-key\": {TAG} does not exist"));
    }

    #[test]
    fn levels_skip_and_audit_are_reported_as_such() {
        let ca = pki("Test CA", JwsKey::es256(25), (2019, 2021));
        let skip = notation_policy("", &ca, "skip", None);
        let v = judge_notation(&skip, None, Some(Ok(&found(vec![]))));
        assert_eq!(v.decision, Decision::Allowed);
        assert!(v.reports[0]
            .detail
            .contains("without verification (notation signatureVerification level skip)"));
        let audit = notation_policy("", &ca, "audit", None);
        let v = judge_notation(
            &audit,
            None,
            Some(Ok(&found(vec![notation_signed(&ca, DIGEST)]))),
        );
        assert_eq!(v.decision, Decision::Allowed);
        assert!(
            v.reports[0]
                .detail
                .contains("logged, not enforced at this level: x5c[0] expired at"),
            "{}",
            v.reports[0].detail
        );
        let strict = notation_policy("", &ca, "strict", None);
        let v = judge_notation(
            &strict,
            None,
            Some(Ok(&found(vec![notation_signed(&ca, DIGEST)]))),
        );
        assert!(
            refusal(&v).contains("verifies but x5c[0] expired at"),
            "{}",
            refusal(&v)
        );
    }
}
