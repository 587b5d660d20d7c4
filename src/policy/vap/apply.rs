//! `patchType: ApplyConfiguration`: the expression's `Object{...}` merged into the object
//! as server-side apply merges — upstream `ApplyStructuredMergeDiff`
//! (k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch/smd.go), without
//! field ownership.
//!
//! structured-merge-diff merges by the schema's list and map types. Without an API
//! server there is no OpenAPI document to read them from, so the ones of a Pod
//! (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`
//! in the core/v1 OpenAPI, i.e. the `+listType`/`+listMapKey`/`+structType` markers of
//! k8s.io/api/core/v1/types.go) are written down below:
//! - maps and structs merge field by field, unless atomic;
//! - `map` lists merge element by element, matched on their keys; `set` lists are
//!   unions;
//! - every other list is atomic.
//!
//! As upstream, an apply configuration that sets an atomic list, map or struct is
//! refused ("may not mutate atomic arrays, maps or structs"): merging it would silently
//! drop what it does not repeat. For other kinds than Pod the same rules apply with
//! no schema: maps merge, every list is atomic. Unlike upstream, fields the schema does
//! not declare are not refused.

use serde_json::Value;

/// `x-kubernetes-list-type: map` lists of a Pod and their keys. `*containers` is any of
/// `containers`, `initContainers` and `ephemeralContainers`; `*` is any one field.
const MAP_LISTS: &[(&str, &[&str])] = &[
    ("metadata.ownerReferences", &["uid"]),
    ("spec.volumes", &["name"]),
    ("spec.*containers", &["name"]),
    ("spec.*containers[].ports", &["containerPort", "protocol"]),
    ("spec.*containers[].env", &["name"]),
    ("spec.*containers[].volumeMounts", &["mountPath"]),
    ("spec.*containers[].volumeDevices", &["devicePath"]),
    ("spec.*containers[].resources.claims", &["name"]),
    ("spec.imagePullSecrets", &["name"]),
    ("spec.hostAliases", &["ip"]),
    (
        "spec.topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    ("spec.resourceClaims", &["name"]),
    ("spec.schedulingGates", &["name"]),
    ("status.conditions", &["type"]),
    ("status.podIPs", &["ip"]),
    ("status.hostIPs", &["ip"]),
    ("status.*containerStatuses", &["name"]),
    ("status.resourceClaimStatuses", &["name"]),
];

/// `x-kubernetes-list-type: set` lists of a Pod.
const SET_LISTS: &[&str] = &["metadata.finalizers"];

/// Atomic maps and structs of a Pod (`+mapType=atomic`, `+structType=atomic`).
const ATOMIC_MAPS: &[&str] = &[
    "spec.nodeSelector",
    "spec.imagePullSecrets[]",
    "spec.*containers[].env[].valueFrom.configMapKeyRef",
    "spec.*containers[].env[].valueFrom.secretKeyRef",
    "spec.*containers[].env[].valueFrom.fieldRef",
    "spec.*containers[].env[].valueFrom.resourceFieldRef",
    "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
    "spec.topologySpreadConstraints[].labelSelector",
    "spec.volumes[].*.secretRef",
    "spec.volumes[].*.selector",
    "spec.volumes[].ephemeral.volumeClaimTemplate.spec.selector",
    "spec.volumes[].ephemeral.volumeClaimTemplate.spec.dataSource",
    "spec.volumes[].ephemeral.volumeClaimTemplate.spec.dataSourceRef",
    "spec.volumes[].downwardAPI.items[].fieldRef",
    "spec.volumes[].downwardAPI.items[].resourceFieldRef",
];

/// How the schema merges a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListType {
    Map(&'static [&'static str]),
    Set,
    Atomic,
}

/// The schema path of a field: dotted names, `[]` for a list element, the three container
/// lists folded into `*containers` (and the status ones into `*containerStatuses`).
fn schema_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let name = match name.as_str() {
                    "containers" | "initContainers" | "ephemeralContainers" => "*containers",
                    "containerStatuses"
                    | "initContainerStatuses"
                    | "ephemeralContainerStatuses" => "*containerStatuses",
                    other => other,
                };
                out.push_str(name);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

