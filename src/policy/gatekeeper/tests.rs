//! Gatekeeper's contract on templates of both forms: loading, matching, enforcement
//! actions, messages, exemptions. The library's own suites run in `tests/gatekeeper.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::config::GatekeeperEngine::{self, K8sNativeValidation, Rego};
use crate::policy::{Answer, ValidatingPolicy};
use crate::review::AdmissionRequest;

const LIBRARY: &str = "tests/fixtures/gatekeeper-library";

fn library(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(LIBRARY)
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_with(
    docs: &[(&str, String)],
    engines: &[GatekeeperEngine],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Option<Gatekeeper>, LoadError> {
    let docs: Vec<(PathBuf, String)> = docs
        .iter()
        .map(|(name, text)| (PathBuf::from(name), text.clone()))
        .collect();
    let settings = Settings {
        ignored: &[],
        engines,
        namespaces,
        time_limit: Duration::from_millis(500),
    };
    Gatekeeper::load(&docs, &settings)
}

fn load(docs: &[(&str, String)], engines: &[GatekeeperEngine]) -> Gatekeeper {
    load_with(docs, engines, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("Gatekeeper documents")
}

fn pod_request(pod: Value) -> AdmissionRequest {
    crate::hook::request::pod_request(pod, "test")
}

fn host_pid_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox"}]}})
}

fn host_namespaces(action: &str) -> Vec<(&'static str, String)> {
    vec![
        ("template.yaml", library("host-namespaces/template.yaml")),
        (
            "constraint.yaml",
            format!(
                "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sPSPHostNamespace\n\
                 metadata: {{name: psp-host-namespace}}\n\
                 spec:\n  enforcementAction: {action}\n  match:\n    kinds: [{{apiGroups: [''], kinds: [Pod]}}]\n"
            ),
        ),
    ]
}

#[test]
fn a_cel_template_denies_in_gatekeepers_words() {
    let gk = load(&host_namespaces("deny"), &[K8sNativeValidation]);
    let labels = BTreeMap::new();
    let judgement = gk.validate(&pod_request(host_pid_pod("nginx")), &labels);
    assert_eq!(
        judgement.answer,
        Answer::Deny(
            "[psp-host-namespace] Sharing the host namespace is not allowed: nginx".into()
        )
    );
    assert_eq!(
        gk.denial("[c] m"),
        "admission webhook \"portcullis\" denied the request: [c] m"
    );
    let mut fine = host_pid_pod("nginx");
    fine["spec"]["hostPID"] = json!(false);
    assert_eq!(
        gk.validate(&pod_request(fine), &labels).answer,
        Answer::Allow
    );
}

#[test]
fn warn_warns_dryrun_stays_silent_and_audit_sees_both() {
    let labels = BTreeMap::new();
    let request = pod_request(host_pid_pod("nginx"));
    let warn = load(&host_namespaces("warn"), &[K8sNativeValidation]);
    let judgement = warn.validate(&request, &labels);
    assert_eq!(judgement.answer, Answer::Allow);
    assert_eq!(
        judgement.warnings,
        ["[psp-host-namespace] Sharing the host namespace is not allowed: nginx"]
    );
    let dryrun = load(&host_namespaces("dryrun"), &[K8sNativeValidation]);
    let judgement = dryrun.validate(&request, &labels);
    assert_eq!(judgement.answer, Answer::Allow);
    assert!(judgement.warnings.is_empty());
    let findings = dryrun.audit(&request, &labels);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].policy, "K8sPSPHostNamespace/psp-host-namespace");
    assert_eq!(findings[0].action, "dryrun");
}

#[test]
fn a_constraint_without_its_template_or_with_a_bad_field_is_a_load_error() {
    let orphan = vec![("c.yaml", host_namespaces("deny").remove(1).1)];
    let e = load_with(&orphan, &[Rego], &BTreeMap::new())
        .err()
        .expect("an error")
        .to_string();
    assert!(
        e.starts_with("c.yaml:1: K8sPSPHostNamespace \"psp-host-namespace\""),
        "{e}"
    );
    assert!(e.contains("no ConstraintTemplate"), "{e}");
    let mut docs = host_namespaces("block");
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error");
    assert!(e.to_string().contains("spec.enforcementAction"), "{e}");
    docs[1].1 = docs[1].1.replace("kinds: [{", "kinds: [{kindz: [], ");
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error");
    assert!(e.to_string().contains("kindz"), "{e}");
}

#[test]
fn a_template_with_no_code_for_the_configured_engines_is_a_load_error() {
    let docs = vec![("t.yaml", library("allowedrepos/template.yaml"))];
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error");
    let e = e.to_string();
    assert!(
        e.contains("t.yaml:1: ConstraintTemplate \"k8sallowedrepos\""),
        "{e}"
    );
    assert!(e.contains("gatekeeper.engines"), "{e}");
}

