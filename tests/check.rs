//! `portcullis check` as a user runs it: the real binary on real files, exit codes 0/1/2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runtime-specs");

fn check(dir: &Path, config: &str, args: &[&str]) -> Output {
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check")
        .arg("--config")
        .arg(&config_path)
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn exit_codes_say_admitted_denied_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "images: {disallowLatest: true}\n";
    let pinned = write(dir.path(), "pinned.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: 'busybox:1.36'}]\n");
    let latest = write(dir.path(), "latest.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [{name: c, image: busybox}]\n");
    let garbage = write(dir.path(), "garbage.yaml", "kind: [unclosed\n");

    let ok = check(
        dir.path(),
        rules,
        &[
            pinned.to_str().unwrap(),
            &format!("{FIXTURES}/ctr/plain.container.json"),
        ],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let denied = check(
        dir.path(),
        rules,
        &[pinned.to_str().unwrap(), latest.to_str().unwrap()],
    );
    assert_eq!(denied.status.code(), Some(1));
    let out = String::from_utf8_lossy(&denied.stdout);
    assert!(
        out.contains("admitted") && out.contains("images.disallowLatest"),
        "{out}"
    );

    let bad = check(dir.path(), rules, &[garbage.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("garbage.yaml"));

    let bad_policy = check(
        dir.path(),
        "images: {disallowLatests: true}\n",
        &[pinned.to_str().unwrap()],
    );
    assert_eq!(bad_policy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_policy.stderr).contains("disallowLatests"));
}

#[test]
fn json_output_reads_oci_configs_and_admission_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let review = write(
        dir.path(),
        "review.json",
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
        "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "name":"r","namespace":"ns","operation":"CREATE","userInfo":{"username":"alice"},
        "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r"},"spec":{"containers":[{"name":"c","image":"nginx:latest"}]}}}}"#,
    );
    let out = check(
        dir.path(),
        "images: {disallowLatest: true}\n",
        &[
            "--output",
            "json",
            review.to_str().unwrap(),
            &format!("{FIXTURES}/podman/privileged.config.json"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(
        (
            report[0]["namespace"].as_str(),
            report[0]["allowed"].as_bool()
        ),
        (Some("ns"), Some(false))
    );
    assert_eq!(report[1]["name"], "privileged");
    assert_eq!(report[0]["status"]["code"], 403);
}

/// Regression: a Pod whose `metadata` was a string panicked (exit 101). Every malformed
/// shape is bad input: exit 2, no panic, and the message names the field.
#[test]
fn malformed_pods_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    // Every built-in policy on, so each one would see the Pod if the shape check let it by.
    let rules = "images: {disallowLatest: true}\n\
        runtimeClass: {reservedRuntimes: [runc], fallbackRuntime: kata, defaultRuntimeReserved: true}\n\
        namespaces: {default: {labels: {pod-security.kubernetes.io/enforce: restricted}}}\n";
    let review = |object: &str| {
        format!(
            "kind: AdmissionReview\nrequest: {{uid: u, kind: {{group: apps, version: v1, kind: Deployment}}, \
             resource: {{group: apps, version: v1, resource: deployments}}, operation: CREATE, \
             userInfo: {{}}, object: {object}}}\n"
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("metadata-string", "kind: Pod\nmetadata: oops\nspec: {containers: [{name: c, image: 'a:1'}]}\n".into(), "metadata: must be a mapping"),
        ("spec-string", "kind: Pod\nmetadata: {name: a}\nspec: oops\n".into(), "spec: must be a mapping"),
        ("containers-number", "kind: Pod\nmetadata: {name: a}\nspec: {containers: 5}\n".into(), "spec.containers: must be a list"),
        ("container-number", "kind: Pod\nmetadata: {name: a}\nspec: {containers: [5]}\n".into(), "spec.containers[0]: a container must be a mapping"),
        ("name-number", "kind: Pod\nmetadata: {name: 5}\nspec: {containers: [{name: c, image: 'a:1'}]}\n".into(), "metadata.name: must be a string"),
        ("kind-missing", "metadata: {name: a}\nspec: {containers: [{name: c, image: 'a:1'}]}\n".into(), "kind: missing"),
        ("kind-number", "kind: 5\n".into(), "kind: must be a string"),
        ("list", "- kind: Pod\n  metadata: oops\n- kind: Pod\n  spec: 3\n".into(), "the document is a list"),
        ("second-document", "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: 'a:1'}]}\n---\nkind: Pod\nmetadata: [1]\n".into(), "document 1: metadata: must be a mapping"),
        ("review-request-number", "kind: AdmissionReview\nrequest: 5\n".into(), "request: missing or not a mapping"),
        ("review-template-metadata", review("{spec: {template: {metadata: 3, spec: {containers: 5}}}}"), "request.object.spec.template.metadata: must be a mapping"),
        ("review-spec-number", review("{spec: 5}"), "request.object.spec: must be a mapping"),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), &format!("{name}.yaml"), &text);
        let out = check(dir.path(), rules, &[input.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}.yaml")) && stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr}"
        );
    }
}

