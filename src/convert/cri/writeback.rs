//! Mutated Pod → CRI request: the inverse of `sandbox_pod` / `container_pod`. A policy's
//! change to the Pod is written into the `RunPodSandbox` or `CreateContainer` request the
//! Pod was read from, each changed field exactly where the view reads it, so that reading
//! the written request again gives the mutated Pod. A change the request cannot carry that
//! way is refused, naming the Pod field and why ([`WriteBackError`]): the door never
//! forwards a request that differs from what the policies approved.
//!
//! | Pod field | CRI field |
//! |---|---|
//! | `spec.runtimeClassName` | `runtime_handler` (RunPodSandbox only: a container runs in its sandbox's) |
//! | `metadata.labels`, `metadata.annotations` | the sandbox config's `labels`, `annotations` (`sandbox_config` at CreateContainer, which is where the view reads them and what containerd passes to the runtime); `portcullis.dev/` annotations are the view's: refused, and the request's own are kept |
//! | `spec.securityContext.runAsUser`, `runAsGroup`, `seccompProfile`, `appArmorProfile`, `seLinuxOptions` | the sandbox's `linux.security_context`; at CreateContainer only when the container has its own (else Kubernetes applies the Pod's to it, which the CRI carries in the container's: refused) |
//! | `spec.securityContext.supplementalGroups` | the sandbox's `supplemental_groups`, and the container's at CreateContainer |
//! | `spec.securityContext.sysctls` | the sandbox's `linux.sysctls` |
//! | `containers[0].image` | `image.image` and `user_specified_image` |
//! | `command`, `args`, `workingDir`, `env` (`value` only: the kubelet resolves `valueFrom`) | `command`, `args`, `working_dir`, `envs` |
//! | `securityContext.privileged`, `readOnlyRootFilesystem`, `allowPrivilegeEscalation` | `privileged` (not where host power forces it), `readonly_rootfs`, `no_new_privs` = not allowed |
//! | `securityContext.capabilities.add` / `.drop` | `add_capabilities` (ambient ones kept while still added) / `drop_capabilities`, Kubernetes spelling as the kubelet sends |
//! | `securityContext.runAsUser`, `runAsGroup`, `runAsNonRoot` | `run_as_user` (clearing `run_as_username`), `run_as_group`; `runAsNonRoot` must read `runAsUser != 0`, as the view shows it |
//! | `securityContext.seccompProfile`, `appArmorProfile`, `seLinuxOptions` | `seccomp` (absent → `Unconfined`, a Localhost profile by its absolute path), `apparmor`, `selinux_options`; the deprecated strings are cleared |
//! | `resources.limits.cpu`, `limits.memory`, `requests.cpu` | `cpu_quota` (`cpu_period` kept, else 100000), `memory_limit_in_bytes`, `cpu_shares`, with the kubelet's formulas (`MilliCPUToQuota`, `MilliCPUToShares`) |
//!
//! Quantities come back in the view's form (`128Mi` → `134217728`, `0.5` → `500m`) and
//! lists the view sorts come back sorted; a value the view cannot read back as written (a
//! fraction of a byte, `limits.cpu` under the kernel's 1 ms quota) is refused. Everything
//! else — host namespaces, volumes and mounts, ports, devices, `procMount`, the placeholder
//! container `sandbox`, `requests.memory` (no CRI field), hugepages, `fsGroup`,
//! `supplementalGroupsPolicy` (no runtime.v1alpha2 field), added or removed containers — is
//! refused.

use std::collections::HashMap;

use k8s_cri::v1::{
    ContainerConfig, CreateContainerRequest, KeyValue, PodSandboxConfig, RunPodSandboxRequest,
};
use serde_json::Value;

use crate::convert::changes::{changed_paths, escape, unescape, unset};
use crate::convert::labels;
use crate::convert::pod::ANNOTATION_PREFIX;

/// Why a policy's change to the Pod cannot be written into the CRI request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct WriteBackError {
    /// The CRI method: `RunPodSandbox` or `CreateContainer`.
    pub call: &'static str,
    /// Every refused change, one per Pod field.
    pub refused: Vec<Refused>,
}

/// One changed Pod field the request cannot carry as changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// JSON pointer of the Pod field (`/spec/hostNetwork`).
    pub field: String,
    /// Why, and what would work instead.
    pub why: String,
}

impl WriteBackError {
    fn describe(&self) -> String {
        let each: Vec<String> = self
            .refused
            .iter()
            .map(|r| format!("`{}` ({})", r.field, r.why))
            .collect();
        format!(
            "policies changed {}, which the CRI door cannot write back into {}; make the \
             change in the Pod spec, or set the policy to warn",
            each.join("; "),
            self.call
        )
    }
}

