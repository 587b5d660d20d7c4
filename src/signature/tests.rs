//! The verifier as the doors build and call it: from a config, with policies from
//! `policyDir`. No registry is needed where the policies need none; registry failures
//! are exercised against a closed loopback port.

use std::collections::BTreeMap;
use std::path::Path;

use super::testing::{Signer, DIGEST};
use super::*;
use crate::config::Config;
use crate::policy::reference::ImageRef;

fn config(dir: &Path, policies: &str, extra: &str) -> Result<Config, String> {
    std::fs::write(dir.join("policies.yaml"), policies).unwrap();
    let text = format!("policyDir: {}\n{extra}", dir.display());
    Config::parse(&text, Path::new("portcullis.yaml")).map_err(|e| e.to_string())
}

fn policy(extra: &str) -> String {
    let pem = Signer::p256(1).public_pem().replace('\n', "\\n");
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ImageVerificationPolicy\nmetadata: {{name: signed-prod}}\nspec:\n  images: [{{glob: \"127.0.0.1:*/prod/**\"}}]\n  namespaceSelector: {{matchLabels: {{tier: prod}}}}\n  authorities: [{{name: release-key, key: {{data: \"{pem}\"}}}}]\n{extra}"
    )
}

fn prod() -> BTreeMap<String, String> {
    BTreeMap::from([("tier".to_string(), "prod".to_string())])
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn policies_load_from_the_config_and_a_broken_one_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = Verifier::new(&config(dir.path(), &policy(""), "").unwrap()).unwrap();
    assert_eq!(verifier.policies().len(), 1);
    let broken = policy("").replace("glob: \"127.0.0.1:*/prod/**\"", "glob: \"(prod)\"");
    let e = Verifier::new(&config(dir.path(), &broken, "").unwrap())
        .err()
        .unwrap();
    assert!(
        e.contains("policies.yaml:5: ImageVerificationPolicy \"signed-prod\": spec.images[0].glob"),
        "{e}"
    );
    // The VAP loader leaves the document to us: not a params object, no VAP error.
    assert!(crate::policy::registry::build(&config(dir.path(), &policy(""), "").unwrap()).is_ok());
    // No policyDir: no policy, every image allowed without a registry.
    let empty = Verifier::new(&Config::default()).unwrap();
    assert!(empty.is_empty());
    let image = ImageRef::parse("registry.invalid/prod/app:1").unwrap();
    let v = empty.verify(&image, None, &prod()).await;
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(
        v.summary,
        "no ImageVerificationPolicy applies to registry.invalid/prod/app:1"
    );
}

#[tokio::test]
async fn images_and_namespaces_out_of_scope_need_no_registry() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = Verifier::new(&config(dir.path(), &policy(""), "").unwrap()).unwrap();
    let port = closed_port();
    let in_scope = ImageRef::parse(&format!("127.0.0.1:{port}/prod/app:1")).unwrap();
    let v = verifier
        .verify(&in_scope, Some(DIGEST), &BTreeMap::new())
        .await;
    assert_eq!(v.decision, Decision::Allowed, "namespace not selected");
    let elsewhere = ImageRef::parse(&format!("127.0.0.1:{port}/dev/app:1")).unwrap();
    let v = verifier.verify(&elsewhere, Some(DIGEST), &prod()).await;
    assert_eq!(v.decision, Decision::Allowed, "image not matched");
    assert!(v
        .summary
        .starts_with("no ImageVerificationPolicy applies to"));
}

#[tokio::test]
async fn an_unreachable_registry_is_judged_by_the_failure_policy() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let insecure = format!(
        "imageVerification: {{insecureRegistries: [\"127.0.0.1:{port}\"], timeoutSeconds: 2}}\n"
    );
    let image = ImageRef::parse(&format!("127.0.0.1:{port}/prod/app:1")).unwrap();

    let verifier = Verifier::new(&config(dir.path(), &policy(""), &insecure).unwrap()).unwrap();
    let v = verifier.verify(&image, Some(DIGEST), &prod()).await;
    let Decision::Refused(reason) = &v.decision else {
        panic!("{v:?}")
    };
    assert!(reason.starts_with(&format!("ImageVerificationPolicy \"signed-prod\": cannot verify 127.0.0.1:{port}/prod/app:1@{DIGEST} (failurePolicy Fail): reading 127.0.0.1:{port}/prod/app:sha256-")), "{reason}");
    assert!(reason.contains("onnection refused"), "{reason}");
    // Without a digest the tag cannot be resolved either.
    let v = verifier.verify(&image, None, &prod()).await;
    let Decision::Refused(reason) = &v.decision else {
        panic!("{v:?}")
    };
    assert!(
        reason.contains("(failurePolicy Fail): resolving"),
        "{reason}"
    );
    assert_eq!(v.digest, None);

    let ignore = Verifier::new(
        &config(dir.path(), &policy("  failurePolicy: Ignore\n"), &insecure).unwrap(),
    )
    .unwrap();
    let v = ignore.verify(&image, Some(DIGEST), &prod()).await;
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(
        v.reports[0].outcome,
        Outcome::Unverifiable { ignored: true }
    );

    // Allow-listed by digest: the registry is not asked at all.
    let allowed = policy(&format!("  allow: [{{digest: \"{DIGEST}\"}}]\n"));
    let verifier = Verifier::new(&config(dir.path(), &allowed, &insecure).unwrap()).unwrap();
    let v = verifier.verify(&image, Some(DIGEST), &prod()).await;
    assert_eq!(v.decision, Decision::Allowed);
    assert_eq!(v.reports[0].outcome, Outcome::AllowListed);
}

#[tokio::test]
async fn the_config_mode_overrides_the_policies() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let extra =
        format!("mode: warn\nimageVerification: {{insecureRegistries: [\"127.0.0.1:{port}\"]}}\n");
    let verifier = Verifier::new(&config(dir.path(), &policy(""), &extra).unwrap()).unwrap();
    let image = ImageRef::parse(&format!("127.0.0.1:{port}/prod/app@{DIGEST}")).unwrap();
    let v = verifier.verify(&image, None, &prod()).await;
    assert!(matches!(v.decision, Decision::Warn(_)), "{v:?}");
    assert_eq!(
        v.digest.as_deref(),
        Some(DIGEST),
        "the reference's own digest is used"
    );
}
