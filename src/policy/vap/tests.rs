//! Behaviour of ValidatingAdmissionPolicy evaluation, feature by feature, with the
//! messages kube-apiserver gives.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::review::{GroupVersionKind, GroupVersionResource, Operation};

fn set(yaml: &str) -> PolicySet {
    match PolicySet::from_documents(&[(PathBuf::from("policies.yaml"), yaml.to_owned())]) {
        Ok(set) => set,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

fn load_error(yaml: &str) -> String {
    match PolicySet::from_documents(&[(PathBuf::from("policies.yaml"), yaml.to_owned())]) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

fn pod_request(op: Operation, namespace: &str, pod: Value) -> AdmissionRequest {
    let mut r = AdmissionRequest::new(
        op,
        GroupVersionKind::core("Pod"),
        GroupVersionResource::core("pods"),
        None,
    );
    r.namespace = namespace.into();
    r.name = pod["metadata"]["name"].as_str().unwrap_or_default().into();
    r.object = Some(pod);
    r
}

fn pod(labels: Value, volumes: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], "volumes": volumes}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn eval(set: &PolicySet, pod: Value) -> Evaluation {
    let request = pod_request(Operation::Create, "default", pod);
    set.evaluate(&request, &namespace("default", json!({})))
}

const HOST_PATH: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: no-host-path
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["pods"]
  validations:
  - expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"
    message: hostPath volumes are not allowed
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: no-host-path-everywhere
spec:
  policyName: no-host-path
  validationActions: [Deny]
"#;

fn policy(spec_tail: &str, actions: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: p}}
spec:
  matchConstraints:
    resourceRules:
    - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
{spec_tail}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec:
  policyName: p
  validationActions: [{actions}]
"#
    )
}

#[test]
fn host_path_volumes_are_denied_in_kube_wording() {
    let set = set(HOST_PATH);
    let host = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let e = eval(&set, pod(json!({}), host));
    assert_eq!(
        e.denials,
        vec![Denial {
            message: "ValidatingAdmissionPolicy 'no-host-path' with binding \
                      'no-host-path-everywhere' denied request: hostPath volumes are not allowed"
                .into(),
            reason: "Invalid".into(),
            code: 422,
        }]
    );
    assert!(!e.is_allowed());
    let e = eval(
        &set,
        pod(json!({}), json!([{"name": "tmp", "emptyDir": {}}])),
    );
    assert!(e.is_allowed() && e.errors.is_empty(), "{e:?}");
    assert_eq!(e.applied, vec!["no-host-path/no-host-path-everywhere"]);
    // No volumes at all.
    let mut bare = pod(json!({}), json!([]));
    bare["spec"].as_object_mut().unwrap().remove("volumes");
    assert!(eval(&set, bare).is_allowed());
}

#[test]
fn message_expression_then_message_then_expression() {
    let spec = r#"  validations:
  - expression: "object.metadata.name != 'web'"
    messageExpression: "'pod ' + object.metadata.name + ' is reserved'"
    message: static
    reason: Forbidden
  - expression: "object.metadata.name.size() > 5"
    messageExpression: "42"
    message: "  too short  "
  - expression: " object.metadata.name == 'x' "
"#;
    let e = eval(&set(&policy(spec, "Deny")), pod(json!({}), json!([])));
    let messages: Vec<&str> = e.denials.iter().map(|d| d.message.as_str()).collect();
    let prefix = "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ";
    assert_eq!(
        messages,
        vec![
            format!("{prefix}pod web is reserved"),
            format!("{prefix}too short"),
            format!("{prefix}failed expression: object.metadata.name == 'x'"),
        ]
    );
    assert_eq!(
        (e.denials[0].reason.as_str(), e.denials[0].code),
        ("Forbidden", 403)
    );
    assert_eq!(e.denials[1].code, 422);
}

#[test]
fn variables_are_visible_in_order_and_fail_only_where_used() {
    let spec = r#"  variables:
  - name: containers
    expression: "object.spec.containers"
  - name: images
    expression: "variables.containers.map(c, c.image)"
  - name: broken
    expression: "object.spec.nothing"
  validations:
  - expression: "variables.images.all(i, i.contains(':'))"
    messageExpression: "'untagged: ' + variables.images.join(', ')"
"#;
    let set = set(&policy(spec, "Deny"));
    let e = eval(&set, pod(json!({}), json!([])));
    assert_eq!(
        e.denials[0].message,
        "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: untagged: nginx"
    );
    assert!(
        e.errors.is_empty(),
        "an unused broken variable is harmless: {e:?}"
    );

    let spec = r#"  variables:
  - name: broken
    expression: "object.spec.nothing"
  validations:
  - expression: "variables.broken == 1"
"#;
    let e = eval(&self::set(&policy(spec, "Deny")), pod(json!({}), json!([])));
    assert_eq!(e.errors.len(), 1, "{e:?}");
    assert!(
        e.errors[0].contains("expression 'variables.broken == 1' resulted in error: variable 'broken' failed: expression 'object.spec.nothing' resulted in error"),
        "{}",
        e.errors[0]
    );
}

