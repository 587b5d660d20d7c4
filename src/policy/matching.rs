//! Whether a webhook is called for a request, as kube-apiserver's `ShouldCallHook`
//! decides it (k8s.io/apiserver/pkg/admission/plugin/webhook/predicates): one of `rules`
//! matches (no rules, no call), then `namespaceSelector`, then `objectSelector`.
//!
//! Without an API server there is no discovery, so every match is `matchPolicy: Exact`,
//! and a namespace's labels are those of the `namespaces:` config plus the one Kubernetes
//! always sets, `kubernetes.io/metadata.name: <namespace>` (a request for a Namespace
//! object itself uses that object's labels, as upstream).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::webhook::{
    LabelSelector, OperationType, RuleWithOperations, Scope, WebhookConfig,
};
use crate::review::{AdmissionRequest, Operation};

/// The label Kubernetes puts on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Pure: does `webhook` apply to `request`, in a namespace with only the name label?
#[cfg(test)]
pub fn should_call(webhook: &WebhookConfig, request: &AdmissionRequest) -> bool {
    should_call_in(webhook, request, &name_label(&request.namespace))
}

/// Pure: does `webhook` apply to `request` in a namespace labelled `namespace_labels`
/// (the `namespaces:` config plus the name label)?
pub fn should_call_in(
    webhook: &WebhookConfig,
    request: &AdmissionRequest,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    webhook.rules.iter().any(|rule| rule_matches(rule, request))
        && namespace_matches(
            webhook.namespace_selector.as_ref(),
            request,
            namespace_labels,
        )
        && object_matches(webhook.object_selector.as_ref(), request)
}

/// The labels of a namespace nothing else is known about.
pub fn name_label(namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), namespace.to_owned())])
}

/// Upstream `rules.Matcher.Matches`.
pub fn rule_matches(rule: &RuleWithOperations, request: &AdmissionRequest) -> bool {
    let gvr = &request.resource;
    let wildcard_or = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
    operation_matches(&rule.operations, request.operation)
        && wildcard_or(&rule.api_groups, &gvr.group)
        && wildcard_or(&rule.api_versions, &gvr.version)
        && resource_matches(
            &rule.resources,
            &gvr.resource,
            request.sub_resource.as_deref().unwrap_or(""),
        )
        && scope_matches(rule.scope, request)
}

pub(crate) fn operation_matches(ops: &[OperationType], op: Operation) -> bool {
    ops.iter().any(|o| {
        matches!(
            (o, op),
            (OperationType::All, _)
                | (OperationType::Create, Operation::Create)
                | (OperationType::Update, Operation::Update)
                | (OperationType::Delete, Operation::Delete)
                | (OperationType::Connect, Operation::Connect)
        )
    })
}

/// `pods` matches only the resource itself; `pods/exec` the subresource; `*` every resource
/// but no subresource; `*/*` everything; `pods/*` and `*/exec` as they read.
pub(crate) fn resource_matches(resources: &[String], resource: &str, sub: &str) -> bool {
    resources.iter().any(|entry| {
        let (res, want_sub) = entry.split_once('/').unwrap_or((entry.as_str(), ""));
        (res == "*" || res == resource) && (want_sub == "*" || want_sub == sub)
    })
}

pub(crate) fn is_namespace_resource(request: &AdmissionRequest) -> bool {
    let r = &request.resource;
    r.group.is_empty() && r.version == "v1" && r.resource == "namespaces"
}

pub(crate) fn scope_matches(scope: Option<Scope>, request: &AdmissionRequest) -> bool {
    match scope {
        None | Some(Scope::All) => true,
        // Namespace objects are cluster-scoped even though their requests carry a namespace.
        Some(Scope::Namespaced) => !is_namespace_resource(request) && !request.namespace.is_empty(),
        Some(Scope::Cluster) => is_namespace_resource(request) || request.namespace.is_empty(),
    }
}

/// Upstream `namespace.Matcher.MatchNamespaceSelector`.
fn namespace_matches(
    selector: Option<&LabelSelector>,
    request: &AdmissionRequest,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    if is_namespace_resource(request) {
        let name = if request.name.is_empty() {
            &request.namespace
        } else {
            &request.name
        };
        let object = request.object.as_ref().or(request.old_object.as_ref());
        let mut labels = object.and_then(object_labels).unwrap_or_default();
        labels
            .entry(NAMESPACE_NAME_LABEL.into())
            .or_insert_with(|| name.clone());
        return selector.matches(&labels);
    }
    if request.namespace.is_empty() {
        // Cluster-scoped requests are never exempted by a namespace selector.
        return true;
    }
    selector.matches(namespace_labels)
}

/// Upstream `object.Matcher.MatchObjectSelector`: the new or the old object may match.
pub(crate) fn object_matches(selector: Option<&LabelSelector>, request: &AdmissionRequest) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    [&request.object, &request.old_object]
        .into_iter()
        .flatten()
        .filter_map(object_labels)
        .any(|labels| selector.matches(&labels))
}

