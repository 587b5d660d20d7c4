//! Kubernetes objects other than Pods, and AdmissionReviews written by hand, as `check`
//! reads them: the request kube-apiserver would have sent a webhook. Gatekeeper policies
//! judge any kind (a Namespace's labels, a Service's ports), and the suites of the
//! gatekeeper-library feed `gator` Namespaces and bare reviews (`operation` and `object`,
//! nothing else); `check` reads the same files. The Pod-only built-in policies skip
//! these objects as they skip every non-Pod request.

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::review::pod_view::template_pointer;
use crate::review::{shape, AdmissionRequest, GroupVersionResource, Operation, UserInfo};

/// Who asks, in every request `check` builds.
pub const USERNAME: &str = "portcullis-check";

/// The cluster-scoped kinds of the built-in API groups, by group, as kube-apiserver serves
/// them (`kubectl api-resources --namespaced=false`); every Constraint kind
/// (`constraints.gatekeeper.sh`) is too. Other kinds are taken to be namespaced.
const CLUSTER_SCOPED: &[(&str, &[&str])] = &[
    (
        "",
        &["Namespace", "Node", "PersistentVolume", "ComponentStatus"],
    ),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding"],
    ),
    (
        "storage.k8s.io",
        &["StorageClass", "CSIDriver", "CSINode", "VolumeAttachment"],
    ),
    ("scheduling.k8s.io", &["PriorityClass"]),
    ("node.k8s.io", &["RuntimeClass"]),
    ("networking.k8s.io", &["IngressClass"]),
    ("policy", &["PodSecurityPolicy"]),
    ("certificates.k8s.io", &["CertificateSigningRequest"]),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "admissionregistration.k8s.io",
        &[
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    ("templates.gatekeeper.sh", &["ConstraintTemplate"]),
    ("constraints.gatekeeper.sh", &["*"]),
];

/// Built-in kinds whose resource is not the plural
/// [`AdmissionRequest::for_object`] forms (lower case, `-s`/`-es`/`-ies`), by group.
const RESOURCES: &[(&str, &str, &str)] = &[("", "Endpoints", "endpoints")];

/// A CREATE of `object` (any kind with `apiVersion`, `kind` and `metadata.name`); a
/// namespaced object without a namespace is in `namespace`, as `kubectl apply` puts it.
pub fn object_request(mut object: Value, namespace: &str) -> anyhow::Result<AdmissionRequest> {
    check_object(&object, "", true)?;
    let (group, _) = api_group(&object);
    let group = group.to_owned();
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    // A workload carries a Pod template the Pod policies read: checked as a Pod file is.
    if let Some(pointer) = template_pointer(&group, &kind) {
        fill_containers(&mut object, pointer);
        shape::check_pod_bearing(&object, pointer, "")?;
    }
    if !cluster_scoped(&group, &kind) {
        super::default_namespace(&mut object, namespace);
    }
    Ok(request_for(&object, Operation::Create, namespace))
}

fn cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED
        .iter()
        .any(|(g, kinds)| *g == group && kinds.iter().any(|k| *k == kind || *k == "*"))
}

/// `(group, version)` of the object's `apiVersion`.
fn api_group(object: &Value) -> (&str, &str) {
    match object["apiVersion"].as_str().unwrap_or_default() {
        api if api.contains('/') => api.split_once('/').unwrap_or(("", api)),
        api => ("", api),
    }
}

/// The request about `object` (already checked): kind and resource from its type, the
/// namespace its own or `namespace`, none for cluster-scoped kinds.
fn request_for(object: &Value, operation: Operation, namespace: &str) -> AdmissionRequest {
    let mut request = AdmissionRequest::for_object(operation, object.clone()).by(UserInfo {
        username: USERNAME.into(),
        ..Default::default()
    });
    let (group, kind) = (request.kind.group.as_str(), request.kind.kind.as_str());
    let irregular = RESOURCES.iter().find(|(g, k, _)| *g == group && *k == kind);
    let cluster = cluster_scoped(group, kind);
    if let Some((_, _, resource)) = irregular {
        let resource = GroupVersionResource {
            resource: (*resource).into(),
            ..request.resource.clone()
        };
        request.request_resource = Some(resource.clone());
        request.resource = resource;
    }
    if cluster {
        request.namespace.clear();
    } else if request.namespace.is_empty() {
        request.namespace = namespace.to_owned();
    }
    request
}