#[test]
fn match_conditions_gate_the_policy() {
    let spec = r#"  matchConditions:
  - name: labelled-web
    expression: "has(object.metadata.labels) && object.metadata.labels.?app.orValue('') == 'web'"
  validations:
  - expression: "false"
"#;
    // `.?` is optional syntax the cel crate does not parse: a compile error at load.
    let err = load_error(&policy(spec, "Deny"));
    assert!(
        err.contains("spec.matchConditions[0].expression: compile error"),
        "{err}"
    );

    let spec = r#"  matchConditions:
  - name: labelled-web
    expression: "'app' in object.metadata.labels && object.metadata.labels.app == 'web'"
  - name: errs-on-unlabelled
    expression: "object.metadata.labels.tier == 'front'"
  validations:
  - expression: "false"
"#;
    let set = set(&policy(spec, "Deny"));
    // First condition false: skipped, even though the second errs.
    let e = eval(&set, pod(json!({"app": "db"}), json!([])));
    assert!(e.is_allowed() && e.errors.is_empty(), "{e:?}");
    // All true: evaluated.
    let e = eval(&set, pod(json!({"app": "web", "tier": "front"}), json!([])));
    assert_eq!(e.denials.len(), 1);
    // None false, one errs: failurePolicy (Fail by default).
    let e = eval(&set, pod(json!({"app": "web"}), json!([])));
    assert_eq!(e.errors.len(), 1, "{e:?}");
    assert!(e.errors[0].contains("No such key: tier"), "{}", e.errors[0]);
}

#[test]
fn match_constraints_rules_selectors_and_exclusions() {
    let yaml = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    namespaceSelector:
      matchExpressions: [{key: env, operator: In, values: [prod]}]
    objectSelector:
      matchLabels: {app: web}
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
    excludeResourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [pods], resourceNames: [exempt]}
  validations:
  - expression: "false"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec:
  policyName: p
  validationActions: [Deny]
"#;
    let set = set(yaml);
    let prod = namespace("default", json!({"env": "prod"}));
    let dev = namespace("default", json!({"env": "dev"}));
    let web = pod(json!({"app": "web"}), json!([]));
    let denied = |request: &AdmissionRequest, ns: &Value| !set.evaluate(request, ns).is_allowed();

    let create = pod_request(Operation::Create, "default", web.clone());
    assert!(denied(&create, &prod));
    assert!(!denied(&create, &dev), "namespaceSelector");
    let db = pod_request(
        Operation::Create,
        "default",
        pod(json!({"app": "db"}), json!([])),
    );
    assert!(!denied(&db, &prod), "objectSelector");
    let update = pod_request(Operation::Update, "default", web.clone());
    assert!(!denied(&update, &prod), "operations");
    let mut exempt = web.clone();
    exempt["metadata"]["name"] = json!("exempt");
    let exempt = pod_request(Operation::Create, "default", exempt);
    assert!(
        !denied(&exempt, &prod),
        "excludeResourceRules with resourceNames"
    );
    let mut exec = create.clone();
    exec.sub_resource = Some("exec".into());
    assert!(!denied(&exec, &prod), "pods does not match pods/exec");
}

#[test]
fn binding_match_resources_narrow_the_policy() {
    let yaml = policy("  validations:\n  - expression: \"false\"\n", "Deny").replace(
        "  validationActions: [Deny]\n",
        "  validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels: {env: prod}\n",
    );
    let set = set(&yaml);
    let request = pod_request(Operation::Create, "default", pod(json!({}), json!([])));
    assert!(!set
        .evaluate(&request, &namespace("default", json!({"env": "prod"})))
        .is_allowed());
    let e = set.evaluate(&request, &namespace("default", json!({})));
    assert!(e.is_allowed() && e.applied.is_empty(), "{e:?}");
}

