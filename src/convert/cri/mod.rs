//! CRI requests → v1 Pod: the Kubernetes view of the kubelet's `RunPodSandbox` and
//! `CreateContainer` calls, the inverse of what the kubelet does when it builds them from a
//! Pod (kubernetes `pkg/kubelet/kuberuntime`: `kuberuntime_sandbox.go`
//! `generatePodSandboxConfig`, `kuberuntime_container.go` `generateContainerConfig`,
//! `security_context.go`). The JSON has the shape of the OCI conversion's (`convert::pod`):
//! `privileged: true` plus `portcullis.dev/privileged-reasons` for host power with no Pod field.
//!
//! One conversion serves both CRI versions: `runtime.v1alpha2` messages are wire-compatible
//! with `runtime.v1` for every field they share (same numbers and types; checked against the
//! k8s-cri 0.11 protos, where v1alpha2 has no field v1 lacks), so the door decodes v1alpha2
//! bytes with the v1 types.
//!
//! The conversion is pure: no I/O, no panics. Anything that gives host power and has no Pod
//! field makes the view privileged (with a reason) or is refused ([`CriError`]).
//!
//! | CRI field | Pod field |
//! |---|---|
//! | `metadata.name` / `.namespace` / `.uid` | `metadata.name` / `.namespace` / `.uid` (name and namespace required) |
//! | `metadata.attempt` | ignored: a retry counter |
//! | `labels`, `annotations` (sandbox) | `metadata.labels`, `metadata.annotations` as sent (`portcullis.dev/` annotations dropped: ours) |
//! | `runtime_handler` | `spec.runtimeClassName` (empty: absent) |
//! | `hostname` | `spec.hostname` |
//! | `dns_config` | `spec.dnsConfig` (`servers` → `nameservers`, `searches`, `options` `name:value` → `{name, value}`) |
//! | `port_mappings[]` with `host_port` > 0 | `ports[]` `{containerPort, hostPort, hostIP, protocol}` of the container (container_pod) or of the placeholder container `sandbox` (sandbox_pod); `host_port` 0 adds nothing and is ignored; outside 0‥65535: refused |
//! | `log_directory` + `log_path` | not shown; a directory outside `/var/log/pods/<one name>` or a path with `..` or `/` at the start: privileged (the runtime writes the container's output there on the host) |
//! | `linux.cgroup_parent` | annotation `portcullis.dev/cgroup-parent` |
//! | `linux.overhead`, `linux.resources` (sandbox) | ignored: limits, no power |
//! | `linux.sysctls` | `spec.securityContext.sysctls`, sorted by name |
//! | `…namespace_options.network` / `.ipc` | `NODE` → `hostNetwork` / `hostIPC`; `POD`, `CONTAINER` → false; `TARGET` → refused (the kubelet never sends it) |
//! | `…namespace_options.pid` | `NODE` → `hostPID`; `POD` → `shareProcessNamespace: true`; `CONTAINER` → false; `TARGET` (containers only: `kubectl debug --target`) → `shareProcessNamespace: true` and annotation `portcullis.dev/pid-target` = `target_id` (another container of this sandbox, judged when it was created); `TARGET` on the sandbox → refused |
//! | `…namespace_options.userns_options` | absent or `NODE` → `hostUsers: true`; `POD` → `hostUsers: false`, unless a uid/gid list is empty or maps host id 0 (then true); `CONTAINER`/`TARGET` → refused |
//! | sandbox `security_context.privileged` | placeholder container `sandbox` with `securityContext.privileged: true` (the pause container may then host privileged containers; Pod Security's `privileged` check sees it) |
//! | sandbox `run_as_user`, `run_as_group`, `supplemental_groups`, `supplemental_groups_policy` | `spec.securityContext.runAsUser`, `runAsGroup`, `supplementalGroups` (with the container's, in container_pod; `fsGroup` cannot be told apart and is among them), `supplementalGroupsPolicy` |
//! | sandbox `seccomp`, `apparmor`, `selinux_options` | `spec.securityContext.seccompProfile`, `appArmorProfile`, `seLinuxOptions` |
//! | `seccomp` (`SecurityProfile`) | `RuntimeDefault`, `Localhost` + `localhostProfile` = `localhost_ref`; `Unconfined` or absent → no `seccompProfile`, the Pod the kubelet sends `Unconfined` for (see `security::seccomp`) |
//! | `apparmor` | as seccomp; absent → absent |
//! | deprecated `seccomp_profile_path`, `apparmor_profile` | read when the profile message is absent: `runtime/default`, `docker/default`, `unconfined`, `localhost/<ref>`; anything else refused |
//! | sandbox `readonly_rootfs` | ignored: the pause container's root, a restriction |
//! | `windows` | ignored, except `host_process: true` → refused (a host process) |
//! | container `metadata.name` | `containers[0].name` (required) |
//! | `image.image` | `image` (what runs; `image.user_specified_image` → annotation `portcullis.dev/user-specified-image`, a claim) |
//! | `command`, `args`, `working_dir`, `envs`, `tty`, `stdin`, `stdin_once` | `command`, `args`, `workingDir`, `env`, `tty`, `stdin`, `stdinOnce` |
//! | `mounts[]` under `/var/lib/kubelet/pods/<uid>/volumes/<plugin>/<name>` | the kubelet's own volumes: `emptyDir`, `secret`, `configMap`, `projected`, `downwardAPI`; other plugins (`csi`, …) → `persistentVolumeClaim` named `<name>` |
//! | `mounts[]` of the kubelet's `etc-hosts` and termination log | not shown (the kubelet's files) |
//! | other `mounts[]` | `hostPath` volume `cri-mount-<i>` + `volumeMount` (`readOnly`, `recursiveReadOnly: Enabled`, `mountPropagation`: PRIVATE → absent, HOST_TO_CONTAINER → `HostToContainer`, BIDIRECTIONAL → `Bidirectional` and, on an unprivileged container, privileged as Kubernetes allows it only there) |
//! | `mounts[].image` | `image` volume `{reference}` |
//! | `mounts[].selinux_relabel` on a `hostPath` | privileged: relabels host files (the kubelet relabels only its own volumes) |
//! | `mounts[].uidMappings` / `gidMappings` | ignored, unless a range maps host id 0: privileged (files of host root) |
//! | `devices[]` | privileged, with `portcullis.dev/devices`, except host `/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `console`, `ptmx`, `net/tun` (the runtimes' defaults, devices.rs) |
//! | `CDI_devices[]`, container annotations `cdi.k8s.io/*` | privileged: a CDI spec may add device nodes, mounts and hooks the request does not show |
//! | `linux.security_context.capabilities` | `capabilities.add` (`add_capabilities` ∪ `add_ambient_capabilities`), `.drop`, Kubernetes spelling (`SYS_ADMIN`) |
//! | `privileged`, `readonly_rootfs`, `no_new_privs` | `privileged`, `readOnlyRootFilesystem`, `allowPrivilegeEscalation = !no_new_privs` |
//! | `run_as_user`, `run_as_group` | `runAsUser` (and `runAsNonRoot = uid != 0`, as the OCI view), `runAsGroup` |
//! | `run_as_username` | `runAsUser`/`runAsNonRoot` absent: a name cannot be judged (the kubelet itself refuses a named user under `runAsNonRoot`) |
//! | `masked_paths`, `readonly_paths` | both empty on an unprivileged container → `procMount: Unmasked`; else `Default` |
//! | container `namespace_options` | OR'ed into the Pod's host flags, as for the sandbox; absent user namespace options → `hostUsers: true` |
//! | `linux.resources` | `limits.cpu` = ⌈quota × 1000 / period⌉ m, `limits.memory` = bytes, `hugepages-<size>`; `requests.cpu` = ⌈shares × 1000 / 1024⌉ m (the exact inverse of the kubelet's ⌊m × 1024 / 1000⌋) when shares > 2 (the kubelet's minimum); `oom_score_adj`, `cpuset_*`, `unified`, `memory_swap_limit_in_bytes` ignored: limits, no host access |
//! | container `labels`, `annotations` | ignored: the kubelet's bookkeeping (hash, restart count, ports), except `cdi.k8s.io/*` above |
//! | `log_path` | see `log_directory` |
//!
//! The way back, a policy's change to the Pod written into the request, is
//! [`write_sandbox`] / [`write_container`] (`writeback.rs`, with its own table).

