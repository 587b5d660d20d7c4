//! Behaviour of MutatingAdmissionPolicy, feature by feature, with the messages
//! kube-apiserver gives.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;
use crate::policy::{MutatingPolicy, Mutation};
use crate::review::{GroupVersionKind, GroupVersionResource, Operation};

fn load_set(yaml: &str) -> PolicySet {
    match PolicySet::from_documents(&[(PathBuf::from("mutations.yaml"), yaml.to_owned())]) {
        Ok(set) => set,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

fn load_error(yaml: &str) -> String {
    match PolicySet::from_documents(&[(PathBuf::from("mutations.yaml"), yaml.to_owned())]) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "busybox"}
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}]
    }})
}

fn request(pod: Value) -> AdmissionRequest {
    let mut r = AdmissionRequest::new(
        Operation::Create,
        GroupVersionKind::core("Pod"),
        GroupVersionResource::core("pods"),
        None,
    );
    r.namespace = "default".into();
    r.name = "web".into();
    r.object = Some(pod);
    r
}

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"env": "prod"}}})
}

fn mutate(set: &PolicySet, pod: Value) -> Mutated {
    set.mutate(&request(pod), &namespace())
}

/// A policy `p` (spec lines after `matchConstraints`) and its binding `b`.
fn policy(spec_tail: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {{name: p}}
spec:
  matchConstraints:
    resourceRules:
    - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
{spec_tail}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {{name: b}}
spec:
  policyName: p
"#
    )
}

fn json_patch(expression: &str) -> String {
    policy(&format!(
        "  mutations:\n  - patchType: JSONPatch\n    jsonPatch:\n      expression: '{expression}'"
    ))
}

fn apply_configuration(expression: &str) -> String {
    policy(&format!(
        "  mutations:\n  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: '{expression}'"
    ))
}

fn object(m: &Mutated) -> &Value {
    m.object
        .as_ref()
        .unwrap_or_else(|| panic!("no change: {m:?}"))
}

#[test]
fn json_patch_adds_replaces_and_removes() {
    let set = load_set(&json_patch(
        r#"[
          JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("team/x~y"), value: "a"},
          JSONPatch{op: "replace", path: "/spec/containers/0/image", value: "nginx:1.27"},
          JSONPatch{op: "remove", path: "/spec/tolerations"},
          JSONPatch{op: "add", path: "/spec/containers/0/env/-", value: {"name": "B", "value": "2"}}
        ]"#,
    ));
    let m = mutate(&set, pod());
    assert!(m.errors.is_empty() && m.ignored.is_empty(), "{m:?}");
    let o = object(&m);
    assert_eq!(o["metadata"]["labels"]["team/x~y"], "a");
    assert_eq!(o["spec"]["containers"][0]["image"], "nginx:1.27");
    assert!(o["spec"].get("tolerations").is_none());
    assert_eq!(
        o["spec"]["containers"][0]["env"][1],
        json!({"name": "B", "value": "2"})
    );
    assert_eq!(m.applied, vec!["p/b"]);
}

#[test]
fn json_patch_follows_evanphx_on_test_and_replace() {
    // A failed test leaves the object as it was, without an error.
    let failed_test = set_of_patch(
        r#"[JSONPatch{op: "test", path: "/metadata/name", value: "other"},
            JSONPatch{op: "replace", path: "/metadata/name", value: "changed"}]"#,
    );
    let m = mutate(&failed_test, pod());
    assert_eq!((m.object, m.errors.len()), (None, 0));
    // Replacing a missing member adds it; a missing array element is an error.
    let set = set_of_patch(r#"[JSONPatch{op: "replace", path: "/spec/priority", value: 5}]"#);
    assert_eq!(object(&mutate(&set, pod()))["spec"]["priority"], 5);
    let set = set_of_patch(r#"[JSONPatch{op: "replace", path: "/spec/containers/7", value: {}}]"#);
    let m = mutate(&set, pod());
    assert_eq!(m.errors.len(), 1, "{m:?}");
    assert!(
        m.errors[0].starts_with(
            "policy 'p' with binding 'b' denied request: JSON Patch: replace operation does not apply"
        ),
        "{m:?}"
    );
    let set = set_of_patch(r#"[JSONPatch{op: "merge", path: "/spec"}]"#);
    assert!(mutate(&set, pod()).errors[0].ends_with("JSON Patch: Unexpected kind: merge"));
}

fn set_of_patch(expression: &str) -> PolicySet {
    load_set(&json_patch(expression))
}

#[test]
fn apply_configuration_merges_containers_by_name() {
    let set = load_set(&apply_configuration(
        r#"Object{
          metadata: Object.metadata{labels: {"mutated": "yes"}},
          spec: Object.spec{containers: [
            Object.spec.containers{name: "app", env: [Object.spec.containers.env{name: "B", value: "2"}]},
            Object.spec.containers{name: "new", image: "alpine"}
          ]}}"#,
    ));
    let m = mutate(&set, pod());
    assert!(m.errors.is_empty(), "{m:?}");
    let o = object(&m);
    assert_eq!(
        o["metadata"]["labels"],
        json!({"app": "web", "mutated": "yes"})
    );
    let containers = &o["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([
            {"name": "app", "image": "nginx",
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "busybox"},
            {"name": "new", "image": "alpine"}
        ])
    );
    assert_eq!(o["spec"]["tolerations"], pod()["spec"]["tolerations"]);
}

