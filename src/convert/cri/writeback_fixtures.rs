//! Requests for the write-back tests, as the kubelet sends them, and helpers that change
//! a Pod's JSON at a pointer.

use std::collections::HashMap;

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use serde_json::{json, Value};

use super::{container_pod, sandbox_pod};
use crate::config::KubeletDirs;

/// A change to a Pod's JSON.
pub(super) type Mutate = fn(&mut Value);

pub(super) const C0: &str = "/spec/containers/0";
pub(super) const SC: &str = "/spec/containers/0/securityContext";

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn profile(t: ProfileType, local: &str) -> Option<SecurityProfile> {
    Some(SecurityProfile {
        profile_type: t as i32,
        localhost_ref: local.into(),
    })
}

fn namespaces() -> Option<NamespaceOption> {
    Some(NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        target_id: String::new(),
        userns_options: Some(UserNamespace {
            mode: NamespaceMode::Node as i32,
            ..Default::default()
        }),
    })
}

/// The sandbox of `default/web` as the kubelet sends it, with `sc` as its security context.
pub(super) fn sandbox_with(sc: LinuxSandboxSecurityContext) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: "/var/log/pods/default_web_u1".into(),
        labels: map(&[("io.kubernetes.pod.name", "web"), ("app", "web")]),
        annotations: map(&[
            ("kubernetes.io/config.source", "api"),
            ("portcullis.dev/note", "the request's own"),
        ]),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: namespaces(),
                ..sc
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// RunPodSandbox requests: the kubelet's default, a restricted Pod, deprecated fields.
#[allow(deprecated)]
pub(super) fn sandboxes() -> Vec<(&'static str, RunPodSandboxRequest)> {
    let plain = sandbox_with(LinuxSandboxSecurityContext {
        seccomp: profile(ProfileType::RuntimeDefault, ""),
        ..Default::default()
    });
    let mut restricted = sandbox_with(LinuxSandboxSecurityContext {
        run_as_user: Some(Int64Value { value: 1000 }),
        run_as_group: Some(Int64Value { value: 3000 }),
        supplemental_groups: vec![3000, 4000],
        seccomp: profile(ProfileType::Localhost, "/var/lib/kubelet/seccomp/a.json"),
        apparmor: profile(ProfileType::RuntimeDefault, ""),
        selinux_options: Some(SeLinuxOption {
            level: "s0:c1,c2".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    if let Some(linux) = restricted.linux.as_mut() {
        linux.sysctls = map(&[("net.ipv4.ping_group_range", "0 2147483647")]);
    }
    let deprecated = sandbox_with(LinuxSandboxSecurityContext {
        seccomp_profile_path: "runtime/default".into(),
        ..Default::default()
    });
    [
        ("kubelet", plain, "runc"),
        ("restricted", restricted, ""),
        ("deprecated", deprecated, "kata"),
    ]
    .into_iter()
    .map(|(name, config, handler)| {
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: handler.into(),
        };
        (name, req)
    })
    .collect()
}

/// A container `app` as the kubelet sends it, with `sc` as its security context.
pub(super) fn container_with(sc: LinuxContainerSecurityContext) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: "docker.io/library/busybox:1.36".into(),
            ..Default::default()
        }),
        command: vec!["sleep".into()],
        args: vec!["3600".into()],
        envs: vec![KeyValue {
            key: "A".into(),
            value: "1".into(),
        }],
        mounts: vec![Mount {
            container_path: "/etc/hosts".into(),
            host_path: "/var/lib/kubelet/pods/u1/etc-hosts".into(),
            ..Default::default()
        }],
        log_path: "app/0.log".into(),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 256,
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: namespaces(),
                masked_paths: vec!["/proc/kcore".into()],
                readonly_paths: vec!["/proc/sys".into()],
                ..sc
            }),
        }),
        ..Default::default()
    }
}