pub(super) fn refused(field: &str, why: impl Into<String>) -> Refused {
    Refused {
        field: field.to_owned(),
        why: why.into(),
    }
}

/// The two calls that carry a Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Sandbox,
    Container,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Sandbox => "RunPodSandbox",
            Call::Container => "CreateContainer",
        }
    }
}

/// The writable Pod fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    RuntimeClass,
    Label(String),
    Annotation(String),
    PodRunAsUser,
    PodRunAsGroup,
    SupplementalGroups,
    PodSeccomp,
    PodAppArmor,
    PodSeLinux,
    Sysctls,
    Image,
    Command,
    Args,
    Env,
    WorkingDir,
    Privileged,
    Capabilities,
    ReadOnlyRootFilesystem,
    AllowPrivilegeEscalation,
    RunAsUser,
    RunAsGroup,
    RunAsNonRoot,
    Seccomp,
    AppArmor,
    SeLinux,
    CpuLimit,
    MemoryLimit,
    CpuRequest,
}

const POD_SC: &str = "/spec/securityContext";
const C0: &str = "/spec/containers/0";

impl Field {
    /// Each fixed field and its place in the Pod, relative to [`POD_SC`] for the Pod's
    /// security context, to [`C0`] for the container's fields, else absolute.
    const FIXED: [(Field, &'static str); 25] = [
        (Field::RuntimeClass, "/spec/runtimeClassName"),
        (Field::PodRunAsUser, "/runAsUser"),
        (Field::PodRunAsGroup, "/runAsGroup"),
        (Field::SupplementalGroups, "/supplementalGroups"),
        (Field::PodSeccomp, "/seccompProfile"),
        (Field::PodAppArmor, "/appArmorProfile"),
        (Field::PodSeLinux, "/seLinuxOptions"),
        (Field::Sysctls, "/sysctls"),
        (Field::Image, "/image"),
        (Field::Command, "/command"),
        (Field::Args, "/args"),
        (Field::Env, "/env"),
        (Field::WorkingDir, "/workingDir"),
        (Field::Privileged, "/securityContext/privileged"),
        (Field::Capabilities, "/securityContext/capabilities"),
        (
            Field::ReadOnlyRootFilesystem,
            "/securityContext/readOnlyRootFilesystem",
        ),
        (
            Field::AllowPrivilegeEscalation,
            "/securityContext/allowPrivilegeEscalation",
        ),
        (Field::RunAsUser, "/securityContext/runAsUser"),
        (Field::RunAsGroup, "/securityContext/runAsGroup"),
        (Field::RunAsNonRoot, "/securityContext/runAsNonRoot"),
        (Field::Seccomp, "/securityContext/seccompProfile"),
        (Field::AppArmor, "/securityContext/appArmorProfile"),
        (Field::SeLinux, "/securityContext/seLinuxOptions"),
        (Field::CpuLimit, "/resources/limits/cpu"),
        (Field::MemoryLimit, "/resources/limits/memory"),
    ];

    /// A field of `spec.securityContext` (or labels and annotations): the sandbox's.
    pub(super) fn is_pod_level(&self) -> bool {
        matches!(self, Field::Label(_) | Field::Annotation(_)) || self.within_pod_sc()
    }

    fn within_pod_sc(&self) -> bool {
        matches!(
            self,
            Field::PodRunAsUser
                | Field::PodRunAsGroup
                | Field::SupplementalGroups
                | Field::PodSeccomp
                | Field::PodAppArmor
                | Field::PodSeLinux
                | Field::Sysctls
        )
    }

    pub(super) fn pointer(&self) -> String {
        match self {
            Field::Label(k) => format!("/metadata/labels/{}", escape(k)),
            Field::Annotation(k) => format!("/metadata/annotations/{}", escape(k)),
            Field::CpuRequest => format!("{C0}/resources/requests/cpu"),
            Field::RuntimeClass => "/spec/runtimeClassName".into(),
            f => {
                let rel = Field::FIXED
                    .iter()
                    .find(|(g, _)| g == f)
                    .map_or("", |(_, p)| *p);
                let base = if f.within_pod_sc() { POD_SC } else { C0 };
                format!("{base}{rel}")
            }
        }
    }

    /// The writable field at `call` that a changed path lies in, if any.
    fn of(path: &str, call: Call) -> Option<Field> {
        let key = |prefix: &str| {
            let seg = path.strip_prefix(prefix)?.split('/').next()?;
            (!seg.is_empty()).then(|| unescape(seg))
        };
        if let Some(k) = key("/metadata/labels/") {
            return Some(Field::Label(k));
        }
        if let Some(k) = key("/metadata/annotations/") {
            return (!k.starts_with(ANNOTATION_PREFIX)).then_some(Field::Annotation(k));
        }
        let all = Field::FIXED
            .iter()
            .map(|(f, _)| f.clone())
            .chain([Field::CpuRequest]);
        let found = all.into_iter().find(|f| within(path, &f.pointer()))?;
        let at_call = match call {
            Call::Sandbox => found.is_pod_level() || found == Field::RuntimeClass,
            Call::Container => found != Field::RuntimeClass,
        };
        at_call.then_some(found)
    }
}

/// `path` is `field` or inside it.
fn within(path: &str, field: &str) -> bool {
    path == field || path.strip_prefix(field).is_some_and(|r| r.starts_with('/'))
}

/// Why a changed path that is no writable field cannot be written.
fn why_not(path: &str, call: Call) -> &'static str {
    let under = |p: &str| within(path, p);
    if path.starts_with("/metadata/annotations/portcullis.dev~1") {
        "Portcullis derives `portcullis.dev/` annotations from the request; they are not the Pod's"
    } else if call == Call::Sandbox && under("/spec/containers") {
        "a sandbox has no containers: the placeholder container `sandbox` shows the sandbox's own \
         privilege and host ports"
    } else if under("/spec/runtimeClassName") {
        "a container runs with its sandbox's runtime handler, chosen at RunPodSandbox"
    } else if under(&format!("{C0}/resources/requests/memory")) {
        "the CRI has no memory request"
    } else if under(&format!("{C0}/resources")) {
        "of the resources, the CRI request carries limits.cpu, limits.memory and requests.cpu"
    } else if under("/spec/volumes") || under(&format!("{C0}/volumeMounts")) {
        "the kubelet resolves volumes into host paths before it calls the runtime"
    } else if under(&format!("{C0}/securityContext/procMount")) {
        "the view derives it from the container's masked and read-only /proc paths"
    } else if under(&format!("{POD_SC}/runAsNonRoot")) {
        "the CRI carries no runAsNonRoot (the kubelet checks it); set the container's runAsUser"
    } else if under(&format!("{POD_SC}/supplementalGroupsPolicy")) {
        "a runtime.v1alpha2 request has no field for it"
    } else if call == Call::Container && under("/spec/containers") && !under(C0) {
        "a CreateContainer request creates exactly one container"
    } else {
        "no field of the request carries it, or the view derives it from other fields"
    }
}