/// `metadata.labels` of an object; `None` when it is not a Kubernetes-shaped object.
fn object_labels(object: &Value) -> Option<BTreeMap<String, String>> {
    let object = object.as_object()?;
    let labels = match object.get("metadata") {
        None | Some(Value::Null) => return Some(BTreeMap::new()),
        Some(meta) => match meta.as_object()?.get("labels") {
            None | Some(Value::Null) => return Some(BTreeMap::new()),
            Some(labels) => labels.as_object()?,
        },
    };
    labels
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{GroupVersionKind, GroupVersionResource};
    use serde_json::json;

    fn webhook(extra: &str) -> WebhookConfig {
        let yaml = format!("name: w\nclientConfig: {{url: 'https://h'}}\n{extra}");
        let w: WebhookConfig = serde_saphyr::from_str(&yaml).unwrap();
        w.validate().unwrap();
        w
    }

    fn pod(op: Operation, sub: Option<&str>) -> AdmissionRequest {
        let mut r = AdmissionRequest::new(
            op,
            GroupVersionKind::core("Pod"),
            GroupVersionResource::core("pods"),
            sub,
        );
        r.namespace = "default".into();
        r.name = "p".into();
        r.object = Some(json!({"metadata": {"name": "p", "labels": {"app": "web"}}}));
        r
    }

    const PODS: &str =
        "rules: [{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}]\n";

    #[test]
    fn no_rules_no_call() {
        assert!(!should_call(&webhook(""), &pod(Operation::Create, None)));
        assert!(!should_call(
            &webhook("rules: []\n"),
            &pod(Operation::Create, None)
        ));
    }

    #[test]
    fn rules() {
        let create = pod(Operation::Create, None);
        let exec = pod(Operation::Connect, Some("exec"));
        assert!(should_call(&webhook(PODS), &create));
        assert!(!should_call(&webhook(PODS), &pod(Operation::Update, None)));
        assert!(!should_call(&webhook(PODS), &exec));
        let rule = |ops: &str, groups: &str, versions: &str, res: &str| {
            webhook(&format!(
                "rules: [{{operations: [{ops}], apiGroups: [{groups}], apiVersions: [{versions}], resources: [{res}]}}]\n"
            ))
        };
        assert!(should_call(&rule("'*'", "'*'", "'*'", "'*'"), &create));
        assert!(
            !should_call(&rule("'*'", "'*'", "'*'", "'*'"), &exec),
            "* does not match subresources"
        );
        assert!(should_call(&rule("'*'", "'*'", "'*'", "'*/*'"), &exec));
        assert!(should_call(
            &rule("CONNECT", "''", "v1", "pods/exec"),
            &exec
        ));
        assert!(should_call(&rule("CONNECT", "''", "v1", "'pods/*'"), &exec));
        assert!(should_call(&rule("CONNECT", "''", "v1", "'*/exec'"), &exec));
        assert!(!should_call(
            &rule("CONNECT", "''", "v1", "pods/attach"),
            &exec
        ));
        assert!(!should_call(&rule("'*'", "apps", "'*'", "'*'"), &create));
        assert!(!should_call(&rule("'*'", "''", "v2", "'*'"), &create));
        assert!(!should_call(
            &rule("'*'", "''", "v1", "deployments"),
            &create
        ));
    }

    #[test]
    fn scope() {
        let rule = |scope: &str| {
            webhook(&format!(
                "rules: [{{operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'], scope: '{scope}'}}]\n"
            ))
        };
        let namespaced = pod(Operation::Create, None);
        let mut node = namespaced.clone();
        node.namespace.clear();
        node.resource = GroupVersionResource::core("nodes");
        let mut ns = node.clone();
        ns.resource = GroupVersionResource::core("namespaces");
        ns.namespace = "team".into();
        assert!(should_call(&rule("Namespaced"), &namespaced));
        assert!(!should_call(&rule("Namespaced"), &node));
        assert!(!should_call(&rule("Namespaced"), &ns));
        assert!(!should_call(&rule("Cluster"), &namespaced));
        assert!(should_call(&rule("Cluster"), &node));
        assert!(should_call(&rule("Cluster"), &ns));
        assert!(should_call(&rule("*"), &node));
    }

    #[test]
    fn namespace_selector() {
        let sel = |s: &str| webhook(&format!("{PODS}namespaceSelector: {s}\n"));
        let req = pod(Operation::Create, None);
        assert!(should_call(&sel("{}"), &req));
        assert!(should_call(
            &sel("{matchLabels: {kubernetes.io/metadata.name: default}}"),
            &req
        ));
        assert!(!should_call(
            &sel("{matchLabels: {kubernetes.io/metadata.name: other}}"),
            &req
        ));
        assert!(!should_call(
            &sel("{matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [default]}]}"),
            &req
        ));
        assert!(
            !should_call(&sel("{matchLabels: {team: a}}"), &req),
            "namespaces have only the name label"
        );
        let mut cluster = req.clone();
        cluster.namespace.clear();
        assert!(
            should_call(&sel("{matchLabels: {team: a}}"), &cluster),
            "cluster-scoped is never exempt"
        );
    }

    #[test]
    fn object_selector() {
        let sel = |s: &str| webhook(&format!("{PODS}objectSelector: {s}\n"));
        let mut req = pod(Operation::Create, None);
        assert!(should_call(&sel("{matchLabels: {app: web}}"), &req));
        assert!(!should_call(&sel("{matchLabels: {app: db}}"), &req));
        assert!(should_call(
            &sel("{matchExpressions: [{key: app, operator: DoesNotExist}]}"),
            &{
                let mut r = req.clone();
                r.object = Some(json!({"metadata": {"name": "p"}}));
                r
            }
        ));
        // The old object counts too.
        req.old_object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
        assert!(should_call(&sel("{matchLabels: {app: db}}"), &req));
        // No object at all, or not an object: no match.
        req.object = None;
        req.old_object = Some(json!("garbage"));
        assert!(!should_call(&sel("{matchLabels: {app: web}}"), &req));
        assert!(should_call(&sel("{}"), &req));
    }
}
