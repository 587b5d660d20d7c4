//! One decision of the in-process core, for a realistic policy set: Pod Security
//! `restricted` enforced, every built-in image rule, the runtime-class rule, and five CEL
//! ValidatingAdmissionPolicies (one with params). No webhook, no I/O.
//!
//!     cargo bench --bench decision       (figures go to BENCHMARKS.md)
//!
//! Env: BENCH_DECISIONS (default 200000).

#[path = "common/measure.rs"]
mod measure;

use measure::measure;
use portcullis::config::Config;
use portcullis::core::Decider;
use portcullis::review::{AdmissionRequest, Door, Operation};
use serde_json::json;

const CONFIG: &str = r#"
namespaces:
  default: {labels: {pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/warn: restricted}}
images:
  disallowLatest: true
  allowedRegistries: [docker.io, registry.example.com/team]
  requireDigest: false
  deny: ["*/xmrig*", "*miner*"]
runtimeClass: {reservedRuntimes: [legacy], fallbackRuntime: standard}
"#;

/// Five CEL policies of the kind people write, bound to Deny.
const POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-hostpath}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  validations:
    - expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: app-label}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  validations:
    - expression: "has(object.metadata.labels) && 'app' in object.metadata.labels"
      message: "every Pod needs an app label"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-containers}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  validations:
    - expression: "size(object.spec.containers) <= int(params.data.maxContainers)"
      messageExpression: "'at most ' + params.data.maxContainers + ' containers'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: readonly-root}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  variables:
    - name: app
      expression: "object.spec.containers.filter(c, c.name == 'app')"
  validations:
    - expression: "variables.app.all(c, has(c.securityContext) && has(c.securityContext.readOnlyRootFilesystem) && c.securityContext.readOnlyRootFilesystem)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: trusted-registries}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]}
  matchConditions:
    - name: not-system
      expression: "request.namespace != 'kube-system'"
  validations:
    - expression: "object.spec.containers.all(c, c.image.startsWith('docker.io/') || c.image.startsWith('registry.example.com/'))"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: default}
data: {maxContainers: "4"}
"#;

const BINDINGS: [(&str, &str); 5] = [
    ("no-hostpath", ""),
    ("app-label", ""),
    (
        "max-containers",
        "  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}\n",
    ),
    ("readonly-root", ""),
    ("trusted-registries", ""),
];

fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = POLICIES.to_string();
    for (policy, extra) in BINDINGS {
        text.push_str(&format!(
            "---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {policy}}}\nspec:\n  policyName: {policy}\n  validationActions: [Deny]\n{extra}"
        ));
    }
    std::fs::write(dir.path().join("policies.yaml"), text).unwrap();
    dir
}

fn request() -> AdmissionRequest {
    let mut r = AdmissionRequest::pod(Operation::Create);
    r.name = "web".into();
    r.namespace = "default".into();
    r.object = Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "runtimeClassName": "standard",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "app", "image": "docker.io/library/nginx:1.27",
                 "command": ["nginx", "-g", "daemon off;"], "env": [{"name": "A", "value": "1"}],
                 "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
                {"name": "sidecar", "image": "registry.example.com/team/proxy:2.1",
                 "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory"}}]
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
        .unwrap_or(200_000);
    let dir = policy_dir();
    let config = format!("{CONFIG}policyDir: {}\n", dir.path().display());
    let config = Config::parse(&config, std::path::Path::new("bench.yaml")).unwrap();
    let decider = Decider::new(&config).unwrap();
    // As every door's runtime: the core times webhook calls and CEL with Tokio's timers.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = request();
    let verdict = rt.block_on(decider.decide(&req));
    assert!(
        verdict.is_allowed(),
        "the benchmark Pod must be admitted: {verdict:?}"
    );
    let decide = measure(n, || rt.block_on(decider.decide(&req)));
    println!(
        "decision (restricted PSS + image rules + runtime-class rule + 5 CEL policies; {} policy sources in the trail), {n} runs: {decide}",
        verdict.trail.len(),
    );

    // The same request again, as a door asks (`admit`), with the decision cache on.
    let mut cached = config.clone();
    cached.cache = Some(Default::default());
    let decider = Decider::new(&cached).unwrap();
    let hit = measure(n, || rt.block_on(decider.admit(Door::Proxy, &req)));
    println!("the same decision answered from the decision cache, {n} runs: {hit}");
}
