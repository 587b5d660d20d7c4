//! The trust policy format: what loads, and what is refused with file, line, policy and
//! field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::signature::testing::{Signer, DIGEST};

fn indent(pem: &str, spaces: usize) -> String {
    pem.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(spaces)))
        .collect()
}

fn policy(spec: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ImageVerificationPolicy\nmetadata: {{name: signed-prod}}\nspec:\n{spec}"
    )
}

fn key_authority(signer: &Signer) -> String {
    format!(
        "  authorities:\n  - name: release-key\n    key:\n      data: |\n{}",
        indent(&signer.public_pem(), 8)
    )
}

fn no_files(path: &Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no such file {}", path.display()),
    ))
}

fn load_one(text: &str) -> Result<Vec<TrustPolicy>, LoadError> {
    load(
        &[(PathBuf::from("/policies/signed.yaml"), text.to_string())],
        &no_files,
    )
}

fn error_of(text: &str) -> String {
    load_one(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_loads() {
    let signer = Signer::p256(1);
    let text = policy(&format!(
        "  images: [{{glob: \"registry.example/prod/**\"}}]\n  namespaceSelector: {{matchLabels: {{tier: prod}}}}\n  mode: warn\n  failurePolicy: Ignore\n  allow: [{{glob: \"registry.example/base@sha256:*\"}}, {{digest: \"{DIGEST}\"}}]\n{}",
        key_authority(&signer)
    ));
    let policies = load_one(&text).unwrap();
    let [p] = policies.as_slice() else { panic!() };
    assert_eq!(p.name, "signed-prod");
    assert_eq!(p.file, PathBuf::from("/policies/signed.yaml"));
    assert_eq!(p.mode, Mode::Warn);
    assert_eq!(p.failure_policy, FailurePolicy::Ignore);
    assert_eq!(p.images[0].written, "registry.example/prod/**");
    assert_eq!(p.allow[1], Allow::Digest(DIGEST.into()));
    assert_eq!(p.authorities[0].name, "release-key");
    assert_eq!(
        p.authorities[0].key().unwrap().key,
        crate::signature::key::PublicKey::from_pem(signer.public_pem().as_bytes()).unwrap()
    );
    let prod = BTreeMap::from([("tier".to_string(), "prod".to_string())]);
    let names = |repo: &str| {
        crate::signature::glob::names("registry.example", repo, Some("1"), Some(DIGEST))
    };
    assert!(p.applies(&names("prod/app"), &prod));
    assert!(
        !p.applies(&names("prod/app"), &BTreeMap::new()),
        "namespace not selected"
    );
    assert!(!p.applies(&names("dev/app"), &prod));
    assert!(p.allowed_by(&names("base"), Some(DIGEST)).is_some());
    assert!(
        p.allowed_by(&names("prod/app"), Some(DIGEST)).is_some(),
        "by digest"
    );
    assert!(p.allowed_by(&names("prod/app"), None).is_none());
}

#[test]
fn defaults_are_enforce_and_fail_and_every_namespace() {
    let text = policy(&format!(
        "  images: [{{glob: \"**\"}}]\n{}",
        key_authority(&Signer::ed25519(1))
    ));
    let [p] = load_one(&text).unwrap().try_into().unwrap();
    assert_eq!(
        (p.mode, p.failure_policy),
        (Mode::Enforce, FailurePolicy::Fail)
    );
    assert!(p.namespace_selector.is_none());
    assert!(p.applies(&["anything.example/x:1".to_string()], &BTreeMap::new()));
}

#[test]
fn key_files_are_read_relative_to_the_policy_file() {
    let signer = Signer::rsa(0);
    let pem = signer.public_pem();
    let read = |path: &Path| {
        assert_eq!(path, Path::new("/policies/keys/release.pub"));
        Ok(pem.clone().into_bytes())
    };
    let text = policy("  images: [{glob: \"**\"}]\n  authorities:\n  - name: release-key\n    key: {file: keys/release.pub}\n");
    let policies = load(&[(PathBuf::from("/policies/signed.yaml"), text)], &read).unwrap();
    assert_eq!(
        policies[0].authorities[0].key().unwrap().key.kind(),
        crate::signature::key::KeyKind::Rsa { bits: 2048 }
    );
    let text = policy("  images: [{glob: \"**\"}]\n  authorities:\n  - name: release-key\n    key: {file: /etc/missing.pub}\n");
    assert_eq!(
        error_of(&text),
        "/policies/signed.yaml:8: ImageVerificationPolicy \"signed-prod\": spec.authorities[0] (release-key): key.file: /etc/missing.pub: no such file /etc/missing.pub"
    );
}

#[test]
fn unknown_fields_are_refused_with_file_and_line() {
    let text = policy("  images: [{glob: \"**\"}]\n  failurPolicy: Ignore\n");
    let e = error_of(&text);
    assert!(
        e.starts_with("/policies/signed.yaml: ImageVerificationPolicy: error: line 6 column 3: unknown field `failurPolicy`, expected one of images, namespaceSelector, mode, failurePolicy, allow, authorities"),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_policy_the_field_and_the_fix() {
    let key = key_authority(&Signer::p256(1));
    for (spec, wanted) in [
        ("  images: []\n".to_string() + &key,
         "signed.yaml: ImageVerificationPolicy \"signed-prod\": spec.images is empty, so the policy would match no image; to require signatures on every image, use [{glob: \"**\"}]"),
        ("  images: [{glob: \"reg.example/(a|b)\"}]\n".to_string() + &key,
         ":5: ImageVerificationPolicy \"signed-prod\": spec.images[0].glob: \"reg.example/(a|b)\" has '('"),
        ("  images: [{glob: \"**\"}]\n  allow: [{digest: \"sha256:abc\"}]\n".to_string() + &key,
         ":6: ImageVerificationPolicy \"signed-prod\": spec.allow[0].digest: \"sha256:abc\" is not sha256:<64 lowercase hex digits>"),
        ("  images: [{glob: \"**\"}]\n  allow: [{glob: \"**\", digest: \"sha256:abc\"}]\n".to_string() + &key,
         ": ImageVerificationPolicy \"signed-prod\": spec.allow[0]: set exactly one of glob and digest"),
        ("  images: [{glob: \"**\"}]\n  namespaceSelector: {matchExpressions: [{key: tier, operator: In}]}\n".to_string() + &key,
         "spec.namespaceSelector.matchExpressions[0].values: must be specified when `operator` is 'In' or 'NotIn'"),
        ("  images: [{glob: \"**\"}]\n".to_string(),
         "spec.authorities is empty and nothing is allowed, so every matched image would be refused; name at least one authority (or allow digests)"),
        ("  images: [{glob: \"**\"}]\n  authorities:\n  - name: release-key\n    key: {data: \"not a key\"}\n".to_string(),
         ":8: ImageVerificationPolicy \"signed-prod\": spec.authorities[0] (release-key): key.data: not a PEM block"),
        ("  images: [{glob: \"**\"}]\n  authorities:\n  - name: release-key\n    key: {data: x, file: y}\n".to_string(),
         "spec.authorities[0] (release-key): key: set exactly one of data and file"),
        ("  images: [{glob: \"**\"}]\n  authorities:\n  - name: a\n".to_string(),
         ":7: ImageVerificationPolicy \"signed-prod\": spec.authorities[0] (a): needs a key ({data: PEM} or {file: PATH})"),
        (key.clone() + "  - name: release-key\n    key: {data: x}\n  images: [{glob: \"**\"}]\n",
         "spec.authorities[1].name: \"release-key\" is empty or not unique"),
        ("  images: [{glob: \"**\"}]\n".to_string() + &key + "    rekor: {key: {data: nope}}\n",
         "spec.authorities[0] (release-key): rekor.key.data: not a PEM block"),
    ] {
        let e = error_of(&policy(&spec));
        assert!(e.contains(wanted), "{spec}\nwanted {wanted}\ngot    {e}");
        assert!(e.starts_with("/policies/signed.yaml"), "{e}");
    }
}

#[test]
fn notation_authorities_load_their_trust_store_identities_and_level() {
    use crate::signature::notation::{Identities, Level};
    use crate::signature::testing::{pki, JwsKey};
    let ca = pki("Test CA", JwsKey::es256(2), (2020, 2030));
    let text = policy("  images: [{glob: \"**\"}]\n  authorities:\n  - name: notary\n    notation:\n      trustStore: {certificates: {file: certs/ca.pem}}\n      trustedIdentities: [\"x509.subject: C=US, O=Example, CN=signer\"]\n      signatureVerification: {level: permissive}\n  - name: any\n    notation:\n      trustStore: {certificates: {file: certs/ca.pem}}\n      trustedIdentities: [\"*\"]\n");
    let pem = ca.ca_pem.clone();
    let read = move |path: &Path| -> std::io::Result<Vec<u8>> {
        assert_eq!(path, Path::new("/policies/certs/ca.pem"));
        Ok(pem.clone().into_bytes())
    };
    let policies = load(&[(PathBuf::from("/policies/signed.yaml"), text)], &read).unwrap();
    let a = policies[0].authorities[0].notation().unwrap();
    assert_eq!(a.trust_store, vec![ca.ca_der.clone()]);
    assert_eq!(a.level, Level::Permissive);
    let dn = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        a.identities,
        Identities::Subjects(vec![dn(&[("C", "US"), ("CN", "signer"), ("O", "Example")])])
    );
    let any = policies[0].authorities[1].notation().unwrap();
    assert_eq!(
        (any.identities.clone(), any.level),
        (Identities::Any, Level::Strict)
    );
    assert!(policies[0].authorities[0].key().is_none());
}

#[test]
fn notation_authorities_are_parsed_strictly_naming_the_file_and_field() {
    let head = "  images: [{glob: \"**\"}]\n  authorities:\n  - name: notary\n";
    for (spec, wanted) in [
        ("    notation: {trustStore: ca:prod}\n", "/policies/signed.yaml: ImageVerificationPolicy: error: line 8"),
        ("    notation: {trustStore: {certificates: {data: nope}}, trustedIdentities: [\"*\"]}\n",
         "/policies/signed.yaml:8: ImageVerificationPolicy \"signed-prod\": spec.authorities[0] (notary): notation.trustStore.certificates: no -----BEGIN CERTIFICATE----- block"),
        ("    notation: {trustStore: {certificates: {file: ca.pem}}, trustedIdentities: [\"*\"]}\n",
         "spec.authorities[0] (notary): notation.trustStore.certificates.file: /policies/ca.pem: no such file"),
        ("    notation: {trustStore: {certificates: {file: ca.pem}}, trustedIdentitys: [\"*\"]}\n",
         "unknown field `trustedIdentitys`"),
        ("    key: {data: x}\n    notation: {trustStore: {certificates: {data: x}}, trustedIdentities: [\"*\"]}\n",
         "spec.authorities[0] (notary): set exactly one of key (with its optional rekor) and notation"),
    ] {
        let e = error_of(&policy(&format!("{head}{spec}")));
        assert!(e.contains(wanted), "{spec}\nwanted {wanted}\ngot    {e}");
    }
    let ca = crate::signature::testing::pki(
        "Test CA",
        crate::signature::testing::JwsKey::es256(2),
        (2020, 2030),
    );
    let spec = format!(
        "{head}    notation:\n      trustStore:\n        certificates:\n          data: |\n{}      trustedIdentities: [\"x509.subject: CN=a, CN=b\"]\n",
        indent(&ca.ca_pem, 12)
    );
    let e = error_of(&policy(&spec));
    assert!(e.contains("spec.authorities[0] (notary): notation.trustedIdentities: [0]: attribute CN is given twice"), "{e}");
}

#[test]
fn misspelt_kinds_and_versions_are_errors_not_params() {
    let ok = policy(&format!(
        "  images: [{{glob: \"**\"}}]\n{}",
        key_authority(&Signer::p256(1))
    ));
    for (text, wanted) in [
        (ok.replace("kind: ImageVerificationPolicy", "kind: ImageVerificationPolicie"),
         "kind \"ImageVerificationPolicie\" of apiVersion \"portcullis.dev/v1alpha1\": portcullis.dev has one kind, ImageVerificationPolicy"),
        (ok.replace("portcullis.dev/v1alpha1", "portcullis.dev/v1"),
         "ImageVerificationPolicy: apiVersion \"portcullis.dev/v1\" is not supported; use portcullis.dev/v1alpha1"),
        (ok.replace("portcullis.dev/v1alpha1", "example.com/v1"),
         "ImageVerificationPolicy: apiVersion \"example.com/v1\" is not supported; use portcullis.dev/v1alpha1"),
        (ok.replace("portcullis.dev/v1alpha1", "policy.sigstore.dev/v1beta1").replace("kind: ImageVerificationPolicy", "kind: ClusterImagePolicy"),
         "\"ClusterImagePolicy\" of apiVersion \"policy.sigstore.dev/v1beta1\" is sigstore policy-controller's, which Portcullis does not read; write it as an ImageVerificationPolicy of portcullis.dev/v1alpha1 (same images globs and key authorities; docs/image-verification.md)"),
    ] {
        assert_eq!(error_of(&text), format!("/policies/signed.yaml: {wanted}"));
    }
    // Other documents are not ours: a VAP, a params object, an empty document.
    let others = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: x}\n---\napiVersion: example.com/v1\nkind: Params\n---\n";
    assert_eq!(load_one(others).unwrap(), vec![]);
}

#[test]
fn several_documents_and_files_with_one_name_each() {
    let one = policy(&format!(
        "  images: [{{glob: \"**\"}}]\n{}",
        key_authority(&Signer::p256(1))
    ));
    let two = one.replace("signed-prod", "signed-dev");
    let docs = vec![
        (PathBuf::from("a.yaml"), format!("{one}---\n{two}")),
        (PathBuf::from("b.yaml"), one.clone()),
    ];
    let e = load(&docs, &no_files).unwrap_err().to_string();
    assert_eq!(
        e,
        "b.yaml: ImageVerificationPolicy \"signed-prod\" is defined twice"
    );
    let loaded = load(&docs[..1], &no_files).unwrap();
    assert_eq!(
        loaded.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["signed-prod", "signed-dev"]
    );
}

#[test]
fn every_problem_is_listed() {
    let text = policy("  images: [{glob: \"a b\"}, {glob: \"\"}]\n");
    let e = load_one(&text).unwrap_err();
    assert_eq!(e.issues.len(), 3, "{e}");
}