/// The writable fields `before` → `after` changed, and the changes that are none.
fn classify(call: Call, before: &Value, after: &Value) -> (Vec<Field>, Vec<Refused>) {
    let mut paths = Vec::new();
    changed_paths(Some(before), Some(after), "", &mut paths);
    let mut fields = Vec::new();
    let mut refusals = Vec::new();
    for p in paths {
        match Field::of(&p, call) {
            Some(f) => fields.push(f),
            None => refusals.push(refused(&p, why_not(&p, call))),
        }
    }
    fields.sort();
    fields.dedup();
    (fields, refusals)
}

fn finish(call: Call, mut refusals: Vec<Refused>) -> Result<(), WriteBackError> {
    if refusals.is_empty() {
        return Ok(());
    }
    let mut seen = std::collections::BTreeSet::new();
    refusals.retain(|r| seen.insert(r.field.clone()));
    Err(WriteBackError {
        call: call.name(),
        refused: refusals,
    })
}

/// Writes the changes from `before` (the request's view, `sandbox_pod`) to `after` (the
/// Pod after every mutation) into a `RunPodSandbox` request. On error `req` is unchanged.
pub fn write_sandbox(
    req: &mut RunPodSandboxRequest,
    before: &Value,
    after: &Value,
) -> Result<(), WriteBackError> {
    let call = Call::Sandbox;
    let (fields, mut refusals) = classify(call, before, after);
    if fields.is_empty() && refusals.is_empty() {
        return Ok(());
    }
    let w = Writer { before, after };
    let mut next = req.clone();
    for f in &fields {
        let done = match f {
            Field::RuntimeClass => w
                .string(&f.pointer())
                .map(|h| next.runtime_handler = h.unwrap_or_default()),
            f => w.pod(next.config.get_or_insert_with(Default::default), f),
        };
        refusals.extend(done.err());
    }
    finish(call, refusals)?;
    *req = next;
    Ok(())
}

/// Writes the changes from `before` (the request's view, `container_pod`) to `after` into a
/// `CreateContainer` request: the container's fields into `config`, the Pod's into
/// `sandbox_config`. On error `req` is unchanged.
pub fn write_container(
    req: &mut CreateContainerRequest,
    before: &Value,
    after: &Value,
) -> Result<(), WriteBackError> {
    let call = Call::Container;
    let (fields, mut refusals) = classify(call, before, after);
    if fields.is_empty() && refusals.is_empty() {
        return Ok(());
    }
    let w = Writer { before, after };
    let mut next = req.clone();
    let config = next.config.get_or_insert_with(Default::default);
    let sandbox = next.sandbox_config.get_or_insert_with(Default::default);
    for f in &fields {
        let done = if f.is_pod_level() {
            w.inherits(f)
                .and_then(|()| w.pod(sandbox, f))
                .and_then(|()| w.mirror(config, f))
        } else {
            w.container(config, f)
        };
        refusals.extend(done.err());
    }
    if fields.contains(&Field::RunAsUser) || fields.contains(&Field::RunAsNonRoot) {
        refusals.extend(w.non_root().err());
    }
    finish(call, refusals)?;
    *req = next;
    Ok(())
}