#[test]
fn apply_configuration_refuses_atomic_lists_as_upstream() {
    let set = load_set(&apply_configuration(
        r#"Object{spec: Object.spec{
          tolerations: [Object.spec.tolerations{key: "x", operator: "Exists"}],
          containers: [Object.spec.containers{name: "app", command: ["sh"]}]}}"#,
    ));
    let m = mutate(&set, pod());
    assert_eq!(m.object, None);
    assert_eq!(
        m.errors,
        vec![
            "policy 'p' with binding 'b' denied request: error applying patch: invalid \
             ApplyConfiguration: may not mutate atomic arrays, maps or structs: \
             .spec.containers[0].command, .spec.tolerations"
        ]
    );
    let set = load_set(&apply_configuration(
        r#"Object{spec: Object.spec{nodeSelector: {"a": "b"}}}"#,
    ));
    assert!(mutate(&set, pod()).errors[0].ends_with(": .spec.nodeSelector"));
}

#[test]
fn apply_configuration_must_be_an_object() {
    let set = load_set(&apply_configuration(r#"object.metadata.name"#));
    assert!(mutate(&set, pod()).errors[0].ends_with("must evaluate to Object but got string"));
}

#[test]
fn params_variables_and_namespace_object_are_in_scope() {
    let yaml = r#"apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: p}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  variables:
  - name: registry
    expression: params.data.registry
  - name: env
    expression: namespaceObject.metadata.labels.env
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        object.spec.containers.map(c, JSONPatch{op: "replace",
          path: "/spec/containers/" + string(object.spec.containers.indexOf(c)) + "/image",
          value: variables.registry + "/" + c.image + "-" + variables.env})
  reinvocationPolicy: IfNeeded
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: b}
spec:
  policyName: p
  paramRef: {name: registry, namespace: default, parameterNotFoundAction: Deny}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: registry, namespace: default}
data: {registry: mirror.example}
"#;
    let m = mutate(&load_set(yaml), pod());
    assert!(m.errors.is_empty(), "{m:?}");
    let o = object(&m);
    assert_eq!(
        o["spec"]["containers"][0]["image"],
        "mirror.example/nginx-prod"
    );
    assert_eq!(
        o["spec"]["containers"][1]["image"],
        "mirror.example/busybox-prod"
    );
    // Without the params object, the binding is a configuration error.
    let without = yaml.replace("paramRef: {name: registry", "paramRef: {name: other");
    let m = mutate(&load_set(&without), pod());
    assert_eq!(
        m.errors,
        vec![
            "policy 'p' with binding 'b' denied request: failed to configure binding: no params \
              found for policy binding with `Deny` parameterNotFoundAction"
        ]
    );
}

#[test]
fn match_conditions_skip_the_policy() {
    let set = load_set(&policy(
        r#"  matchConditions:
  - name: only-web
    expression: object.metadata.name == "web"
  mutations:
  - patchType: JSONPatch
    jsonPatch: {expression: '[JSONPatch{op: "add", path: "/metadata/labels/seen", value: "1"}]'}"#,
    ));
    assert!(mutate(&set, pod()).object.is_some());
    let mut other = pod();
    other["metadata"]["name"] = json!("db");
    let m = mutate(&set, other);
    assert_eq!((m.object, m.errors.len()), (None, 0));
}

#[test]
fn mutations_and_bindings_apply_in_order_each_seeing_the_last() {
    let yaml = format!(
        "{}---\n{}",
        policy(
            r#"  mutations:
  - patchType: JSONPatch
    jsonPatch: {expression: '[JSONPatch{op: "add", path: "/metadata/labels/n", value: "1"}]'}
  - patchType: JSONPatch
    jsonPatch: {expression: '[JSONPatch{op: "replace", path: "/metadata/labels/n", value: object.metadata.labels.n + "2"}]'}"#
        ),
        policy(
            r#"  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration: {expression: 'Object{metadata: Object.metadata{labels: {"n": object.metadata.labels.n + "3"}}}'}"#
        )
        .replace("name: p}", "name: q}")
        .replace("name: b}", "name: c}")
        .replace("policyName: p", "policyName: q")
    );
    let m = mutate(&load_set(&yaml), pod());
    assert_eq!(object(&m)["metadata"]["labels"]["n"], "123", "{m:?}");
    assert_eq!(m.applied, vec!["p/b", "q/c"]);
}

