//! A document no reader takes is an error, not a silent params object: a Kyverno
//! ClusterPolicy dropped into `policyDir` must not look enforced. (Gatekeeper's kinds
//! are `policy::gatekeeper`'s, never params: `gatekeeper_kinds_are_not_params`.)

use std::path::PathBuf;

use super::PolicySet;

const KYVERNO: &str = "apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-labels}
spec: {validationFailureAction: Enforce, rules: []}
";

const TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec: {crd: {spec: {names: {kind: K8sRequiredLabels}}}}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: owner}
";

const PARAMS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: limits, namespace: default}
data: {max: '3'}
";

const POLICY_WITH_PARAMS: &str = "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  validations: [{expression: 'true'}]
";

fn docs(text: &str) -> Vec<(PathBuf, String)> {
    vec![(PathBuf::from("dir/gatekeeper.yaml"), text.to_owned())]
}

#[test]
fn a_kind_nothing_reads_is_an_error_naming_the_file_apiversion_kind_and_the_fix() {
    let e = match PolicySet::from_documents(&docs(KYVERNO)) {
        Ok(_) => panic!("a Kyverno ClusterPolicy loaded as if it were read"),
        Err(e) => e.to_string(),
    };
    for part in [
        "dir/gatekeeper.yaml",
        "apiVersion kyverno.io/v1",
        "kind ClusterPolicy",
        "policyDirIgnore",
    ] {
        assert!(e.contains(part), "no {part:?} in {e}");
    }
    // A ConfigMap no policy takes as params is read by nothing either.
    assert!(PolicySet::from_documents(&docs(PARAMS)).is_err());
}

#[test]
fn params_a_policy_names_and_ignored_kinds_load() {
    let both = format!("{POLICY_WITH_PARAMS}---\n{PARAMS}");
    assert!(PolicySet::from_documents(&docs(&both)).is_ok());
    let ignored = [("kyverno.io/v1".to_owned(), "ClusterPolicy".to_owned())];
    let set = PolicySet::from_documents_ignoring(&docs(KYVERNO), &ignored);
    assert!(set.is_ok_and(|s| s.is_empty()));
}

#[test]
fn gatekeeper_kinds_are_not_params() {
    let set = PolicySet::from_documents(&docs(TEMPLATE));
    assert!(set.is_ok_and(|s| s.is_empty()));
}
