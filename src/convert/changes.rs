//! Which writable Pod fields a mutation changed: the diff of the Pod before and after the
//! mutating policies, as JSON pointers, each matched to a field `write_back` can write.

use serde_json::{Map, Value};

/// The writable Pod fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    RuntimeClass,
    Image,
    Command,
    Args,
    Env,
    WorkingDir,
    RunAsUser,
    RunAsGroup,
    SupplementalGroups,
    RunAsNonRoot,
    Capabilities,
    AllowPrivilegeEscalation,
    ReadOnlyRootFilesystem,
    MemoryLimit,
    CpuLimit,
    Label(String),
    Annotation(String),
}

impl Field {
    const FIXED: [(Field, &'static str); 15] = [
        (Field::RuntimeClass, "/spec/runtimeClassName"),
        (Field::Image, "/spec/containers/0/image"),
        (Field::Command, "/spec/containers/0/command"),
        (Field::Args, "/spec/containers/0/args"),
        (Field::Env, "/spec/containers/0/env"),
        (Field::WorkingDir, "/spec/containers/0/workingDir"),
        (
            Field::RunAsUser,
            "/spec/containers/0/securityContext/runAsUser",
        ),
        (
            Field::RunAsGroup,
            "/spec/containers/0/securityContext/runAsGroup",
        ),
        (
            Field::SupplementalGroups,
            "/spec/securityContext/supplementalGroups",
        ),
        (
            Field::RunAsNonRoot,
            "/spec/containers/0/securityContext/runAsNonRoot",
        ),
        (
            Field::Capabilities,
            "/spec/containers/0/securityContext/capabilities",
        ),
        (
            Field::AllowPrivilegeEscalation,
            "/spec/containers/0/securityContext/allowPrivilegeEscalation",
        ),
        (
            Field::ReadOnlyRootFilesystem,
            "/spec/containers/0/securityContext/readOnlyRootFilesystem",
        ),
        (
            Field::MemoryLimit,
            "/spec/containers/0/resources/limits/memory",
        ),
        (Field::CpuLimit, "/spec/containers/0/resources/limits/cpu"),
    ];

    /// The writable field a changed path lies in, if any.
    pub(super) fn of(path: &str) -> Option<Field> {
        let within =
            |w: &str| path == w || path.strip_prefix(w).is_some_and(|r| r.starts_with('/'));
        if let Some((f, _)) = Field::FIXED.iter().find(|(_, w)| within(w)) {
            return Some(f.clone());
        }
        let key = |prefix: &str| {
            let rest = path.strip_prefix(prefix)?;
            let seg = rest.split('/').next()?;
            (!seg.is_empty()).then(|| unescape(seg))
        };
        key("/metadata/labels/")
            .map(Field::Label)
            .or_else(|| key("/metadata/annotations/").map(Field::Annotation))
    }

    pub(super) fn pointer(&self) -> String {
        match self {
            Field::Label(k) => format!("/metadata/labels/{}", escape(k)),
            Field::Annotation(k) => format!("/metadata/annotations/{}", escape(k)),
            f => Field::FIXED
                .iter()
                .find(|(g, _)| g == f)
                .map(|(_, p)| (*p).to_owned())
                .unwrap_or_default(),
        }
    }
}

/// A JSON pointer segment for `key` (RFC 6901: `~` → `~0`, `/` → `~1`).
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The key a JSON pointer segment names.
pub(super) fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// Absent, `null`, `{}` and `[]` all mean "not set" in a Kubernetes object (omitempty).
pub(super) fn unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// JSON pointers of the changed leaves. Unlike `json_patch::diff`, which reports an added
/// parent object as one operation (`add /spec/containers/0/securityContext`), this descends
/// into objects, treating unset as an empty object, so a change is reported at the field that
/// changed; arrays are compared item by item when their lengths agree, else as a whole.
pub(super) fn changed_paths(
    before: Option<&Value>,
    after: Option<&Value>,
    ptr: &str,
    out: &mut Vec<String>,
) {
    let (b, a) = (
        before.filter(|v| !v.is_null()),
        after.filter(|v| !v.is_null()),
    );
    if b == a || (unset(b) && unset(a)) {
        return;
    }
    let empty = Map::new();
    let object_like = |v: Option<&Value>| matches!(v, None | Some(Value::Object(_)));
    match (b, a) {
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (bx, ay)) in x.iter().zip(y).enumerate() {
                changed_paths(Some(bx), Some(ay), &format!("{ptr}/{i}"), out);
            }
        }
        (b, a) if object_like(b) && object_like(a) => {
            let (bm, am) = (
                b.and_then(Value::as_object).unwrap_or(&empty),
                a.and_then(Value::as_object).unwrap_or(&empty),
            );
            let mut keys: Vec<&String> = bm.keys().chain(am.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                changed_paths(bm.get(k), am.get(k), &format!("{ptr}/{}", escape(k)), out);
            }
        }
        _ => out.push(ptr.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(before: Value, after: Value) -> Vec<String> {
        let mut out = Vec::new();
        changed_paths(Some(&before), Some(&after), "", &mut out);
        out
    }

    #[test]
    fn diff_reports_leaves_with_omitempty_semantics() {
        assert_eq!(
            paths(json!({"a": {}}), json!({"a": {"b": {"c": 1}, "d": []}})),
            ["/a/b/c"]
        );
        assert!(paths(json!({"a": null, "b": []}), json!({"c": {}})).is_empty());
        assert_eq!(paths(json!({"l": [1, 2]}), json!({"l": [1, 3]})), ["/l/1"]);
        assert_eq!(paths(json!({"l": [1, 2]}), json!({"l": [1]})), ["/l"]);
        assert_eq!(paths(json!({"a/b": 1}), json!({"a/b": 2})), ["/a~1b"]);
        assert_eq!(paths(json!({"a": {"x": 1}}), json!({"a": "s"})), ["/a"]);
        assert_eq!(
            Field::of("/metadata/labels/a~1b"),
            Some(Field::Label("a/b".into()))
        );
        assert_eq!(Field::of("/spec/containers/0/envFrom"), None);
        assert_eq!(
            Field::of("/spec/containers/0/env/3/value"),
            Some(Field::Env)
        );
    }
}