#[test]
fn the_process_config_exempts_namespaces_per_process() {
    let mut docs = host_namespaces("deny");
    docs.push((
        "config.yaml",
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config}\n\
         spec:\n  match:\n  - excludedNamespaces: [kube-*]\n    processes: [webhook]\n"
            .into(),
    ));
    let gk = load(&docs, &[K8sNativeValidation]);
    let labels = BTreeMap::new();
    let mut pod = host_pid_pod("nginx");
    pod["metadata"]["namespace"] = json!("kube-system");
    let request = pod_request(pod);
    assert_eq!(gk.validate(&request, &labels).answer, Answer::Skip);
    assert_eq!(
        gk.audit(&request, &labels).len(),
        1,
        "audit is not exempted"
    );
    docs[2].1 = docs[2].1.replace("[webhook]", "[webhook, controller]");
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error");
    assert!(e.to_string().contains("processes[1]"), "{e}");
}

#[test]
fn subresources_and_other_operations_are_not_judged() {
    let gk = load(&host_namespaces("deny"), &[K8sNativeValidation]);
    let labels = BTreeMap::new();
    let mut request = pod_request(host_pid_pod("nginx"));
    request.sub_resource = Some("resize".into());
    assert_eq!(gk.validate(&request, &labels).answer, Answer::Skip);
}

#[test]
fn parameters_are_checked_against_the_template_schema_at_load() {
    let template = library("privileged-containers/template.yaml");
    let constraint = |params: &str| {
        format!(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sPSPPrivilegedContainer\n\
             metadata: {{name: p}}\nspec:\n  parameters: {params}\n"
        )
    };
    let ok = vec![
        ("t.yaml", template.clone()),
        ("c.yaml", constraint("{exemptImages: [safe.example/*]}")),
    ];
    assert!(load_with(&ok, &[K8sNativeValidation], &BTreeMap::new()).is_ok());
    for (params, needle) in [
        (
            "{exemptImage: [safe.example/*]}",
            "spec.parameters.exemptImage",
        ),
        (
            "{exemptImages: safe.example}",
            "spec.parameters.exemptImages",
        ),
    ] {
        let docs = vec![("t.yaml", template.clone()), ("c.yaml", constraint(params))];
        let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
            .err()
            .expect("a schema error")
            .to_string();
        assert!(
            e.starts_with("c.yaml:1: K8sPSPPrivilegedContainer \"p\""),
            "{e}"
        );
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn the_constraints_of_a_template_that_failed_are_not_reported_again() {
    let mut docs = host_namespaces("deny");
    docs[0].1 = docs[0]
        .1
        .replace("name: k8spsphostnamespace", "name: wrong-name");
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error");
    assert_eq!(e.issues.len(), 1, "{e}");
    assert!(
        e.to_string()
            .contains("must be spec.crd.spec.names.kind in lowercase"),
        "{e}"
    );
}

#[test]
fn scoped_actions_warn_at_admission_and_deny_in_audit() {
    let scoped = "scoped\n  scopedEnforcementActions:\n  - {action: warn, enforcementPoints: [{name: validation.gatekeeper.sh}]}\n  - {action: deny, enforcementPoints: [{name: audit.gatekeeper.sh}]}";
    let gk = load(&host_namespaces(scoped), &[Rego]);
    let labels = BTreeMap::new();
    let request = pod_request(host_pid_pod("nginx"));
    let judgement = gk.validate(&request, &labels);
    assert_eq!(judgement.answer, Answer::Allow);
    assert_eq!(judgement.warnings.len(), 1, "{judgement:?}");
    let findings = gk.audit(&request, &labels);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].action, "deny");
}

#[test]
fn the_rego_form_denies_in_gatekeepers_words_too() {
    let gk = load(&host_namespaces("deny"), &[Rego]);
    let judgement = gk.validate(&pod_request(host_pid_pod("nginx")), &BTreeMap::new());
    assert_eq!(
        judgement.answer,
        Answer::Deny(
            "[psp-host-namespace] Sharing the host namespace is not allowed: nginx".into()
        )
    );
    // The legacy form (targets[].rego + libs) loads and judges the same.
    let docs = vec![
        ("t.yaml", library("allowedrepos/template.yaml")),
        (
            "c.yaml",
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sAllowedRepos\nmetadata: {name: repos}\n\
             spec:\n  parameters: {repos: [docker.io/library/]}\n"
                .into(),
        ),
    ];
    let gk = load(&docs, &[Rego]);
    let mut pod = host_pid_pod("web");
    pod["spec"]["containers"][0]["image"] = json!("evil.example/miner:1");
    let judgement = gk.validate(&pod_request(pod), &BTreeMap::new());
    match judgement.answer {
        Answer::Deny(m) => assert!(
            m.starts_with("[repos] container <c> has an invalid image repo"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cel_match_conditions_take_gatekeepers_spelling() {
    let mut docs = host_namespaces("deny");
    docs[0].1 = docs[0].1.replace(
        "        source:\n          variables:",
        "        source:\n          matchConditions: [{name: a, expression: 'true'}]\n          variables:",
    );
    assert!(docs[0].1.contains("matchConditions"));
    let e = load_with(&docs, &[K8sNativeValidation], &BTreeMap::new())
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("matchCondition` (singular)"), "{e}");
}
