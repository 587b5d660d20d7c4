//! Pod sandbox and container configs as the kubelet builds them for a plain pod (no
//! `securityContext`, no resources: BestEffort), after `pkg/kubelet/kuberuntime`'s
//! `generatePodSandboxConfig` and `generateContainerConfig` with the cgroupfs driver.
//!
//! The kubelet's host directories move under the test's temp dir `root`:
//! `/var/log/pods/NS_NAME_UID` is `root/pods/NS_NAME_UID` (the pod's `log_directory`),
//! `/var/lib/kubelet/pods/UID` is `root/kubelet/pods/UID` (`etc-hosts`, termination logs).
//! Differences from a real kubelet: `cgroup_parent` is empty (not
//! `/kubepods/besteffort/podUID`, so no cgroup outlives the test), and no service account
//! token or other volumes are mounted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1;
use tonic::Status;

use super::{CriApi, CriClient};

pub const CONTAINER_CREATED: i32 = v1::ContainerState::ContainerCreated as i32;
pub const CONTAINER_RUNNING: i32 = v1::ContainerState::ContainerRunning as i32;
pub const CONTAINER_EXITED: i32 = v1::ContainerState::ContainerExited as i32;

/// A container state's name, for messages.
pub fn container_state(state: i32) -> String {
    v1::ContainerState::try_from(state)
        .map(|s| s.as_str_name().to_owned())
        .unwrap_or_else(|_| state.to_string())
}

/// The kubelet's default `/proc` paths masked and made read-only (`procMount: Default`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Network and IPC shared by the pod, a PID namespace per container
/// (`shareProcessNamespace: false`).
fn namespace_options() -> v1::NamespaceOption {
    v1::NamespaceOption {
        network: v1::NamespaceMode::Pod as i32,
        pid: v1::NamespaceMode::Container as i32,
        ipc: v1::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// `seccompProfile` unset and the `SeccompDefault` feature off: unconfined.
fn unconfined() -> Option<v1::SecurityProfile> {
    Some(v1::SecurityProfile {
        profile_type: v1::security_profile::ProfileType::Unconfined as i32,
        localhost_ref: String::new(),
    })
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The sandbox config of pod `namespace/name` with `uid`, its log directory made under
/// `root` (the kubelet makes it before `RunPodSandbox`).
pub fn pod_config(root: &Path, name: &str, namespace: &str, uid: &str) -> v1::PodSandboxConfig {
    let log_directory = root.join(format!("pods/{namespace}_{name}_{uid}"));
    std::fs::create_dir_all(&log_directory).unwrap();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.to_owned(),
            uid: uid.to_owned(),
            namespace: namespace.to_owned(),
            attempt: 0,
        }),
        hostname: name.to_owned(),
        log_directory: log_directory.to_str().unwrap().to_owned(),
        labels: labels(&[
            ("io.kubernetes.pod.name", name),
            ("io.kubernetes.pod.namespace", namespace),
            ("io.kubernetes.pod.uid", uid),
        ]),
        annotations: labels(&[("kubernetes.io/config.source", "api")]),
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options()),
                seccomp: unconfined(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `root` of a [`pod_config`]'s log directory, `root/pods/NS_NAME_UID`.
fn kubelet_root(pod: &v1::PodSandboxConfig) -> PathBuf {
    let logs = Path::new(&pod.log_directory);
    logs.parent().and_then(Path::parent).unwrap().to_owned()
}

impl CriClient {
    /// The config of container `name` of `pod` running `command` in `image` (as the pod
    /// spec names it), as the kubelet builds it once the image is present: the image by
    /// its id (asked of `ImageStatus`; `NotFound` when absent) with the name as the user
    /// specified it (`v1` only), the kubelet's labels and annotations, `/etc/hosts` and
    /// the termination log mounted from files it makes, `NAME/0.log` in the pod's log
    /// directory (made here), BestEffort resources and the default security context.
    pub fn container_config(
        &self,
        pod: &v1::PodSandboxConfig,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<v1::ContainerConfig, Status> {
        let id = match self.image_status(image)? {
            Some(found) => found.id,
            None => return Err(Status::not_found(format!("image {image} is not present"))),
        };
        let user_specified_image = match self.api {
            CriApi::V1 => image.to_owned(),
            CriApi::V1alpha2 => String::new(),
        };
        let meta = pod.metadata.clone().unwrap_or_default();
        std::fs::create_dir_all(Path::new(&pod.log_directory).join(name)).unwrap();
        Ok(v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: id,
                user_specified_image,
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            labels: labels(&[
                ("io.kubernetes.container.name", name),
                ("io.kubernetes.pod.name", &meta.name),
                ("io.kubernetes.pod.namespace", &meta.namespace),
                ("io.kubernetes.pod.uid", &meta.uid),
            ]),
            annotations: labels(&[
                ("io.kubernetes.container.restartCount", "0"),
                (
                    "io.kubernetes.container.terminationMessagePath",
                    "/dev/termination-log",
                ),
                ("io.kubernetes.container.terminationMessagePolicy", "File"),
                ("io.kubernetes.pod.terminationGracePeriod", "30"),
            ]),
            mounts: kubelet_mounts(pod, name),
            log_path: format!("{name}/0.log"),
            linux: Some(v1::LinuxContainerConfig {
                resources: Some(v1::LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_shares: 2,
                    oom_score_adj: 1000,
                    ..Default::default()
                }),
                security_context: Some(v1::LinuxContainerSecurityContext {
                    namespace_options: Some(namespace_options()),
                    masked_paths: MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
                    readonly_paths: READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
                    seccomp: unconfined(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        })
    }
}

/// The security context of a [`CriClient::container_config`], to change: e.g.
/// `security(&mut config).privileged = true`.
pub fn security(config: &mut v1::ContainerConfig) -> &mut v1::LinuxContainerSecurityContext {
    let linux = config.linux.get_or_insert_with(Default::default);
    linux.security_context.get_or_insert_with(Default::default)
}

/// The security context of a [`pod_config`], to change. The kubelet makes the sandbox
/// privileged when any of the pod's containers is (`HasPrivilegedContainer`), and
/// containerd refuses a privileged container in a sandbox that is not.
pub fn sandbox_security(pod: &mut v1::PodSandboxConfig) -> &mut v1::LinuxSandboxSecurityContext {
    let linux = pod.linux.get_or_insert_with(Default::default);
    linux.security_context.get_or_insert_with(Default::default)
}

/// `/etc/hosts` and `/dev/termination-log`, from files under `root/kubelet/pods/UID`.
fn kubelet_mounts(pod: &v1::PodSandboxConfig, container: &str) -> Vec<v1::Mount> {
    let uid = pod.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or("");
    let dir = kubelet_root(pod).join("kubelet/pods").join(uid);
    let termination = dir
        .join("containers")
        .join(container)
        .join("termination-log");
    std::fs::create_dir_all(termination.parent().unwrap()).unwrap();
    std::fs::write(&termination, "").unwrap();
    let hosts = dir.join("etc-hosts");
    let hostname = &pod.hostname;
    std::fs::write(
        &hosts,
        format!("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"),
    )
    .unwrap();
    let mount = |container_path: &str, host: &Path| v1::Mount {
        container_path: container_path.to_owned(),
        host_path: host.to_str().unwrap().to_owned(),
        selinux_relabel: true,
        ..Default::default()
    };
    vec![
        mount("/etc/hosts", &hosts),
        mount("/dev/termination-log", &termination),
    ]
}
