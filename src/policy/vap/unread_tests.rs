//! A document no reader takes is an error, not a silent params object: a Gatekeeper
//! ConstraintTemplate dropped into `policyDir` must not look enforced.

use std::path::PathBuf;

use super::PolicySet;

const TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec: {crd: {spec: {names: {kind: K8sRequiredLabels}}}}
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
    let e = match PolicySet::from_documents(&docs(TEMPLATE)) {
        Ok(_) => panic!("a ConstraintTemplate loaded as if it were read"),
        Err(e) => e.to_string(),
    };
    for part in [
        "dir/gatekeeper.yaml",
        "apiVersion templates.gatekeeper.sh/v1",
        "kind ConstraintTemplate",
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
    let ignored = [(
        "templates.gatekeeper.sh/v1".to_owned(),
        "ConstraintTemplate".to_owned(),
    )];
    let set = PolicySet::from_documents_ignoring(&docs(TEMPLATE), &ignored);
    assert!(set.is_ok_and(|s| s.is_empty()));
}
