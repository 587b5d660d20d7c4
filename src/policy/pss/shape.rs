//! The type of every Pod field a check reads, checked before any check runs.
//!
//! The API server decodes a Pod into Go structs and refuses one whose fields have the
//! wrong JSON type; here the Pod arrives as JSON from elsewhere, and a check that read
//! `"privileged": "true"` as absent would admit what the kubelet may run privileged. So a
//! wrong type is reported (and the caller fails closed) instead of guessed at. `null` is
//! always fine: Go decodes it as the zero value, and so do the checks.

use serde_json::Value;

/// What a field must be (only the fields the checks read are listed).
enum Ty {
    Bool,
    Str,
    Int,
    /// An object whose listed fields have these types; other fields are not read.
    Obj(&'static [(&'static str, Ty)]),
    /// An object of any content (a volume source: only its presence counts).
    AnyObj,
    /// An object whose values are all strings (`metadata.annotations`).
    StrMap,
    List(&'static Ty),
}

use Ty::*;

const PROFILE: Ty = Obj(&[("type", Str)]);
const SE_LINUX: Ty = Obj(&[("type", Str), ("user", Str), ("role", Str)]);
const WINDOWS: Ty = Obj(&[("hostProcess", Bool)]);
const HOST: Ty = Obj(&[("host", Str)]);
const HANDLER: Ty = Obj(&[("httpGet", HOST), ("tcpSocket", HOST)]);

const CONTAINER: Ty = Obj(&[
    ("name", Str),
    (
        "ports",
        List(&Obj(&[("hostPort", Int), ("containerPort", Int)])),
    ),
    (
        "securityContext",
        Obj(&[
            ("privileged", Bool),
            ("allowPrivilegeEscalation", Bool),
            ("runAsNonRoot", Bool),
            ("runAsUser", Int),
            ("procMount", Str),
            (
                "capabilities",
                Obj(&[("add", List(&Str)), ("drop", List(&Str))]),
            ),
            ("seccompProfile", PROFILE),
            ("appArmorProfile", PROFILE),
            ("seLinuxOptions", SE_LINUX),
            ("windowsOptions", WINDOWS),
        ]),
    ),
    ("livenessProbe", HANDLER),
    ("readinessProbe", HANDLER),
    ("startupProbe", HANDLER),
    (
        "lifecycle",
        Obj(&[("postStart", HANDLER), ("preStop", HANDLER)]),
    ),
]);

const VOLUME: Ty = Obj(&[
    ("name", Str),
    ("configMap", AnyObj),
    ("csi", AnyObj),
    ("downwardAPI", AnyObj),
    ("emptyDir", AnyObj),
    ("ephemeral", AnyObj),
    ("image", AnyObj),
    ("persistentVolumeClaim", AnyObj),
    ("projected", AnyObj),
    ("secret", AnyObj),
    ("hostPath", AnyObj),
    ("gcePersistentDisk", AnyObj),
    ("awsElasticBlockStore", AnyObj),
    ("gitRepo", AnyObj),
    ("nfs", AnyObj),
    ("iscsi", AnyObj),
    ("glusterfs", AnyObj),
    ("rbd", AnyObj),
    ("flexVolume", AnyObj),
    ("cinder", AnyObj),
    ("cephfs", AnyObj),
    ("flocker", AnyObj),
    ("fc", AnyObj),
    ("azureFile", AnyObj),
    ("vsphereVolume", AnyObj),
    ("quobyte", AnyObj),
    ("azureDisk", AnyObj),
    ("photonPersistentDisk", AnyObj),
    ("portworxVolume", AnyObj),
    ("scaleIO", AnyObj),
    ("storageos", AnyObj),
]);

const POD: Ty = Obj(&[
    ("metadata", Obj(&[("annotations", StrMap)])),
    (
        "spec",
        Obj(&[
            ("hostNetwork", Bool),
            ("hostPID", Bool),
            ("hostIPC", Bool),
            ("hostUsers", Bool),
            ("os", Obj(&[("name", Str)])),
            (
                "securityContext",
                Obj(&[
                    ("runAsNonRoot", Bool),
                    ("runAsUser", Int),
                    ("seccompProfile", PROFILE),
                    ("appArmorProfile", PROFILE),
                    ("seLinuxOptions", SE_LINUX),
                    ("windowsOptions", WINDOWS),
                    ("sysctls", List(&Obj(&[("name", Str)]))),
                ]),
            ),
            ("volumes", List(&VOLUME)),
            ("initContainers", List(&CONTAINER)),
            ("containers", List(&CONTAINER)),
            ("ephemeralContainers", List(&CONTAINER)),
        ]),
    ),
]);

/// Enough to say what is wrong without flooding a denial.
const MAX_PROBLEMS: usize = 5;

/// Every field of `pod` the checks read that has the wrong type, as
/// `spec.containers[0].securityContext.privileged: want a boolean, got a string`.
pub(super) fn problems(pod: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if !pod.is_object() {
        problems.push(format!("the Pod is {}, not an object", kind(pod)));
        return problems;
    }
    walk(pod, &POD, "", &mut problems);
    problems.truncate(MAX_PROBLEMS);
    problems
}

fn walk(value: &Value, ty: &Ty, path: &str, problems: &mut Vec<String>) {
    if value.is_null() || problems.len() > MAX_PROBLEMS {
        return;
    }
    let ok = match ty {
        Bool => value.is_boolean(),
        Str => value.is_string(),
        Int => value.is_i64() || value.is_u64(),
        AnyObj => value.is_object(),
        StrMap => match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    walk(
                        v,
                        &Str,
                        &format!("{path}[{}]", super::view::go_quote(k)),
                        problems,
                    );
                }
                true
            }
            None => false,
        },
        Obj(fields) => match value.as_object() {
            Some(map) => {
                for (name, ty) in *fields {
                    if let Some(v) = map.get(*name) {
                        let sub = if path.is_empty() {
                            (*name).to_string()
                        } else {
                            format!("{path}.{name}")
                        };
                        walk(v, ty, &sub, problems);
                    }
                }
                true
            }
            None => false,
        },
        List(item) => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, &format!("{path}[{i}]"), problems);
                }
                true
            }
            None => false,
        },
    };
    if !ok {
        let want = match ty {
            Bool => "a boolean",
            Str => "a string",
            Int => "an integer",
            Obj(_) | AnyObj | StrMap => "an object",
            List(_) => "a list",
        };
        problems.push(format!("{path}: want {want}, got {}", kind(value)));
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