const PARAMS: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-containers}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: "object.spec.containers.size() <= int(params.data.max)"
    messageExpression: "'at most ' + params.data.max + ' containers (' + params.metadata.name + ')'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: by-name}
spec:
  policyName: max-containers
  validationActions: [Deny]
  paramRef: {name: limits, parameterNotFoundAction: Deny}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: default}
data: {max: "0"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: other}
data: {max: "5"}
"#;

#[test]
fn params_by_name_in_the_request_namespace() {
    let set = set(PARAMS);
    let e = eval(&set, pod(json!({}), json!([])));
    assert_eq!(
        e.denials[0].message,
        "ValidatingAdmissionPolicy 'max-containers' with binding 'by-name' denied request: \
         at most 0 containers (limits)"
    );
    let request = pod_request(Operation::Create, "other", pod(json!({}), json!([])));
    assert!(set
        .evaluate(&request, &namespace("other", json!({})))
        .is_allowed());
    // Not found, `Deny`: the binding is misconfigured for this request; failurePolicy Fail.
    let request = pod_request(Operation::Create, "third", pod(json!({}), json!([])));
    let e = set.evaluate(&request, &namespace("third", json!({})));
    assert_eq!(
        e.errors,
        vec![
            "ValidatingAdmissionPolicy 'max-containers' with binding 'by-name' denied request: \
              failed to configure binding: no params found for policy binding with `Deny` \
              parameterNotFoundAction"
        ]
    );
    // Not found, `Allow`: nothing to evaluate.
    let allow = PARAMS.replace(
        "parameterNotFoundAction: Deny",
        "parameterNotFoundAction: Allow",
    );
    let e = self::set(&allow).evaluate(&request, &namespace("third", json!({})));
    assert!(e.is_allowed() && e.errors.is_empty(), "{e:?}");
}

#[test]
fn params_by_selector_evaluate_once_each() {
    let yaml = PARAMS
        .replace(
            "paramRef: {name: limits, parameterNotFoundAction: Deny}",
            "paramRef: {namespace: default, selector: {matchLabels: {team: a}}, parameterNotFoundAction: Deny}",
        )
        .replace(
            "metadata: {name: limits, namespace: default}\ndata: {max: \"0\"}",
            "metadata: {name: l1, namespace: default, labels: {team: a}}\ndata: {max: \"0\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: l2, namespace: default, labels: {team: a}}\ndata: {max: \"1\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: l3, namespace: default, labels: {team: b}}\ndata: {max: \"0\"}",
        );
    let set = set(&yaml);
    // paramRef.namespace wins over the request's.
    let request = pod_request(Operation::Create, "other", pod(json!({}), json!([])));
    let e = set.evaluate(&request, &namespace("other", json!({})));
    assert_eq!(e.denials.len(), 1, "{e:?}");
    assert!(e.denials[0].message.ends_with("at most 0 containers (l1)"));
}

#[test]
fn warn_and_audit_actions() {
    let spec = r#"  validations:
  - expression: "true"
  - expression: "object.metadata.name == 'other'"
    message: wrong name
  auditAnnotations:
  - key: image
    valueExpression: "object.spec.containers[0].image"
  - key: nothing
    valueExpression: "null"
"#;
    let e = eval(
        &set(&policy(spec, "Warn, Audit")),
        pod(json!({}), json!([])),
    );
    assert!(e.is_allowed());
    assert_eq!(
        e.warnings,
        vec!["Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': wrong name"]
    );
    let failure: Value =
        serde_json::from_str(&e.audit_annotations[VALIDATION_FAILURE_ANNOTATION]).unwrap();
    assert_eq!(
        failure,
        json!([{"message": "wrong name", "policy": "p", "binding": "b",
            "expressionIndex": 1, "validationActions": ["Warn", "Audit"]}])
    );
    assert_eq!(e.audit_annotations["p/image"], "nginx");
    assert!(!e.audit_annotations.contains_key("p/nothing"));
}