/// CreateContainer requests: busybox, a restricted container, a privileged one with the
/// deprecated profile strings and a user name.
#[allow(deprecated)]
pub(super) fn containers() -> Vec<(&'static str, CreateContainerRequest)> {
    let sandboxes = sandboxes();
    let busybox = container_with(LinuxContainerSecurityContext {
        seccomp: profile(ProfileType::RuntimeDefault, ""),
        ..Default::default()
    });
    let restricted = container_with(LinuxContainerSecurityContext {
        run_as_user: Some(Int64Value { value: 1000 }),
        run_as_group: Some(Int64Value { value: 3000 }),
        supplemental_groups: vec![3000, 4000],
        no_new_privs: true,
        readonly_rootfs: true,
        capabilities: Some(Capability {
            add_capabilities: vec!["NET_BIND_SERVICE".into()],
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        }),
        seccomp: profile(ProfileType::Localhost, "/var/lib/kubelet/seccomp/a.json"),
        apparmor: profile(ProfileType::Localhost, "k8s-deny-write"),
        selinux_options: Some(SeLinuxOption {
            level: "s0:c1,c2".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let privileged = container_with(LinuxContainerSecurityContext {
        privileged: true,
        run_as_username: "nobody".into(),
        capabilities: Some(Capability {
            add_capabilities: vec!["CAP_SYS_ADMIN".into()],
            add_ambient_capabilities: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        }),
        seccomp_profile_path: "unconfined".into(),
        apparmor_profile: "unconfined".into(),
        ..Default::default()
    });
    [
        ("busybox", busybox, 0),
        ("restricted", restricted, 1),
        ("privileged", privileged, 2),
    ]
    .into_iter()
    .map(|(name, config, sandbox)| {
        let req = CreateContainerRequest {
            pod_sandbox_id: "sb".into(),
            config: Some(config),
            sandbox_config: sandboxes[sandbox].1.config.clone(),
        };
        (name, req)
    })
    .collect()
}

pub(super) fn view_sandbox(req: &RunPodSandboxRequest) -> Value {
    let config = req.config.clone().unwrap_or_default();
    sandbox_pod(&config, &req.runtime_handler, &KubeletDirs::default()).unwrap()
}

pub(super) fn view_container(req: &CreateContainerRequest) -> Value {
    let sandbox = req.sandbox_config.clone().unwrap_or_default();
    let config = req.config.clone().unwrap_or_default();
    container_pod(&sandbox, &config, "", &KubeletDirs::default()).unwrap()
}

/// Sets `ptr` in `pod`, creating the objects on the way.
pub(super) fn set(pod: &mut Value, ptr: &str, value: Value) {
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    let mut cur = pod;
    for seg in ptr.split('/').skip(1).map(unescape) {
        cur = match cur {
            Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            _ => &mut cur[seg.as_str()],
        };
    }
    *cur = value;
}

/// Removes `ptr` from `pod`, and the objects it leaves empty.
pub(super) fn remove(pod: &mut Value, ptr: &str) {
    let mut ptr = ptr.to_owned();
    while let Some((parent, key)) = ptr.rsplit_once('/') {
        let Some(Value::Object(m)) = pod.pointer_mut(parent) else {
            return;
        };
        m.remove(&key.replace("~1", "/").replace("~0", "~"));
        if !m.is_empty() {
            return;
        }
        ptr = parent.to_owned();
    }
}

/// Flips the flag at `ptr` (absent: `default`).
pub(super) fn toggle(pod: &mut Value, ptr: &str, default: bool) {
    let now = pod.pointer(ptr).and_then(Value::as_bool).unwrap_or(default);
    set(pod, ptr, json!(!now));
}

/// Appends `item` to the list at `ptr`, creating it.
pub(super) fn push(pod: &mut Value, ptr: &str, item: Value) {
    let mut items = pod.pointer(ptr).cloned().unwrap_or(json!([]));
    items.as_array_mut().unwrap().push(item);
    set(pod, ptr, items);
}
