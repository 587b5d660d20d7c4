//! The shape of a Pod read from a file (`portcullis check`): the API server validates
//! shapes before admission sees them, a file on disk has had no such check. A document
//! whose `metadata` is a string or whose `containers` is a number is bad input (exit 2),
//! reported with the path of the field, never a panic and never a verdict on a Pod that
//! Kubernetes would not have accepted.

use serde_json::Value;

/// A field of the wrong shape: `field` is its dotted path (`spec.containers[0].image`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ShapeError {
    pub field: String,
    pub message: String,
}

/// What a field must be.
#[derive(Clone, Copy)]
enum Want {
    Object,
    Array,
    String,
    Bool,
    /// An object whose values are strings (labels, annotations, nodeSelector).
    StringMap,
}

impl Want {
    fn name(self) -> &'static str {
        match self {
            Want::Object => "a mapping",
            Want::Array => "a list",
            Want::String => "a string",
            Want::Bool => "a boolean",
            Want::StringMap => "a mapping of strings",
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Checks `obj[key]` when present (null counts as absent, as in Kubernetes' decoding).
fn field<'a>(
    obj: &'a Value,
    parent: &str,
    key: &str,
    want: Want,
) -> Result<Option<&'a Value>, ShapeError> {
    let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let path = join(parent, key);
    let ok = match want {
        Want::Object => v.is_object(),
        Want::Array => v.is_array(),
        Want::String => v.is_string(),
        Want::Bool => v.is_boolean(),
        Want::StringMap => match v.as_object() {
            Some(m) => {
                if let Some((k, bad)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(ShapeError {
                        field: format!("{path}.{k}"),
                        message: format!(
                            "must be a string, not {}; quote the value",
                            describe(bad)
                        ),
                    });
                }
                true
            }
            None => false,
        },
    };
    if ok {
        Ok(Some(v))
    } else {
        Err(ShapeError {
            field: path,
            message: format!("must be {}, not {}", want.name(), describe(v)),
        })
    }
}

/// A Pod as `check` reads it: the fields the policies read have the types of the v1 Pod
/// schema (k8s.io/api/core/v1/types.go), and `spec.containers` is there.
pub fn check_pod(pod: &Value, root: &str) -> Result<(), ShapeError> {
    if !pod.is_object() {
        return Err(ShapeError {
            field: if root.is_empty() {
                "(document)".into()
            } else {
                root.into()
            },
            message: format!("a Pod must be a mapping, not {}", describe(pod)),
        });
    }
    field(pod, root, "apiVersion", Want::String)?;
    field(pod, root, "kind", Want::String)?;
    if let Some(meta) = field(pod, root, "metadata", Want::Object)? {
        let at = join(root, "metadata");
        for key in ["name", "generateName", "namespace", "uid"] {
            field(meta, &at, key, Want::String)?;
        }
        for key in ["labels", "annotations"] {
            field(meta, &at, key, Want::StringMap)?;
        }
    }
    let Some(spec) = field(pod, root, "spec", Want::Object)? else {
        return Err(ShapeError {
            field: join(root, "spec"),
            message: "missing; a Pod needs spec.containers".into(),
        });
    };
    check_spec(spec, &join(root, "spec"))?;
    // Everything else against the full v1 Pod schema; serde names the type, not the path,
    // so the fields policies read are checked above with their paths.
    serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(pod.clone())
        .map(drop)
        .map_err(|e| ShapeError {
            field: if root.is_empty() {
                "(Pod)".into()
            } else {
                root.into()
            },
            message: format!("not a v1 Pod: {e}"),
        })
}

/// The Pod template of a workload at JSON pointer `pointer` of `object` (see
/// `review::pod_view::template_pointer`; empty for a Pod itself). Every step of the way must
/// be a mapping: a Deployment whose `spec` is a number carries no Pod to judge, and
/// admitting it would be a verdict on nothing.
pub fn check_pod_bearing(object: &Value, pointer: &str, root: &str) -> Result<(), ShapeError> {
    let mut at = root.to_owned();
    let mut here = object;
    for key in pointer.split('/').filter(|k| !k.is_empty()) {
        if !here.is_object() {
            return Err(ShapeError {
                field: if at.is_empty() {
                    "(document)".into()
                } else {
                    at
                },
                message: format!("must be a mapping, not {}", describe(here)),
            });
        }
        at = join(&at, key);
        match here.get(key).filter(|v| !v.is_null()) {
            Some(next) => here = next,
            None => {
                return Err(ShapeError {
                    field: at,
                    message: "missing; this kind carries its Pod template there".into(),
                })
            }
        }
    }
    if pointer.is_empty() {
        return check_pod(here, root);
    }
    // A template has the Pod's metadata and spec, without apiVersion and kind.
    check_pod(here, &at)
}

fn check_spec(spec: &Value, at: &str) -> Result<(), ShapeError> {
    for key in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
        field(spec, at, key, Want::Bool)?;
    }
    for key in ["runtimeClassName", "serviceAccountName", "nodeName"] {
        field(spec, at, key, Want::String)?;
    }
    field(spec, at, "nodeSelector", Want::StringMap)?;
    field(spec, at, "securityContext", Want::Object)?;
    if let Some(Value::Array(volumes)) = field(spec, at, "volumes", Want::Array)? {
        for (i, v) in volumes.iter().enumerate() {
            let vat = format!("{at}.volumes[{i}]");
            if !v.is_object() {
                return Err(ShapeError {
                    field: vat,
                    message: format!("a volume must be a mapping, not {}", describe(v)),
                });
            }
            field(v, &vat, "name", Want::String)?;
            field(v, &vat, "hostPath", Want::Object)?;
        }
    }
    if field(spec, at, "containers", Want::Array)?.is_none() {
        return Err(ShapeError {
            field: join(at, "containers"),
            message: "missing; a Pod needs at least one container".into(),
        });
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = field(spec, at, list, Want::Array)? else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            check_container(c, &format!("{at}.{list}[{i}]"))?;
        }
    }
    Ok(())
}