/// A ValidatingAdmissionPolicy that refuses every create and update, saying what request it
/// saw: resource, namespace (`-` for none), kind and user.
const ECHO_POLICY: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: echo}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: ["*"]}]
  validations:
  - expression: "false"
    messageExpression: >
      "saw " + request.resource.group + "/" + request.resource.resource + " in " +
      (request.namespace == "" ? "-" : request.namespace) + " as " + request.kind.kind
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: echo}
spec: {policyName: echo, validationActions: [Deny]}
"#;

/// Any Kubernetes object is read as a CREATE of it, named as kube-apiserver names it:
/// cluster-scoped kinds in no namespace, namespaced ones in `--namespace` when they carry
/// none; a hand-written AdmissionReview (only `operation` and `object`, as gator reads
/// them) gets the same kind, resource and namespace from its object.
#[test]
fn any_object_is_a_create_of_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    write(&policies, "echo.yaml", ECHO_POLICY);
    let objects = write(
        dir.path(),
        "objects.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {owner: me}}\n\
         ---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n\
         ---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: prod}\n\
         ---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n\
         ---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n\
         ---\nkind: AdmissionReview\napiVersion: admission.k8s.io/v1beta1\n\
         request: {operation: UPDATE, object: {apiVersion: v1, kind: Namespace, metadata: {name: team-b}}}\n",
    );
    let config = format!("policyDir: {}\n", policies.display());
    let out = check(
        dir.path(),
        &config,
        &[
            "--namespace",
            "dev",
            "--output",
            "json",
            objects.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let saw: Vec<(&str, &str, &str)> = report
        .iter()
        .map(|r| {
            let message = r["status"]["message"].as_str().unwrap_or_default();
            let saw = message.find("saw ").map_or(message, |i| &message[i..]);
            (
                r["operation"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                saw.trim(),
            )
        })
        .collect();
    assert_eq!(
        saw,
        [
            ("CREATE", "team-a", "saw /namespaces in - as Namespace"),
            ("CREATE", "web", "saw /services in dev as Service"),
            ("CREATE", "web", "saw /endpoints in prod as Endpoints"),
            (
                "CREATE",
                "deny",
                "saw networking.k8s.io/networkpolicies in dev as NetworkPolicy"
            ),
            (
                "CREATE",
                "reader",
                "saw rbac.authorization.k8s.io/clusterroles in - as ClusterRole"
            ),
            ("CREATE", "w", "saw example.com/widgets in dev as Widget"),
            ("UPDATE", "team-b", "saw /namespaces in - as Namespace"),
        ]
    );
}

/// The built-in policies are Pod policies: an object of another kind passes them, and a
/// Pod whose only containers are ephemeral ones (the gatekeeper-library's
/// `disallowed_ephemeral` cases) is judged on those. Objects that cannot be named are bad
/// input, naming the field.
#[test]
fn pod_policies_pass_other_kinds_and_objects_need_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "images: {disallowLatest: true}\n\
        namespaces: {default: {labels: {pod-security.kubernetes.io/enforce: restricted}}}\n";
    let namespace = write(
        dir.path(),
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n",
    );
    let ok = check(dir.path(), rules, &[namespace.to_str().unwrap()]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let ephemeral = write(
        dir.path(),
        "ephemeral.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec: {ephemeralContainers: [{name: debug, image: busybox}]}\n",
    );
    let out = check(
        dir.path(),
        "images: {disallowLatest: true}\n",
        &[ephemeral.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("images.disallowLatest"), "{stdout}");

    let cases = [
        (
            "no-name",
            "apiVersion: v1\nkind: Service\nmetadata: {labels: {a: b}}\n",
            "metadata.name: missing",
        ),
        (
            "no-metadata",
            "apiVersion: v1\nkind: Service\n",
            "metadata: missing or not a mapping",
        ),
        (
            "no-api-version",
            "kind: Service\nmetadata: {name: s}\n",
            "apiVersion: missing",
        ),
        (
            "label-number",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, labels: {a: 1}}\n",
            "metadata.labels.a: must be a string",
        ),
        (
            "no-containers",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
            "spec.containers: missing",
        ),
        (
            "deployment-template",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: 3}\n",
            "spec.template: a Pod must be a mapping",
        ),
        (
            "review-no-kind",
            "kind: AdmissionReview\nrequest: {operation: CREATE}\n",
            "request.kind: missing",
        ),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), &format!("{name}.yaml"), text);
        let out = check(dir.path(), rules, &[input.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr}"
        );
    }
}
