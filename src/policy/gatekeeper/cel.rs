//! `K8sNativeValidation` templates on the CEL engine of `policy::vap`, the way Gatekeeper
//! runs them (`pkg/drivers/k8scel`) and generates ValidatingAdmissionPolicies from them:
//! each template becomes a policy whose `paramKind` is its Constraint kind, with
//! Gatekeeper's two variables first — `anyObject` (the object, or the old object of a
//! DELETE) and `params` (the Constraint's `spec.parameters`) — then the template's
//! variables, `matchCondition`s and validations; each Constraint becomes a binding that
//! names it as params. Which Constraints apply is decided by `matching`, as for Rego, so
//! the generated policies match every request and only the matched bindings are run.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::compile::{Constraint, Template};
use super::types::CelSource;
use crate::policy::vap::{LoadError, PolicySet};

/// Gatekeeper's reserved names (`pkg/drivers/k8scel/schema`).
const RESERVED_PREFIX: &str = "gatekeeper_internal_";
const PARAMS: &str = "params";
const ANY_OBJECT: &str = "anyObject";
/// The apiVersion the generated policies name for every Constraint.
const PARAM_API_VERSION: &str = "constraints.gatekeeper.sh/v1beta1";

/// Gatekeeper's checks of a source; the error is relative to `code[i].source`.
pub(crate) fn check_source(source: &CelSource) -> Result<(), String> {
    for (i, c) in source.match_condition.iter().enumerate() {
        if c.name.starts_with(RESERVED_PREFIX) {
            return Err(format!(
                "matchCondition[{i}].name: {:?} cannot have {RESERVED_PREFIX:?} as a prefix",
                c.name
            ));
        }
    }
    for (i, v) in source.variables.iter().enumerate() {
        if v.name.starts_with(RESERVED_PREFIX) || v.name == PARAMS || v.name == ANY_OBJECT {
            return Err(format!(
                "variables[{i}].name: {:?} is reserved by Gatekeeper ({PARAMS}, {ANY_OBJECT}, \
                 {RESERVED_PREFIX}*)",
                v.name
            ));
        }
    }
    match source.failure_policy.as_deref() {
        None | Some("Fail") | Some("Ignore") => {}
        Some(other) => return Err(format!("failurePolicy: {other:?}; use Fail or Ignore")),
    }
    if source.validations.is_empty() {
        return Err("validations: empty; a template judges with at least one".into());
    }
    Ok(())
}

/// The binding name of a Constraint: kind and name (names are unique per kind).
pub(crate) fn binding_name(c: &Constraint) -> String {
    format!("{}.{}", c.kind.to_lowercase(), c.name)
}

/// The generated policies, bindings and params, when any template runs on CEL; each
/// Constraint's binding index in the set (None for Rego ones).
pub(crate) fn build(
    templates: &[Template],
    constraints: &[Constraint],
) -> Result<Option<(PolicySet, Vec<Option<usize>>)>, LoadError> {
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
            docs.push((PathBuf::from(&t.file), param.to_string()));
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