mod container;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod roundtrip_tests;
mod sandbox;
mod security;
pub(crate) mod stored;
#[cfg(test)]
mod tests;
mod writeback;
#[cfg(test)]
mod writeback_fixtures;
mod writeback_resources;
mod writeback_security;
#[cfg(test)]
mod writeback_tests;

pub use writeback::{write_container, write_sandbox, WriteBackError};

use k8s_cri::v1::{ContainerConfig, LinuxContainerResources, PodSandboxConfig};
use serde_json::Value;

use crate::config::KubeletDirs;

/// A CRI request that cannot be shown as a Pod, or must not be.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("the CRI message is not a valid {message}: {error}; the caller sent malformed bytes")]
    Decode {
        message: &'static str,
        error: String,
    },
    #[error(
        "the CRI {message} carries {unknown} bytes of fields this build's CRI protos (k8s-cri \
         0.11) do not know, so policy cannot judge them; upgrade Portcullis, or have the \
         kubelet send only fields of the CRI version Portcullis knows"
    )]
    UnknownFields {
        message: &'static str,
        unknown: usize,
    },
    #[error("CRI field `{field}` is required: {why}")]
    Missing { field: String, why: &'static str },
    #[error("CRI field `{field}` is refused: {why}; remove it or send what the kubelet sends")]
    Refused { field: String, why: String },
}