#[test]
fn runtime_errors_follow_failure_policy() {
    let spec = |fp: &str| {
        format!("  failurePolicy: {fp}\n  validations:\n  - expression: \"object.spec.missing.size() == 0\"\n")
    };
    let e = eval(
        &set(&policy(&spec("Fail"), "Deny")),
        pod(json!({}), json!([])),
    );
    assert!(e.denials.is_empty());
    assert_eq!(
        e.errors,
        vec![
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression \
              'object.spec.missing.size() == 0' resulted in error: No such key: missing"
        ]
    );
    let e = eval(
        &set(&policy(&spec("Ignore"), "Deny")),
        pod(json!({}), json!([])),
    );
    assert!(e.is_allowed() && e.errors.is_empty());
    assert_eq!(e.ignored.len(), 1);
    // Under Fail, an error takes the binding's actions: with Warn it is a warning.
    let e = eval(
        &set(&policy(&spec("Fail"), "Warn")),
        pod(json!({}), json!([])),
    );
    assert!(e.is_allowed());
    assert!(e.warnings[0].contains("resulted in error: No such key: missing"));
    // A non-bool result is an error too.
    let non_bool = "  validations:\n  - expression: \"object.metadata.name\"\n";
    let e = eval(&set(&policy(non_bool, "Deny")), pod(json!({}), json!([])));
    assert!(
        e.errors[0].ends_with("must evaluate to bool, not string"),
        "{e:?}"
    );
}

#[test]
fn time_limit_follows_failure_policy() {
    let spec = "  validations:\n  - expression: \"lists.range(1000).all(i, lists.range(1000).all(j, i + j >= 0))\"\n";
    let set = set(&policy(spec, "Deny")).with_time_limit(Duration::from_millis(1));
    for _ in 0..3 {
        // Each time a new worker: the one that ran out of time was abandoned.
        let e = eval(&set, pod(json!({}), json!([])));
        assert_eq!(e.errors.len(), 1, "{e:?}");
        assert!(e.errors[0].ends_with("CEL evaluation exceeded the time limit of 1 ms"));
    }
    let huge = "  validations:\n  - expression: \"lists.range(100000001).size() > 0\"\n";
    let e = eval(&self::set(&policy(huge, "Deny")), pod(json!({}), json!([])));
    assert!(
        e.errors[0].ends_with("the argument must be between 0 and 100000"),
        "{e:?}"
    );
    let ignore = policy(&format!("  failurePolicy: Ignore\n{spec}"), "Deny");
    let e = eval(
        &self::set(&ignore).with_time_limit(Duration::from_millis(1)),
        pod(json!({}), json!([])),
    );
    assert!(e.is_allowed() && e.ignored.len() == 1, "{e:?}");
}

#[test]
fn workers_are_reused_and_shared_across_threads() {
    let set = set(HOST_PATH);
    let host = json!([{"name": "r", "hostPath": {"path": "/"}}]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert_eq!(eval(&set, pod(json!({}), host.clone())).denials.len(), 1);
                }
            });
        }
    });
    assert!(set.pool.idle.lock().unwrap().len() <= 4);
}

#[test]
fn compile_errors_name_policy_expression_file_and_line() {
    let spec = "  validations:\n  - expression: \"object.spec.containers.all(c, \"\n";
    let err = load_error(&policy(spec, "Deny"));
    assert!(
        err == "policies.yaml:9: ValidatingAdmissionPolicy \"p\": spec.validations[0].expression: compile error: 1:31: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}: \"object.spec.containers.all(c, \"",
        "{err}"
    );

    let spec = "  validations:\n  - expression: \"true\"\n    messageExpression: \"'a' +\"\n";
    let err = load_error(&policy(spec, "Deny"));
    assert!(err.contains("policies.yaml:10: ValidatingAdmissionPolicy \"p\": spec.validations[0].messageExpression"), "{err}");
}

#[test]
fn typos_and_inconsistencies_are_load_errors() {
    let typo = policy("  validations:\n  - expresion: \"true\"\n", "Deny");
    assert!(load_error(&typo).contains("expresion"));
    let err = load_error(
        &policy("  validations:\n  - expression: \"true\"\n", "Deny")
            .replace("policyName: p", "policyName: q"),
    );
    assert!(
        err.contains("spec.policyName: no ValidatingAdmissionPolicy \"q\" is loaded"),
        "{err}"
    );
    let err = load_error(&policy(
        "  validations:\n  - expression: \"true\"\n",
        "Deny, Warn",
    ));
    assert!(err.contains("Deny and Warn"), "{err}");
    let err = load_error(&PARAMS.replace(
        "  paramRef: {name: limits, parameterNotFoundAction: Deny}\n",
        "",
    ));
    assert!(err.contains("spec.paramRef is required"), "{err}");
    let err = load_error(&HOST_PATH.replace(
        "admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io/v1beta1\nkind: ValidatingAdmissionPolicyBinding",
    ));
    assert!(err.contains("v1beta1"), "{err}");
}

