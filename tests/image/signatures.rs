//! Image signatures against a real registry: images pushed with skopeo, signed as
//! `cosign sign --key` signs them (`tests/common/cosign.rs`, code independent of the
//! verifier), and an `ImageVerificationPolicy` requiring one key. containerd's verifier
//! (`portcullis verify-image`, run as containerd 2.x runs it) admits the signed image and
//! refuses the unsigned one and the one signed by another key, with the reason; the
//! registry going down is judged by the policy's `failurePolicy`.

use std::time::Duration;

use crate::common::cosign::{amend_policy, policy_config as config, Key, PROD_ONLY};
use crate::common::registry::{Registry, Transport};
use crate::common::verifier::{self, descriptor, install};
use crate::common::{ok, unique, World};

const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn containerds_verifier_admits_only_images_signed_by_the_trusted_key() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let trusted = Key::new(1);
    let other = Key::new(2);
    let signed = registry.push_busybox_variant("apps/web:1", "signed");
    let unsigned = registry.push_busybox_variant("apps/web:2", "unsigned");
    let foreign = registry.push_busybox_variant("apps/web:3", "foreign");
    trusted.sign(&registry, "apps/web", &signed);
    other.sign(&registry, "apps/web", &foreign);
    let bin = install(
        dir.path(),
        &config(dir.path(), &registry.host(), &trusted, "Fail"),
    );
    let pull = |tag: &str, digest: &str| {
        let name = registry.reference(&format!("apps/web:{tag}"));
        verifier::run(&bin, &name, &descriptor(digest, 500), TIMEOUT)
    };

    let ok = pull("1", &signed);
    assert!(ok.ok(), "{ok:?}");
    let refused = pull("2", &unsigned);
    assert_eq!(refused.exit_code, Some(1), "{refused:?}");
    for part in ["signed-apps", unsigned.as_str(), "is not signed"] {
        assert!(refused.reason.contains(part), "no {part:?} in {refused:?}");
    }
    let wrong_key = pull("3", &foreign);
    assert_eq!(wrong_key.exit_code, Some(1), "{wrong_key:?}");
    for part in [
        "no signature by authority \"release-key\"",
        "does not verify with the key",
    ] {
        assert!(
            wrong_key.reason.contains(part),
            "no {part:?} in {wrong_key:?}"
        );
    }
    // An image no policy is about is not asked about.
    let elsewhere = verifier::run(
        &bin,
        &registry.reference("other/web:2"),
        &descriptor(&unsigned, 500),
        TIMEOUT,
    );
    assert!(elsewhere.ok(), "{elsewhere:?}");
}

#[test]
fn an_unreachable_registry_is_judged_by_the_failure_policy() {
    let registry = Registry::start(Transport::Http);
    let host = registry.host();
    let digest = registry.push_busybox_variant("apps/web:1", "gone");
    drop(registry);
    let name = format!("{host}/apps/web:1");
    for (failure_policy, admitted) in [("Fail", false), ("Ignore", true)] {
        let dir = tempfile::tempdir().unwrap();
        let bin = install(
            dir.path(),
            &config(dir.path(), &host, &Key::new(1), failure_policy),
        );
        let judged = verifier::run(&bin, &name, &descriptor(&digest, 500), TIMEOUT);
        assert_eq!(judged.ok(), admitted, "{failure_policy}: {judged:?}");
        if !admitted {
            assert!(judged.reason.contains("signed-apps"), "{judged:?}");
        }
    }
}