#[test]
fn runtime_errors_follow_the_failure_policy() {
    let failing = |policy_line: &str| {
        load_set(&policy(&format!(
            r#"  failurePolicy: {policy_line}
  mutations:
  - patchType: JSONPatch
    jsonPatch: {{expression: '[JSONPatch{{op: "add", path: "/x", value: object.spec.nothing}}]'}}
  - patchType: JSONPatch
    jsonPatch: {{expression: '[JSONPatch{{op: "add", path: "/metadata/labels/after", value: "1"}}]'}}"#
        )))
    };
    let m = mutate(&failing("Fail"), pod());
    assert_eq!(m.errors.len(), 1, "{m:?}");
    assert!(
        m.errors[0].starts_with(
            "policy 'p' with binding 'b' denied request: expression '[JSONPatch{op: \"add\""
        ) && m.errors[0].contains("resulted in error"),
        "{m:?}"
    );
    // Ignore: recorded, and the next mutation still runs.
    let m = mutate(&failing("Ignore"), pod());
    assert!(m.errors.is_empty());
    assert_eq!(m.ignored.len(), 1, "{m:?}");
    assert_eq!(object(&m)["metadata"]["labels"]["after"], "1");
    // Through the core's seam: Fail denies; Ignore patches and says what it ignored.
    let labels = BTreeMap::new();
    let r = request(pod());
    let Mutation::Deny(message) = failing("Fail").mutating().unwrap().mutate(&r, &labels) else {
        panic!("not denied")
    };
    assert!(message.starts_with("policy 'p' with binding 'b' denied request: "));
    let Mutation::Ignored { errors, patch } =
        failing("Ignore").mutating().unwrap().mutate(&r, &labels)
    else {
        panic!("not ignored")
    };
    assert_eq!((errors.len(), patch.map(|p| p.0.len())), (1, Some(1)));
}

#[test]
fn the_core_seam_gives_the_difference_as_a_patch() {
    let set = load_set(&json_patch(
        r#"[JSONPatch{op: "add", path: "/metadata/labels/ns", value: namespaceObject.metadata.labels.team}]"#,
    ));
    let labels: BTreeMap<String, String> = [("team".to_owned(), "blue".to_owned())].into();
    let mutating = set.mutating().expect("bound");
    let Mutation::Patch(patch) = mutating.mutate(&request(pod()), &labels) else {
        panic!("no patch")
    };
    let mut patched = pod();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(patched["metadata"]["labels"]["ns"], "blue");
    // Other kinds and operations are not matched.
    let mut delete = request(pod());
    delete.operation = Operation::Delete;
    assert_eq!(mutating.mutate(&delete, &labels), Mutation::Skip);
    // A set without mutating bindings has no mutating side.
    assert!(super::PolicySet::from_documents(&[])
        .unwrap()
        .mutating()
        .is_none());
}

#[test]
fn load_errors_name_the_file_and_line() {
    let e = load_error(&json_patch(
        r#"[JSONPatch{op: "add", path: "/x", value: 1 +}]"#,
    ));
    assert!(
        e.starts_with(
            "mutations.yaml:11: MutatingAdmissionPolicy \"p\": \
             spec.mutations[0].jsonPatch.expression: compile error:"
        ),
        "{e}"
    );
    let e = load_error(&apply_configuration(r#"Object{spec: Object.specx{}}"#));
    assert!(e.contains("unexpected type name \"Object.specx\""), "{e}");
    let e = load_error(&policy(
        "  mutations:\n  - patchType: JSONPatch\n    applyConfiguration: {expression: 'Object{}'}",
    ));
    assert!(
        e.contains("spec.mutations[0].applyConfiguration: Forbidden: must not be specified when patchType is JSONPatch")
            && e.contains("spec.mutations[0].jsonPatch: Required value"),
        "{e}"
    );
    // Unknown fields are refused as in every spec.
    let e = load_error(&policy("  mutations: []\n  mutationz: []"));
    assert!(e.contains("mutationz"), "{e}");
    let e = load_error(&json_patch("[]").replace(
        "admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io/v2\nkind: MutatingAdmissionPolicyBinding",
    ));
    assert!(
        e.contains("apiVersion \"admissionregistration.k8s.io/v2\" is not supported"),
        "{e}"
    );
    let e = load_error(&json_patch("[]").replace("policyName: p", "policyName: nope"));
    assert!(
        e.contains("no MutatingAdmissionPolicy \"nope\" is loaded"),
        "{e}"
    );
}

#[test]
fn mutating_documents_are_not_params() {
    let set = load_set(&json_patch("[]"));
    assert!(set.loaded.params.is_empty());
    assert_eq!(set.loaded.mutating.len(), 1);
    assert_eq!(set.loaded.mutating_bindings.len(), 1);
    // Nor validating policies: a MAP and a VAP may share a name.
    assert!(set.is_empty());
}

#[test]
fn the_example_policy_works() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mutating-policy.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    let set = load_set(&yaml);
    let mut bare = pod();
    bare["metadata"].as_object_mut().unwrap().remove("labels");
    for p in [pod(), bare] {
        let m = mutate(&set, p);
        assert!(m.errors.is_empty(), "{m:?}");
        let o = object(&m);
        assert_eq!(o["metadata"]["labels"]["example.com/mutated"], "true");
        assert_eq!(
            o["spec"]["containers"][1]["env"],
            json!([{"name": "GREETING", "value": "hello"}])
        );
    }
}