#[test]
fn hostile_expressions_neither_crash_nor_load() {
    let long = format!("{}true", "!".repeat(MAX_EXPRESSION));
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let ternaries = format!("{}1", "true ? 1 : ".repeat(150));
    for expression in [long, deep, ternaries] {
        let spec = format!("  validations:\n  - expression: '{expression}'\n");
        let err = load_error(&policy(&spec, "Deny"));
        assert!(err.contains("compile error"), "{err}");
    }
    // The longest accepted chains compile and evaluate without exhausting the stack.
    let n = MAX_EXPRESSION / 2 - 4;
    for expression in [
        format!("1{} > 0", "+1".repeat(n)),
        format!("{}true", "!".repeat(2 * n)),
        format!("[[1]]{}[0] == 1", "[0]".repeat(n / 2 - 4)),
        format!("{}1 == 1", "-".repeat(2 * n)),
    ] {
        let spec = format!("  validations:\n  - expression: '{expression}'\n");
        let set = PolicySet::from_documents(&[(PathBuf::from("x"), policy(&spec, "Deny"))])
            .expect("the longest chains load");
        let e = eval(&set, pod(json!({}), json!([])));
        assert_eq!(e.applied, vec!["p/b"], "evaluated, whatever the verdict");
    }
}

const MAX_EXPRESSION: usize = expr::MAX_EXPRESSION_BYTES;

#[test]
fn seam_answers() {
    use crate::policy::{Answer, ValidatingPolicy};
    use std::collections::BTreeMap;
    let set = set(HOST_PATH);
    let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    let host = pod(json!({}), json!([{"name": "r", "hostPath": {"path": "/"}}]));
    let request = pod_request(Operation::Create, "default", host);
    let judgement = set.validate(&request, &labels);
    assert!(matches!(judgement.answer, Answer::Deny(m) if m.contains("hostPath")));
    let mut delete = request.clone();
    delete.operation = Operation::Delete;
    assert_eq!(set.validate(&delete, &labels).answer, Answer::Skip);
    // namespaceObject carries the labels.
    let spec = "  validations:\n  - expression: \"namespaceObject.metadata.labels.env == 'dev'\"\n";
    let warn = self::set(&policy(spec, "Warn"));
    let judgement = warn.validate(
        &pod_request(Operation::Create, "default", pod(json!({}), json!([]))),
        &labels,
    );
    assert_eq!(judgement.answer, Answer::Allow);
    assert_eq!(judgement.warnings.len(), 1);
}

#[test]
fn files_documents_and_lines() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<PolicySet>();
    let binding = HOST_PATH.split("---\n").nth(1).unwrap().to_owned();
    let policy_file = format!(
        "# policies\n---\n---   # empty document\n{}...\n",
        HOST_PATH.split("---\n").next().unwrap()
    );
    let set = PolicySet::from_documents(&[
        (PathBuf::from("a.yaml"), policy_file.clone()),
        (PathBuf::from("b.yaml"), binding),
    ])
    .expect("loads across files");
    let host = json!([{"name": "r", "hostPath": {"path": "/"}}]);
    assert_eq!(eval(&set, pod(json!({}), host)).denials.len(), 1);

    let typo = policy_file.replace("    message: hostPath", "    mesage: hostPath");
    let err = PolicySet::from_documents(&[(PathBuf::from("a.yaml"), typo)])
        .err()
        .expect("typo")
        .to_string();
    assert!(
        err.contains("a.yaml: ValidatingAdmissionPolicy: ") && err.contains("mesage"),
        "{err}"
    );
    assert!(
        err.contains("line 19"),
        "the line of the typo, counted in the file: {err}"
    );
}

#[test]
fn hostile_yaml_is_an_error_not_a_crash() {
    for text in [
        "[".repeat(100_000),
        format!("a: {}1{}", "[".repeat(5000), "]".repeat(5000)),
        "{a: &x [1], b: *x, c: *y}".to_owned(),
        "\u{0}\u{1}---\n--- ---\n...\n".to_owned(),
        "apiVersion: v1\nkind: ConfigMap\n".to_owned(),
    ] {
        let result = PolicySet::from_documents(&[(PathBuf::from("h.yaml"), text)]);
        assert!(result.is_err());
    }
}

#[test]
fn dyn_is_the_identity_as_in_kubernetes_cel() {
    let spec = "  validations:\n  - expression: \"[{'file': dyn(''), 'n': dyn(1)}].all(m, m.file == '' && m.n == 1)\"\n";
    let e = eval(&set(&policy(spec, "Deny")), pod(json!({}), json!([])));
    assert!(e.is_allowed(), "{e:?}");
}