/// What every object needs to be named in a request: string `apiVersion` and `kind`, a
/// `metadata` mapping with a string `name` (when `named`: a review's object may have only
/// a `generateName`), and labels and annotations of strings.
fn check_object(object: &Value, root: &str, named: bool) -> anyhow::Result<()> {
    let at = |key: &str| {
        if root.is_empty() {
            key.to_owned()
        } else {
            format!("{root}.{key}")
        }
    };
    for key in ["apiVersion", "kind"] {
        match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            None | Some(Value::Null) => bail!("{}: missing; every object names its type", at(key)),
            Some(other) => bail!("{}: must be a non-empty string, not {other}", at(key)),
        }
    }
    let Some(meta) = object.get("metadata").and_then(Value::as_object) else {
        bail!(
            "{}: missing or not a mapping; it carries the object's name",
            at("metadata")
        );
    };
    match meta.get("name") {
        Some(Value::String(s)) if !s.is_empty() => {}
        None | Some(Value::Null) if !named => {}
        None | Some(Value::Null) => bail!("{}: missing", at("metadata.name")),
        Some(other) => bail!(
            "{}: must be a non-empty string, not {other}",
            at("metadata.name")
        ),
    }
    if let Some(ns) = meta
        .get("namespace")
        .filter(|v| !v.is_null() && !v.is_string())
    {
        bail!("{}: must be a string, not {ns}", at("metadata.namespace"));
    }
    for key in ["labels", "annotations"] {
        let Some(map) = meta.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(map) = map.as_object() else {
            bail!(
                "{}: must be a mapping of strings",
                at(&format!("metadata.{key}"))
            );
        };
        if let Some((k, v)) = map.iter().find(|(_, v)| !v.is_string()) {
            bail!(
                "{}.{k}: must be a string, not {v}; quote the value",
                at(&format!("metadata.{key}"))
            );
        }
    }
    Ok(())
}

/// The request of an AdmissionReview, its Pod (if it carries one) checked like a Pod file.
/// What kube-apiserver always sets and a hand-written review may leave out (`uid`,
/// `kind`, `resource`, `name`, `namespace`, `userInfo`) is filled in from its object as
/// [`object_request`] would; `gator` reads such reviews.
pub fn review_request(doc: &Value, namespace: &str) -> anyhow::Result<AdmissionRequest> {
    let mut given = doc
        .get("request")
        .and_then(Value::as_object)
        .cloned()
        .context("request: missing or not a mapping; an AdmissionReview carries its request")?;
    fill_defaults(&mut given, namespace)?;
    let mut request: AdmissionRequest = serde_json::from_value(Value::Object(given))
        .context("request: not an admission.k8s.io/v1 AdmissionRequest")?;
    // A Pod, or the Pod template of a workload: what the Pod policies will read.
    let template = template_pointer(&request.kind.group, &request.kind.kind);
    for (object, at) in [
        (&mut request.object, "request.object"),
        (&mut request.old_object, "request.oldObject"),
    ] {
        if let (Some(pointer), Some(object)) = (template, object) {
            fill_containers(object, pointer);
            shape::check_pod_bearing(object, pointer, at)?;
        }
    }
    Ok(request)
}

/// A Pod spec (at `pointer` of `object`) whose only containers are init or ephemeral ones
/// is given an empty `spec.containers`, the list kube-apiserver always has. Such Pods are
/// what the gatekeeper-library's `disallowed_ephemeral` cases hold (the ephemeral
/// containers a Pod has gained, nothing else); every policy reads all three lists, and
/// the built-in ones need the v1 shape. A spec with no container at all stays refused.
pub fn fill_containers(object: &mut Value, pointer: &str) {
    let Some(spec) = object
        .pointer_mut(&format!("{pointer}/spec"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let has = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    if !has("containers") && (has("initContainers") || has("ephemeralContainers")) {
        spec.insert("containers".into(), json!([]));
    }
}

/// Fills the fields of `request` kube-apiserver would have set from its object (or, for
/// a DELETE, its oldObject); fields given are kept as they are.
fn fill_defaults(request: &mut Map<String, Value>, namespace: &str) -> anyhow::Result<()> {
    request
        .entry("uid")
        .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    request.entry("userInfo").or_insert_with(|| json!({}));
    let wanted = ["kind", "resource", "name", "namespace"];
    if wanted.iter().all(|k| request.contains_key(*k)) {
        return Ok(());
    }
    let found = ["object", "oldObject"]
        .into_iter()
        .find_map(|k| request.get(k).filter(|v| !v.is_null()).map(|v| (k, v)));
    let Some((at, object)) = found else {
        if !request.contains_key("kind") {
            bail!("request.kind: missing, and there is no request.object to take it from");
        }
        return Ok(());
    };
    let operation = request
        .get("operation")
        .cloned()
        .and_then(|o| serde_json::from_value(o).ok())
        .unwrap_or(Operation::Create);
    let mut typed = object.clone();
    match request.get("kind").and_then(Value::as_object) {
        // The request's own kind says what the object is (its shape is checked later).
        Some(kind) if typed.is_object() => {
            let part = |k: &str| kind.get(k).and_then(Value::as_str).unwrap_or_default();
            let api = match part("group") {
                "" => part("version").to_owned(),
                group => format!("{group}/{}", part("version")),
            };
            typed["apiVersion"] = json!(api);
            typed["kind"] = json!(part("kind"));
        }
        _ => check_object(object, &format!("request.{at}"), false)?,
    }
    let base = serde_json::to_value(request_for(&typed, operation, namespace))?;
    // `requestKind` and `requestResource` go with the kind and resource they repeat.
    let keys = [
        ("kind", "kind"),
        ("kind", "requestKind"),
        ("resource", "resource"),
        ("resource", "requestResource"),
        ("name", "name"),
        ("namespace", "namespace"),
    ];
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|k| !request.contains_key(*k))
        .collect();
    for (unless, key) in keys {
        if missing.contains(&unless) && !request.contains_key(key) {
            if let Some(v) = base.get(key).filter(|v| !v.is_null()) {
                request.insert(key.into(), v.clone());
            }
        }
    }
    Ok(())
}