/// Reads the mutated Pod's values, as the CRI types want them.
pub(super) struct Writer<'a> {
    /// The request's view, for what the view derived (privileged reasons).
    pub(super) before: &'a Value,
    pub(super) after: &'a Value,
}

impl Writer<'_> {
    pub(super) fn get(&self, ptr: &str) -> Option<&Value> {
        self.after.pointer(ptr).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, ptr: &str) -> Result<Option<String>, Refused> {
        match self.get(ptr) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(refused(ptr, "expected a string")),
        }
    }

    pub(super) fn strings(&self, ptr: &str) -> Result<Vec<String>, Refused> {
        match self.get(ptr) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| refused(ptr, "expected a list of strings")),
            Some(_) => Err(refused(ptr, "expected a list of strings")),
        }
    }

    /// A uid or gid: a non-negative integer.
    pub(super) fn id(&self, ptr: &str) -> Result<Option<i64>, Refused> {
        self.get(ptr)
            .map(|v| {
                v.as_i64()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| refused(ptr, "expected a non-negative integer id"))
            })
            .transpose()
    }

    pub(super) fn flag(&self, ptr: &str) -> Result<Option<bool>, Refused> {
        self.get(ptr)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| refused(ptr, "expected true or false"))
            })
            .transpose()
    }

    /// Labels, annotations and `spec.securityContext` into a sandbox config.
    fn pod(&self, config: &mut PodSandboxConfig, f: &Field) -> Result<(), Refused> {
        let p = f.pointer();
        match f {
            Field::Label(k) => {
                let value = self.string(&p)?;
                if !labels::is_label_key(k) || !value.as_deref().is_none_or(labels::is_label_value)
                {
                    return Err(refused(
                        &p,
                        "not a Kubernetes label (key: [prefix/]name, value: at most 63 \
                         characters of [A-Za-z0-9-_.])",
                    ));
                }
                put(&mut config.labels, k, value);
            }
            // `portcullis.dev/` keys are no Field: the request's own stay as they are.
            Field::Annotation(k) => put(&mut config.annotations, k, self.string(&p)?),
            f => self.pod_security(config, f)?,
        }
        Ok(())
    }

    /// One field of the container.
    fn container(&self, c: &mut ContainerConfig, f: &Field) -> Result<(), Refused> {
        let p = f.pointer();
        match f {
            Field::Image => {
                let image = self.string(&p)?.filter(|i| !i.is_empty());
                let image = image.ok_or_else(|| refused(&p, "a container needs an image"))?;
                let spec = c.image.get_or_insert_with(Default::default);
                // The name the Pod now asks for is the policy's.
                spec.user_specified_image = image.clone();
                spec.image = image;
            }
            Field::Command => c.command = self.strings(&p)?,
            Field::Args => c.args = self.strings(&p)?,
            Field::WorkingDir => c.working_dir = self.string(&p)?.unwrap_or_default(),
            Field::Env => c.envs = self.env(&p)?,
            Field::CpuLimit | Field::MemoryLimit | Field::CpuRequest => self.resources(c, f)?,
            f => self.container_security(c, f)?,
        }
        Ok(())
    }

    fn env(&self, p: &str) -> Result<Vec<KeyValue>, Refused> {
        let items = match self.get(p) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(refused(p, "expected a list of {name, value}")),
        };
        let mut env = Vec::with_capacity(items.len());
        for (i, e) in items.iter().enumerate() {
            let at = format!("{p}/{i}");
            if !unset(e.get("valueFrom")) {
                return Err(refused(
                    &format!("{at}/valueFrom"),
                    "the kubelet resolves valueFrom before it calls the runtime; set a value",
                ));
            }
            let name = self
                .string(&format!("{at}/name"))?
                .filter(|n| !n.is_empty());
            let name =
                name.ok_or_else(|| refused(&format!("{at}/name"), "a variable needs a name"))?;
            let value = self.string(&format!("{at}/value"))?.unwrap_or_default();
            env.push(KeyValue { key: name, value });
        }
        Ok(env)
    }
}

fn put(map: &mut HashMap<String, String>, key: &str, value: Option<String>) {
    match value {
        Some(v) => map.insert(key.to_owned(), v),
        None => map.remove(key),
    };
}
