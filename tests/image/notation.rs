//! Notation signatures against a real registry: Debian's docker-registry (distribution
//! 2.8, no referrers API, so the referrers tag schema is what is read), images pushed with
//! skopeo and signed as `notation sign` signs them (`tests/common/notation.rs`: rcgen
//! certificates and a p256 JWS, code independent of the verifier), and an
//! `ImageVerificationPolicy` with a `notation` authority trusting one CA. containerd's
//! verifier (`portcullis verify-image`, run as containerd 2.x runs it) admits the image
//! signed under the trusted CA and refuses the unsigned one and the one signed under
//! another CA, with the reason.

use std::path::Path;
use std::time::Duration;

use crate::common::notation::Signer;
use crate::common::registry::{Registry, Transport};
use crate::common::verifier::{self, descriptor, install};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The policy directory and the verifier's config for a registry at `host`.
fn config(dir: &Path, host: &str, trusted: &Signer) -> String {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("ca.pem"), &trusted.ca_pem).unwrap();
    std::fs::write(
        policies.join("notary.yaml"),
        format!(
            "apiVersion: portcullis.dev/v1alpha1
kind: ImageVerificationPolicy
metadata: {{name: notarized}}
spec:
  images: [{{glob: '{host}/apps/**'}}]
  authorities:
  - name: notary
    notation:
      trustStore: {{certificates: {{file: ca.pem}}}}
      trustedIdentities: ['x509.subject: C=US, O=Example, CN=signer']
      signatureVerification: {{level: strict}}
"
        ),
    )
    .unwrap();
    format!(
        "policyDir: '{}'\nimageVerification: {{insecureRegistries: ['{host}'], timeoutSeconds: 2}}\n",
        policies.display()
    )
}

#[test]
fn containerds_verifier_admits_only_images_with_a_notation_signature_under_the_trusted_ca() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let trusted = Signer::new("Trusted CA", 1);
    let other = Signer::new("Other CA", 2);
    let signed = registry.push_busybox_variant("apps/web:1", "notarized");
    let unsigned = registry.push_busybox_variant("apps/web:2", "unsigned");
    let foreign = registry.push_busybox_variant("apps/web:3", "foreign");
    let size = |digest: &str| registry.manifest("apps/web", digest).0.len();
    trusted.sign(&registry, "apps/web", &signed, size(&signed));
    other.sign(&registry, "apps/web", &foreign, size(&foreign));
    let bin = install(dir.path(), &config(dir.path(), &registry.host(), &trusted));
    let pull = |tag: &str, digest: &str| {
        let name = registry.reference(&format!("apps/web:{tag}"));
        verifier::run(
            &bin,
            &name,
            &descriptor(digest, size(digest) as u64),
            TIMEOUT,
        )
    };

    let ok = pull("1", &signed);
    assert!(ok.ok(), "{ok:?}\n--- registry log ---\n{}", registry.log());
    let refused = pull("2", &unsigned);
    assert_eq!(refused.exit_code, Some(1), "{refused:?}");
    for part in ["notarized", unsigned.as_str(), "has no Notation signature"] {
        assert!(refused.reason.contains(part), "no {part:?} in {refused:?}");
    }
    let wrong_ca = pull("3", &foreign);
    assert_eq!(wrong_ca.exit_code, Some(1), "{wrong_ca:?}");
    for part in [
        "no signature by authority \"notary\"",
        "has 1 Notation signature, none valid",
        "does not lead to a certificate of the trust store",
    ] {
        assert!(
            wrong_ca.reason.contains(part),
            "no {part:?} in {wrong_ca:?}"
        );
    }
    // The referrers API was asked first and answered 404; the tag schema was read.
    let log = registry.log();
    assert!(log.contains("/v2/apps/web/referrers/"), "{log}");
    assert!(
        log.contains(&format!(
            "/v2/apps/web/manifests/{}",
            signed.replace(':', "-")
        )),
        "{log}"
    );
}