impl CriError {
    pub(crate) fn refused(field: impl Into<String>, why: impl Into<String>) -> Self {
        CriError::Refused {
            field: field.into(),
            why: why.into(),
        }
    }
}

/// `<rootDir>/pods/`: under it, the kubelet's directory of each Pod (`<uid>/volumes/…`).
fn kubelet_pods(dirs: &KubeletDirs) -> String {
    format!("{}/pods/", dirs.root_dir.trim_end_matches('/'))
}

/// `<podLogsDir>/`: under it, one directory of logs per Pod.
fn pod_logs(dirs: &KubeletDirs) -> String {
    format!("{}/", dirs.pod_logs_dir.trim_end_matches('/'))
}

/// Decodes a CRI message, refusing bytes that carry fields this build's CRI protos do not
/// know (prost drops unknown fields silently; a newer kubelet's field would reach
/// containerd unseen by policy). Check: the decoded message re-encodes to exactly as many
/// bytes as were sent (`encoded_len() == bytes.len()`): Go's protobuf omits defaults and
/// packs repeated scalars as prost does, and map order does not change the length.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, CriError> {
    let message = std::any::type_name::<M>()
        .rsplit("::")
        .next()
        .unwrap_or("message");
    let m = M::decode(bytes).map_err(|e| CriError::Decode {
        message,
        error: e.to_string(),
    })?;
    let known = m.encoded_len();
    if known != bytes.len() {
        return Err(CriError::UnknownFields {
            message,
            unknown: bytes.len().abs_diff(known),
        });
    }
    Ok(m)
}

/// The Pod a RunPodSandbox request describes (CREATE pods), with no containers — except the
/// placeholder container `sandbox` when the sandbox itself holds what Pod Security judges
/// on containers only (privileged, host ports, privileged reasons).
pub fn sandbox_pod(
    config: &PodSandboxConfig,
    runtime_handler: &str,
    paths: &KubeletDirs,
) -> Result<Value, CriError> {
    let mut pod = sandbox::SandboxPod::read(config, runtime_handler, paths)?;
    if let Some(placeholder) = pod.placeholder() {
        pod.spec_mut()
            .insert("containers".into(), Value::Array(vec![placeholder]));
    } else {
        pod.spec_mut()
            .insert("containers".into(), Value::Array(Vec::new()));
    }
    Ok(pod.into_value())
}

/// The Pod of a CreateContainer request: the sandbox's Pod (from the request's
/// `sandbox_config`) with this one container in `spec.containers`.
pub fn container_pod(
    sandbox: &PodSandboxConfig,
    container: &ContainerConfig,
    runtime_handler: &str,
    paths: &KubeletDirs,
) -> Result<Value, CriError> {
    let mut pod = sandbox::SandboxPod::read(sandbox, runtime_handler, paths)?;
    container::add(&mut pod, container)?;
    Ok(pod.into_value())
}

/// The Pod of `UpdateContainerResources`: `pod` (the container's, from its stored configs)
/// with its container's `resources` as `linux` would set them, read as `CreateContainer`'s
/// are. A resource the view does not show (`oom_score_adj`, `cpuset_*`, `unified`) changes
/// nothing here: limits, no host access.
pub fn resized(pod: &Value, linux: &LinuxContainerResources) -> Value {
    let mut pod = pod.clone();
    if let Some(c) = pod
        .pointer_mut("/spec/containers/0")
        .and_then(Value::as_object_mut)
    {
        let resources = container::resources(linux);
        if resources.as_object().is_some_and(|r| r.is_empty()) {
            c.remove("resources");
        } else {
            c.insert("resources".into(), resources);
        }
    }
    pod
}