/// `ctr images pull` through the proxy records the image with `Images/Create`: in the
/// namespace whose labels a policy selects, the unsigned image is refused there with the
/// reason and never listed, the signed one is pulled and runs; in a namespace the policy
/// does not select, the unsigned image is pulled (one tenant's rule is not another's).
#[test]
fn ctr_pull_through_the_proxy_records_only_signed_images_where_signatures_are_required() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "signed-and-run");
    registry.push_busybox_variant("apps/web:2", "unsigned");
    key.sign(&registry, "apps/web", &signed);
    let mut config = config(dir.path(), &registry.host(), &key, "Fail");
    amend_policy(dir.path(), PROD_ONLY);
    config.push_str("namespaces:\n  prod: {labels: {tier: prod}}\n");
    let w = World::new(&config);
    let pull = |ns: &str, tag: &str| {
        w.ctr(&[
            "-n",
            ns,
            "images",
            "pull",
            "--plain-http",
            &registry.reference(&format!("apps/web:{tag}")),
        ])
    };

    let refused = pull("prod", "2");
    assert!(!refused.status.success(), "{}", text_of(&refused));
    for part in ["signed-apps", "is not signed"] {
        assert!(
            text_of(&refused).contains(part),
            "no {part:?}: {}\n{}",
            text_of(&refused),
            w.logs()
        );
    }
    // Refused when the image was recorded: the layers had been fetched, the record not made.
    assert!(
        w.proxy.log().contains("refused method=CreateImage"),
        "{}",
        w.logs()
    );
    let listed = ok(w.ctr_direct(&["-n", "prod", "images", "ls", "-q"]));
    assert!(!listed.contains("apps/web:2"), "{listed}");

    ok(pull("prod", "1"));
    let reference = registry.reference("apps/web:1");
    let out = ok(w.ctr(&[
        "-n",
        "prod",
        "run",
        "--rm",
        &reference,
        &unique("signed"),
        "echo",
        "ran",
    ]));
    assert!(out.contains("ran"), "{out}");

    ok(pull("default", "2"));
}

fn text_of(out: &std::process::Output) -> String {
    crate::common::text(out)
}

/// An unsigned image recorded before the policy existed (pulled straight from containerd,
/// past the proxy): a container of it is refused at `Containers/Create` (and a container
/// made before, at `Tasks/Create`) in the namespace
/// that requires signatures, judged by the digest containerd holds (not the one the tag
/// now names in the registry, which is signed), and runs in the namespace that does not.
#[test]
fn an_image_already_on_the_node_is_verified_when_a_container_of_it_is_created() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    registry.push_busybox_variant("apps/web:2", "old-unsigned");
    let mut config = config(dir.path(), &registry.host(), &key, "Fail");
    amend_policy(dir.path(), PROD_ONLY);
    config.push_str("namespaces:\n  prod: {labels: {tier: prod}}\n");
    let w = World::new(&config);
    let reference = registry.reference("apps/web:2");
    for ns in ["prod", "default"] {
        ok(w.ctr_direct(&["-n", ns, "images", "pull", "--plain-http", &reference]));
    }
    // The tag moves on in the registry to a signed image: what runs here is still the
    // old one, and that is what must be verified (resolving the tag would admit it).
    let moved = registry.push_busybox_variant("apps/web:2", "new-signed");
    key.sign(&registry, "apps/web", &moved);
    let run = |ns: &str| {
        w.ctr(&[
            "-n",
            ns,
            "run",
            "--rm",
            &reference,
            &unique("old"),
            "echo",
            "ran",
        ])
    };
    let refused = run("prod");
    assert!(!refused.status.success(), "{}", text_of(&refused));
    for part in ["signed-apps", "is not signed"] {
        assert!(
            text_of(&refused).contains(part),
            "no {part:?}: {}\n{}",
            text_of(&refused),
            w.logs()
        );
    }
    assert!(
        w.containers("prod").is_empty(),
        "{:?}",
        w.containers("prod")
    );
    let out = ok(run("default"));
    assert!(out.contains("ran"), "{out}");

    // A container made before the policy too: its task is refused at Tasks/Create.
    let id = unique("made-before");
    ok(w.ctr_direct(&[
        "-n",
        "prod",
        "containers",
        "create",
        &reference,
        &id,
        "true",
    ]));
    let start = w.ctr(&["-n", "prod", "tasks", "start", &id]);
    assert!(!start.status.success(), "{}", text_of(&start));
    assert!(
        text_of(&start).contains("is not signed"),
        "{}",
        text_of(&start)
    );
    ok(w.ctr_direct(&["-n", "prod", "containers", "rm", &id]));
}

