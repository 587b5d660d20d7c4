//! One decision with ten of the most used gatekeeper-library templates, on each engine:
//! allowed repos, disallowed tags, container limits, required labels, host namespaces,
//! privileged containers, capabilities, host network and ports, read-only root
//! filesystem, privilege escalation. The templates are the library's own
//! (`tests/fixtures/gatekeeper-library`), the Constraints those of its samples (required
//! labels bound to Pods). The Pod passes every Constraint, so every one runs to the end.
//!
//!     cargo bench --bench gatekeeper      (figures go to BENCHMARKS.md)
//!
//! Measured in one run, for ratios: the Constraints alone, evaluated on the caller's
//! thread (`Decider::audit`, which runs every validating policy synchronously: here only
//! the Constraints) on Rego and on CEL (templates without CEL code stay on Rego); the
//! whole decision through the core (`Decider::decide`, which runs Gatekeeper off its
//! async worker); and the core's decision with no policy at all, the direct path.
//!
//! Env: BENCH_DECISIONS (default 50000).

use std::path::{Path, PathBuf};

#[path = "common/measure.rs"]
mod measure;

use measure::measure;
use portcullis::config::Config;
use portcullis::core::Decider;
use portcullis::review::{AdmissionRequest, Operation};
use serde_json::json;

const TEMPLATES: [&str; 10] = [
    "allowedrepos",
    "disallowedtags",
    "containerlimits",
    "requiredlabels",
    "host-namespaces",
    "privileged-containers",
    "capabilities",
    "host-network-ports",
    "read-only-root-filesystem",
    "allow-privilege-escalation",
];

const CONSTRAINTS: &str = r#"
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAllowedRepos
metadata: {name: repo-is-trusted}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {repos: ["docker.io/library/", "registry.example.com/team/"]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDisallowedTags
metadata: {name: no-latest}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {tags: [latest], exemptImages: []}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sContainerLimits
metadata: {name: container-must-have-limits}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {cpu: "200m", memory: "1Gi"}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: pods-have-owner}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {labels: [{key: owner, allowedRegex: "^[a-z]+$"}]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPHostNamespace
metadata: {name: psp-host-namespace}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPPrivilegedContainer
metadata: {name: psp-privileged-container}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}], excludedNamespaces: [kube-system]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPCapabilities
metadata: {name: psp-capabilities-restricted}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {allowedCapabilities: [NET_BIND_SERVICE], requiredDropCapabilities: [ALL]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPHostNetworkingPorts
metadata: {name: psp-host-network-ports}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {hostNetwork: false, min: 80, max: 9000}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPReadOnlyRootFilesystem
metadata: {name: psp-readonlyrootfilesystem}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPAllowPrivilegeEscalationContainer
metadata: {name: psp-allow-privilege-escalation-container}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
"#;

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gatekeeper-library")
}

/// The policyDir: the ten templates and the Constraints.
fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for t in TEMPLATES {
        let from = library().join(t).join("template.yaml");
        std::fs::copy(&from, dir.path().join(format!("{t}.yaml"))).unwrap();
    }
    std::fs::write(dir.path().join("constraints.yaml"), CONSTRAINTS).unwrap();
    dir
}

fn request() -> AdmissionRequest {
    let limits = json!({"limits": {"cpu": "100m", "memory": "256Mi"}});
    let hardened = json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                          "capabilities": {"drop": ["ALL"]}});
    let mut r = AdmissionRequest::pod(Operation::Create);
    r.name = "web".into();
    r.namespace = "default".into();
    r.object = Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "owner": "alice"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "docker.io/library/nginx:1.27", "resources": limits,
                 "ports": [{"containerPort": 8080}], "securityContext": hardened},
                {"name": "sidecar", "image": "registry.example.com/team/proxy:2.1",
                 "resources": limits, "securityContext": hardened}
            ]
        }
    }));
    r
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = policy_dir();
    let config = |engines: &str| {
        let text = format!(
            "policyDir: {}\ngatekeeper: {{engines: [{engines}]}}\n",
            dir.path().display()
        );
        Config::parse(&text, Path::new("bench.yaml")).unwrap()
    };
    let req = request();
    for (name, engines) in [
        ("Rego", "Rego"),
        ("CEL where the template has it", "K8sNativeValidation, Rego"),
    ] {
        let decider = Decider::new(&config(engines)).unwrap();
        let findings = decider.audit(&req);
        assert!(
            findings.is_empty(),
            "the Pod must pass every Constraint: {findings:?}"
        );
        let mut bad = req.clone();
        if let Some(pod) = bad.object.as_mut() {
            pod["spec"]["hostPID"] = serde_json::json!(true);
            pod["metadata"]["labels"] = serde_json::json!({});
        }
        assert!(decider.audit(&bad).len() >= 2, "the Constraints must apply");
        let figures = measure(n, || decider.audit(&req));
        println!("10 Constraints alone ({name}), {n} runs: {figures}");
    }
    let config = config("Rego");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let decider = Decider::new(&config).unwrap();
    let verdict = rt.block_on(decider.decide(&req));
    assert!(
        verdict.is_allowed(),
        "the Pod must be admitted: {verdict:?}"
    );
    let figures = measure(n, || rt.block_on(decider.decide(&req)));
    println!("the decision through the core (Rego), {n} runs: {figures}");
    let direct = Decider::new(&Config::default()).unwrap();
    let figures = measure(n, || rt.block_on(direct.decide(&req)));
    println!("the core's decision with no policy (direct path), {n} runs: {figures}");
    each_template(n / 10, &req);
}

/// Where the time goes: each template with its Constraint alone, on Rego.
fn each_template(n: usize, req: &AdmissionRequest) {
    for (t, constraint) in TEMPLATES.iter().zip(CONSTRAINTS.split("\n---\n")) {
        let dir = tempfile::tempdir().unwrap();
        let from = library().join(t).join("template.yaml");
        std::fs::copy(&from, dir.path().join("template.yaml")).unwrap();
        std::fs::write(dir.path().join("constraint.yaml"), constraint).unwrap();
        let text = format!(
            "policyDir: {}\ngatekeeper: {{engines: [Rego]}}\n",
            dir.path().display()
        );
        let decider =
            Decider::new(&Config::parse(&text, Path::new("bench.yaml")).unwrap()).unwrap();
        let figures = measure(n, || decider.audit(req));
        println!("  {t} alone (Rego), {n} runs: {figures}");
    }
}