fn check_container(c: &Value, at: &str) -> Result<(), ShapeError> {
    if !c.is_object() {
        return Err(ShapeError {
            field: at.into(),
            message: format!(
                "a container must be a mapping (name, image, ...), not {}",
                describe(c)
            ),
        });
    }
    for key in ["name", "image", "imagePullPolicy"] {
        field(c, at, key, Want::String)?;
    }
    for key in [
        "command",
        "args",
        "ports",
        "env",
        "volumeMounts",
        "volumeDevices",
    ] {
        field(c, at, key, Want::Array)?;
    }
    if let Some(sc) = field(c, at, "securityContext", Want::Object)? {
        let sat = join(at, "securityContext");
        for key in [
            "privileged",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "runAsNonRoot",
        ] {
            field(sc, &sat, key, Want::Bool)?;
        }
        for key in [
            "capabilities",
            "seccompProfile",
            "seLinuxOptions",
            "appArmorProfile",
        ] {
            field(sc, &sat, key, Want::Object)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(pod: Value) -> ShapeError {
        check_pod(&pod, "").unwrap_err()
    }

    #[test]
    fn a_well_formed_pod_passes() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "labels": {"app": "x"}},
            "spec": {"hostNetwork": null, "containers": [{"name": "c", "image": "busybox",
                "securityContext": {"privileged": false}}]}});
        assert_eq!(check_pod(&pod, ""), Ok(()));
    }

    #[test]
    fn each_malformed_shape_names_its_field() {
        let base = |spec: Value| json!({"kind": "Pod", "metadata": {"name": "a"}, "spec": spec});
        let cases = [
            (
                json!({"kind": "Pod", "metadata": "oops", "spec": {"containers": []}}),
                "metadata",
            ),
            (
                json!({"kind": "Pod", "metadata": {"name": 5}, "spec": {"containers": []}}),
                "metadata.name",
            ),
            (
                json!({"kind": "Pod", "metadata": {"labels": {"a": 1}}, "spec": {"containers": []}}),
                "metadata.labels.a",
            ),
            (json!({"kind": "Pod", "spec": "x"}), "spec"),
            (json!({"kind": "Pod"}), "spec"),
            (base(json!({})), "spec.containers"),
            (base(json!({"containers": 3})), "spec.containers"),
            (base(json!({"containers": [7]})), "spec.containers[0]"),
            (
                base(json!({"containers": [{"name": "c", "image": ["x"]}]})),
                "spec.containers[0].image",
            ),
            (
                base(json!({"containers": [], "initContainers": [{}, "x"]})),
                "spec.initContainers[1]",
            ),
            (
                base(json!({"containers": [], "hostPID": "yes"})),
                "spec.hostPID",
            ),
            (
                base(json!({"containers": [{"securityContext": {"privileged": "true"}}]})),
                "spec.containers[0].securityContext.privileged",
            ),
            (json!("just a string"), "(document)"),
        ];
        for (pod, field) in cases {
            let e = err(pod.clone());
            assert_eq!(e.field, field, "{pod}: {e}");
        }
        let e = err(json!({"metadata": "oops"}));
        assert!(
            e.message
                .contains("must be a mapping, not the string \"oops\""),
            "{e}"
        );
    }

    #[test]
    fn the_rest_of_the_schema_is_checked_too() {
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": "eighty"}]}]}});
        let e = err(pod);
        assert_eq!(e.field, "(Pod)");
        assert!(e.message.contains("eighty"), "{e}");
        let bare = json!({"spec": {"containers": [{"name": "c", "image": "x"}]}});
        assert_eq!(check_pod(&bare, ""), Ok(()));
    }

    #[test]
    fn workload_templates_are_found_and_checked() {
        let at = "request.object";
        let e = check_pod_bearing(&json!({"spec": 5}), "/spec/template", at).unwrap_err();
        assert_eq!(e.field, "request.object.spec");
        let e = check_pod_bearing(&json!({"spec": {}}), "/spec/template", at).unwrap_err();
        assert_eq!(e.field, "request.object.spec.template");
        let bad = json!({"spec": {"template": {"metadata": 3, "spec": {"containers": []}}}});
        let e = check_pod_bearing(&bad, "/spec/template", at).unwrap_err();
        assert_eq!(e.field, "request.object.spec.template.metadata");
        let good = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        assert_eq!(check_pod_bearing(&good, "/spec/template", at), Ok(()));
        let e = check_pod_bearing(&json!({"metadata": 1}), "", at).unwrap_err();
        assert_eq!(e.field, "request.object.metadata");
    }

    #[test]
    fn fields_under_a_root_carry_its_path() {
        let e = check_pod(&json!({"metadata": []}), "request.object").unwrap_err();
        assert_eq!(e.field, "request.object.metadata");
    }
}