/// `pattern` matches `path` when every dotted segment is equal or `*`.
fn matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), path.split('.').collect());
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| a == b || *a == "*")
}

fn list_type(pod: bool, path: &str) -> ListType {
    if !pod {
        return ListType::Atomic;
    }
    if let Some((_, keys)) = MAP_LISTS.iter().find(|(p, _)| matches(p, path)) {
        return ListType::Map(keys);
    }
    if SET_LISTS.iter().any(|p| matches(p, path)) {
        return ListType::Set;
    }
    ListType::Atomic
}

fn is_atomic_map(pod: bool, path: &str) -> bool {
    pod && ATOMIC_MAPS.iter().any(|p| matches(p, path))
}

#[derive(Debug, Clone)]
enum Step {
    Field(String),
    Index(usize),
}

/// Merges the apply configuration `config` (a JSON object) into `object`. `pod` says
/// whether the Pod schema applies.
pub(crate) fn apply(object: &Value, config: Value, pod: bool) -> Result<Value, String> {
    let Value::Object(mut config) = config else {
        return Err("must evaluate to Object".into());
    };
    // Upstream gives the apply configuration the object's own apiVersion and kind.
    config.remove("apiVersion");
    config.remove("kind");
    let config = Value::Object(config);
    let mut atomics = Vec::new();
    find_atomics(pod, &mut Vec::new(), &config, &mut atomics);
    if !atomics.is_empty() {
        return Err(format!(
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, \
             maps or structs: {}",
            atomics.join(", ")
        ));
    }
    let mut merged = object.clone();
    merge(pod, &mut Vec::new(), &mut merged, &config);
    Ok(merged)
}

/// Upstream `findAtomics`: the paths (`.spec.tolerations`, `.spec.containers[0].command`)
/// of every atomic list, map or struct the configuration sets.
fn find_atomics(pod: bool, path: &mut Vec<Step>, value: &Value, out: &mut Vec<String>) {
    let schema = schema_path(path);
    match value {
        Value::Object(fields) => {
            if !path.is_empty() && is_atomic_map(pod, &schema) {
                out.push(display(path));
            }
            for (key, v) in fields {
                path.push(Step::Field(key.clone()));
                find_atomics(pod, path, v, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            if list_type(pod, &schema) == ListType::Atomic {
                out.push(display(path));
            }
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_atomics(pod, path, v, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// structured-merge-diff's path notation: `.spec.containers[0].command`.
fn display(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Field(name) => format!(".{name}"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

fn merge(pod: bool, path: &mut Vec<Step>, live: &mut Value, config: &Value) {
    match (live, config) {
        (Value::Object(live), Value::Object(config)) => {
            for (key, value) in config {
                if value.is_null() {
                    live.remove(key);
                    continue;
                }
                path.push(Step::Field(key.clone()));
                match live.get_mut(key) {
                    Some(existing) => merge(pod, path, existing, value),
                    None => {
                        live.insert(key.clone(), value.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(live), Value::Array(config)) => match list_type(pod, &schema_path(path)) {
            ListType::Map(keys) => {
                for item in config {
                    let found = live.iter().position(|l| same_keys(keys, l, item));
                    match found {
                        Some(i) => {
                            path.push(Step::Index(i));
                            merge(pod, path, &mut live[i], item);
                            path.pop();
                        }
                        None => live.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in config {
                    if !live.contains(item) {
                        live.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *live = config.clone(),
        },
        (live, config) => *live = config.clone(),
    }
}

/// Whether two elements of a `map` list have the same keys. A missing `protocol` is
/// its default, `TCP` (the one list-map key with a default in a Pod).
fn same_keys(keys: &[&str], a: &Value, b: &Value) -> bool {
    let key = |v: &Value, k: &str| match v.get(k) {
        None | Some(Value::Null) if k == "protocol" => Value::String("TCP".into()),
        None => Value::Null,
        Some(v) => v.clone(),
    };
    keys.iter().all(|k| key(a, k) == key(b, k))
}
