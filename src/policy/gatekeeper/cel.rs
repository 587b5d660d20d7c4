//! `K8sNativeValidation` templates on the CEL engine of `policy::vap`, the way Gatekeeper
//! runs them (`pkg/drivers/k8scel`) and generates ValidatingAdmissionPolicies from them:
//! each template becomes a policy whose `paramKind` is its Constraint kind, with
//! Gatekeeper's two variables first — `anyObject` (the object, or the old object of a
//! DELETE) and `params` (the Constraint's `spec.parameters`) — then the template's
//! variables, `matchCondition`s and validations; each Constraint becomes a binding that
//! names it as params. Which Constraints apply is decided by `matching`, as for Rego, so
//! the generated policies match every request and only the matched bindings are run.

use serde_json::{json, Value};

use super::compile::{Constraint, Template};
use super::compile::{ANY_OBJECT, PARAMS};
use super::types::CelSource;
use crate::policy::vap::{LoadError, PolicySet};

/// The apiVersion the generated policies name for every Constraint.
const PARAM_API_VERSION: &str = "constraints.gatekeeper.sh/v1beta1";

/// The generated set, and each Constraint's binding in it.
pub(crate) type Generated = (PolicySet, Vec<Option<usize>>);

/// The binding name of a Constraint: kind and name (names are unique per kind).
pub(crate) fn binding_name(c: &Constraint) -> String {
    format!("{}.{}", c.kind.to_lowercase(), c.name)
}

/// The generated policies, bindings and params, when any template runs on CEL; each
/// Constraint's binding index in the set (None for Rego ones).
pub(crate) fn build(
    templates: &[Template],
    constraints: &[Constraint],
) -> Result<Option<Generated>, LoadError> {
    let mut docs = Vec::new();
    for t in templates {
        if let super::compile::Code::Cel(source) = &t.code {
            docs.push((t.file.clone(), policy(t, source).to_string()));
        }
    }
    if docs.is_empty() {
        return Ok(None);
    }
    for c in constraints {
        let t = &templates[c.template];
        if matches!(t.code, super::compile::Code::Cel(_)) {
            let mut param = c.object.clone();
            param["apiVersion"] = json!(PARAM_API_VERSION);
            docs.push((t.file.clone(), binding(t, c).to_string()));
            docs.push((t.file.clone(), param.to_string()));
        }
    }
    let set = PolicySet::from_gatekeeper_documents(&docs)?;
    let indices = constraints
        .iter()
        .map(|c| match templates[c.template].code {
            super::compile::Code::Cel(_) => set.binding_index(&binding_name(c)),
            super::compile::Code::Rego(_) => None,
        })
        .collect();
    Ok(Some((set, indices)))
}

fn policy(t: &Template, source: &CelSource) -> Value {
    let mut variables = vec![
        json!({"name": ANY_OBJECT, "expression":
            r#"has(request.operation) && request.operation == "DELETE" && object == null ? oldObject : object"#}),
        json!({"name": PARAMS, "expression":
            "!has(params.spec) ? null : !has(params.spec.parameters) ? null: params.spec.parameters"}),
    ];
    variables.extend(source.variables.iter().map(|v| json!(v)));
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": t.name},
        "spec": {
            "paramKind": {"apiVersion": PARAM_API_VERSION, "kind": t.kind},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["*"], "apiVersions": ["*"],
                "operations": ["*"], "resources": ["*", "*/*"],
            }]},
            "failurePolicy": source.failure_policy.as_deref().unwrap_or("Fail"),
            "matchConditions": source.match_condition,
            "variables": variables,
            "validations": source.validations,
        },
    })
}

fn binding(t: &Template, c: &Constraint) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": binding_name(c)},
        "spec": {
            "policyName": t.name,
            "paramRef": {"name": c.name, "parameterNotFoundAction": "Deny"},
            "validationActions": ["Deny"],
        },
    })
}