/// A refused image asked about again and again — a kubelet's pull back-off, many pulls at
/// once — through the daemon costs one registry verification: concurrent asks share it,
/// later ones find it in the cache (`cacheDenySeconds`).
#[test]
fn a_refused_image_asked_again_and_again_costs_one_registry_verification() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let unsigned = registry.push_busybox_variant("apps/web:2", "asked-often");
    let policy = config(dir.path(), &registry.host(), &Key::new(1), "Fail");
    let serve = crate::common::Serve::serve(dir.path(), &policy, &[]);
    let bin = install(
        dir.path(),
        &format!("hook:\n  daemonSocket: '{}'\n", serve.socket.display()),
    );
    let name = registry.reference("apps/web:2");
    let sig = format!("/v2/apps/web/manifests/{}.sig", unsigned.replace(':', "-"));
    let asked = || registry.log().matches(&sig).count();

    let first = verifier::run(&bin, &name, &descriptor(&unsigned, 500), TIMEOUT);
    assert_eq!(first.exit_code, Some(1), "{first:?}\n{}", serve.log());
    let per_verification = asked();
    assert!(per_verification >= 1, "{}", registry.log());

    let together: Vec<_> = (0..10)
        .map(|_| {
            let (bin, name, unsigned) = (bin.clone(), name.clone(), unsigned.clone());
            std::thread::spawn(move || {
                verifier::run(&bin, &name, &descriptor(&unsigned, 500), TIMEOUT)
            })
        })
        .collect();
    for judged in together {
        let judged = judged.join().unwrap();
        assert_eq!(judged.exit_code, Some(1), "{judged:?}");
    }
    for _ in 0..10 {
        let judged = verifier::run(&bin, &name, &descriptor(&unsigned, 500), TIMEOUT);
        assert_eq!(judged.exit_code, Some(1), "{judged:?}");
    }
    assert_eq!(asked(), per_verification, "{}", registry.log());
}

/// Over TLS the registry is trusted through `imageVerification.caFile`: the signed image is
/// admitted; without the CA the registry cannot be read, and `failurePolicy: Fail`
/// refuses, naming the policy.
#[test]
fn a_tls_registry_is_trusted_through_the_configured_ca() {
    let registry = Registry::start(Transport::Tls);
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "tls-signed");
    key.sign(&registry, "apps/web", &signed);
    let ca = registry.ca_pem().expect("a TLS registry has a CA");
    let name = registry.reference("apps/web:1");
    for (with_ca, admitted) in [(true, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let plain = config(dir.path(), &registry.host(), &key, "Fail");
        let insecure = format!("insecureRegistries: ['{}']", registry.host());
        let trust = if with_ca {
            format!("caFile: '{}'", ca.display())
        } else {
            "insecureRegistries: []".to_owned()
        };
        let config = plain.replace(&insecure, &trust);
        let bin = install(dir.path(), &config);
        let judged = verifier::run(&bin, &name, &descriptor(&signed, 500), TIMEOUT);
        assert_eq!(
            judged.ok(),
            admitted,
            "caFile {with_ca}: {judged:?}\n{config}"
        );
        if !admitted {
            assert!(judged.reason.contains("signed-apps"), "{judged:?}");
        }
    }
}

/// The signature check's report is a CEL variable (`imageVerification`, by container) for
/// the policies after it, as Ratify's `policy.rego` decides on its report: with the trust
/// policy in `mode: audit`, a ValidatingAdmissionPolicy admits a container of the image
/// the release key signed and refuses the unsigned one, with its own message.
#[test]
fn a_cel_policy_decides_on_the_verification_report() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "cel-signed");
    registry.push_busybox_variant("apps/web:2", "cel-unsigned");
    key.sign(&registry, "apps/web", &signed);
    let config = config(dir.path(), &registry.host(), &key, "Fail");
    amend_policy(dir.path(), "mode: audit");
    std::fs::write(
        dir.path().join("policies/release-signed.yaml"),
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: release-signed}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  validations:
  - expression: "imageVerification.all(c, imageVerification[c].reports.exists(r, r.authority == 'release-key' && r.outcome == 'Verified'))"
    message: not signed by the release key
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: release-signed}
spec: {policyName: release-signed, validationActions: [Deny]}
"#,
    )
    .unwrap();
    let w = World::new(&config);
    let run = |tag: &str| {
        let reference = registry.reference(&format!("apps/web:{tag}"));
        ok(w.ctr(&["images", "pull", "--plain-http", &reference]));
        w.ctr(&["run", "--rm", &reference, &unique("cel"), "echo", "ran"])
    };
    let out = run("1");
    assert!(
        out.status.success() && text_of(&out).contains("ran"),
        "{}",
        text_of(&out)
    );
    let refused = run("2");
    assert!(!refused.status.success(), "{}", text_of(&refused));
    for part in ["release-signed", "not signed by the release key"] {
        assert!(
            text_of(&refused).contains(part),
            "no {part:?}: {}",
            text_of(&refused)
        );
    }
}

