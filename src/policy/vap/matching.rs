//! Which requests a policy and a binding apply to, and which params a binding uses —
//! upstream `generic.PolicyMatcher` (k8s.io/apiserver/pkg/admission/plugin/policy/matching)
//! and `generic.CollectParams`, without an API server: every match is `Exact`, and
//! params come from the loaded documents.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compiled::{Binding, Param, Policy};
use super::types::*;
use crate::policy::matching as webhook;
use crate::review::AdmissionRequest;

const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Upstream `Matcher.Matches`: namespace selector, object selector, not excluded, and one
/// of the rules. `rules_required` is false for a binding, whose empty `resourceRules`
/// does not narrow the policy's.
pub(crate) fn matches(
    m: &MatchResources,
    rules_required: bool,
    request: &AdmissionRequest,
    namespace: &Value,
) -> bool {
    namespace_matches(m.namespace_selector.as_ref(), request, namespace)
        && object_matches(m.object_selector.as_ref(), request)
        && !m
            .exclude_resource_rules
            .iter()
            .any(|r| rule_matches(r, request))
        && ((!rules_required && m.resource_rules.is_empty())
            || m.resource_rules.iter().any(|r| rule_matches(r, request)))
}

/// The webhook rule match (policy::matching) plus `resourceNames`.
fn rule_matches(rule: &NamedRuleWithOperations, request: &AdmissionRequest) -> bool {
    let gvr = &request.resource;
    let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
    let sub = request.sub_resource.as_deref().unwrap_or("");
    webhook::operation_matches(&rule.operations, request.operation)
        && any(&rule.api_groups, &gvr.group)
        && any(&rule.api_versions, &gvr.version)
        && webhook::resource_matches(&rule.resources, &gvr.resource, sub)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&request.name))
        && webhook::scope_matches(rule.scope, request)
}

pub(crate) use webhook::is_namespace_resource as is_namespace;
use webhook::object_matches;

fn namespace_matches(
    selector: Option<&LabelSelector>,
    request: &AdmissionRequest,
    namespace: &Value,
) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let (object, name) = if is_namespace(request) {
        let object = request.object.as_ref().or(request.old_object.as_ref());
        (object.unwrap_or(&Value::Null), request.name.as_str())
    } else if request.namespace.is_empty() {
        // Cluster-scoped requests are never exempted by a namespace selector.
        return true;
    } else {
        (namespace, request.namespace.as_str())
    };
    let mut labels = labels_of(object);
    labels
        .entry(NAMESPACE_NAME_LABEL.into())
        .or_insert_with(|| name.to_owned());
    selector.matches(&labels)
}

/// `metadata.labels`, string values only.
fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What a binding evaluates with.
pub(crate) enum Params<'a> {
    /// The policy has no `paramKind`: one evaluation, `params` is null.
    None,
    /// One evaluation per params object.
    Some(Vec<&'a Param>),
    /// No params and `parameterNotFoundAction: Allow`: nothing to evaluate.
    NotFoundAllowed,
}

/// Upstream `CollectParams`. A params kind is namespaced when any loaded object of that
/// kind has a namespace; then the binding's `paramRef.namespace`, or else the request's,
/// says where to look.
pub(crate) fn collect_params<'a>(
    policy: &Policy,
    binding: &Binding,
    params: &'a [Param],
    request: &AdmissionRequest,
) -> Result<Params<'a>, String> {
    let (Some(kind), Some(r)) = (&policy.param_kind, &binding.param_ref) else {
        return Ok(Params::None);
    };
    let of_kind: Vec<&Param> = params
        .iter()
        .filter(|p| p.api_version == kind.api_version && p.kind == kind.kind)
        .collect();
    let namespaced = of_kind.iter().any(|p| !p.namespace.is_empty());
    let namespace = match r.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => ns,
        None if namespaced && request.namespace.is_empty() => {
            return Err("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into());
        }
        None => request.namespace.as_str(),
    };
    let mut found: Vec<&Param> = of_kind
        .into_iter()
        .filter(|p| !namespaced || p.namespace == namespace)
        .filter(|p| match (&r.name, &r.selector) {
            (Some(name), _) => &p.name == name,
            (None, Some(selector)) => selector.matches(&p.labels),
            (None, None) => false,
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    if !found.is_empty() {
        return Ok(Params::Some(found));
    }
    match r.parameter_not_found_action {
        Some(ParameterNotFoundAction::Allow) => Ok(Params::NotFoundAllowed),
        _ => Err("no params found for policy binding with `Deny` parameterNotFoundAction".into()),
    }
}