/// A registry that wants credentials (TLS, HTTP Basic): the verifier reads them from the
/// Docker `config.json` named by `imageVerification.dockerConfig` and verifies the signed
/// image; without them, or with a wrong password, the registry cannot be read and
/// `failurePolicy: Fail` refuses, naming the policy.
#[test]
fn credentials_come_from_the_docker_config() {
    use base64::Engine as _;
    let registry = Registry::start_with_auth(Transport::Tls, "puller", "s3cret-pw");
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "auth-signed");
    key.sign(&registry, "apps/web", &signed);
    let ca = registry.ca_pem().expect("a TLS registry has a CA");
    let name = registry.reference("apps/web:1");
    for (password, admitted) in [
        (Some("s3cret-pw"), true),
        (None, false),
        (Some("wrong"), false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plain = config(dir.path(), &registry.host(), &key, "Fail");
        let mut trust = format!("caFile: '{}'", ca.display());
        if let Some(password) = password {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("puller:{password}"));
            let docker = dir.path().join("docker-config.json");
            std::fs::write(
                &docker,
                serde_json::json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
            )
            .unwrap();
            trust.push_str(&format!(", dockerConfig: '{}'", docker.display()));
        }
        let insecure = format!("insecureRegistries: ['{}']", registry.host());
        let bin = install(dir.path(), &plain.replace(&insecure, &trust));
        let judged = verifier::run(&bin, &name, &descriptor(&signed, 500), TIMEOUT);
        assert_eq!(judged.ok(), admitted, "password {password:?}: {judged:?}");
        if !admitted {
            assert!(judged.reason.contains("signed-apps"), "{judged:?}");
        }
    }
}

/// `serve` answers kube-apiserver's ImagePolicyWebhook (ImageReview) and its Pod webhooks
/// with the same check: the tag is resolved to its digest at the registry, the signed one
/// is allowed and the unsigned one refused with the reason; the digest verified is in the
/// answer's audit annotations.
#[test]
fn serve_verifies_the_images_of_image_reviews_and_pod_admission_reviews() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    let signed = registry.push_busybox_variant("apps/web:1", "serve-signed");
    registry.push_busybox_variant("apps/web:2", "serve-unsigned");
    key.sign(&registry, "apps/web", &signed);
    let port = crate::common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = crate::common::Serve::serve(
        dir.path(),
        &config(dir.path(), &registry.host(), &key, "Fail"),
        &["--listen", &listen],
    );
    let post = |path: &str, body: &serde_json::Value| {
        let (status, body) = crate::common::http(port, "POST", path, body.to_string().as_bytes());
        assert!(status.contains("200"), "{status}\n{body}\n{}", serve.log());
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let image_review = |tag: &str| {
        serde_json::json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
            "spec": {"containers": [{"image": registry.reference(&format!("apps/web:{tag}"))}],
                "namespace": "default"}})
    };
    let allowed = post("/image_policy", &image_review("1"));
    assert_eq!(allowed["status"]["allowed"], true, "{allowed}");
    assert!(
        allowed.to_string().contains(&signed),
        "the verified digest: {allowed}"
    );
    let refused = post("/image_policy", &image_review("2"));
    assert_eq!(refused["status"]["allowed"], false, "{refused}");
    assert!(
        refused["status"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is not signed"),
        "{refused}"
    );

    let pod_review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b4a7a8e-6f3c-4c5e-9d43-2f7f4d1a7e10",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default", "operation": "CREATE", "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"containers": [{"name": "web", "image": registry.reference("apps/web:2")}]}}
        }
    });
    let answer = post("/validate", &pod_review);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("image-signatures"),
        "{answer}"
    );
}
