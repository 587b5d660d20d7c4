//! `proxy:` — the containerd door: its sockets, what policies see, and what `Tasks/Create`
//! may choose.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use serde::Deserialize;

use super::listen::{ListenMode, ListenModeError};

/// `proxy:` — the containerd door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Socket the proxy listens on.
    pub listen: PathBuf,
    /// `MODE[:USER:GROUP]`, mode in octal (`listenMode`, default `0660`).
    pub listen_mode: ListenMode,
    /// The real containerd socket.
    pub containerd: PathBuf,
    pub conversion: Conversion,
    /// RuntimeClass name → containerd runtime name.
    pub runtime_classes: BTreeMap<String, String>,
    /// Docker Engine API socket, to resolve the image of containers dockerd creates.
    pub docker: Option<PathBuf>,
    /// CRI calls (`runtime.v1.RuntimeService`, `v1alpha2`) that create, change or exec
    /// into containers: containerd's CRI plugin makes those containers in-process, out of
    /// the proxy's sight, so they are refused unless `relay` says to pass them unchecked.
    pub cri: CriMode,
    /// Where the kubelet keeps pod volumes and logs, for the CRI door.
    pub kubelet: KubeletDirs,
    /// Socket peers (uids) whose CRI calls may name their pod's namespace: the kubelet's.
    pub cri_trusted_uids: Vec<u32>,
    /// What `Tasks/Create` may choose beyond the stored container (docs/security.md).
    pub tasks: TaskRules,
    /// Client connections relayed at once (each holds one to containerd); as many again
    /// may be waiting for their HTTP/2 preface (docs/proxy.md#limits). Not zero: that
    /// would refuse every client.
    pub max_connections: NonZeroUsize,
}

/// `proxy:` as written: [`ProxyConfig`] with `listenMode` still a string.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProxyConfig {
    #[serde(default = "default_listen")]
    pub listen: PathBuf,
    #[serde(default = "default_listen_mode")]
    pub listen_mode: String,
    #[serde(default = "default_containerd")]
    pub containerd: PathBuf,
    #[serde(default)]
    pub conversion: Conversion,
    #[serde(default)]
    pub runtime_classes: BTreeMap<String, String>,
    #[serde(default)]
    pub docker: Option<PathBuf>,
    #[serde(default)]
    pub cri: CriMode,
    #[serde(default)]
    pub kubelet: KubeletDirs,
    #[serde(default = "default_cri_trusted_uids")]
    pub cri_trusted_uids: Vec<u32>,
    #[serde(default)]
    pub tasks: TaskRules,
    #[serde(default = "default_max_connections")]
    pub max_connections: NonZeroUsize,
}

impl RawProxyConfig {
    /// The typed section; fails only on a `listenMode` that is not `MODE[:USER:GROUP]`.
    pub fn typed(self) -> Result<ProxyConfig, ListenModeError> {
        let listen_mode = ListenMode::parse(&self.listen_mode)?;
        Ok(ProxyConfig {
            listen: self.listen,
            listen_mode,
            containerd: self.containerd,
            conversion: self.conversion,
            runtime_classes: self.runtime_classes,
            docker: self.docker,
            cri: self.cri,
            kubelet: self.kubelet,
            cri_trusted_uids: self.cri_trusted_uids,
            tasks: self.tasks,
            max_connections: self.max_connections,
        })
    }
}

/// `proxy.kubelet:` — the kubelet's directories, as its flags and config set them. Mounts
/// from under `rootDir/pods/<uid>/` are the Pod's own volumes; container logs outside
/// `podLogsDir` are written where they should not be (shown as privileged).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletDirs {
    /// `--root-dir`.
    #[serde(default = "default_kubelet_root")]
    pub root_dir: String,
    /// `podLogsDir` (KubeletConfiguration).
    #[serde(default = "default_pod_logs_dir")]
    pub pod_logs_dir: String,
}

impl Default for KubeletDirs {
    fn default() -> Self {
        Self {
            root_dir: default_kubelet_root(),
            pod_logs_dir: default_pod_logs_dir(),
        }
    }
}

/// root: the kubelet runs as root on a node.
fn default_cri_trusted_uids() -> Vec<u32> {
    vec![0]
}

fn default_kubelet_root() -> String {
    "/var/lib/kubelet".into()
}

fn default_pod_logs_dir() -> String {
    "/var/log/pods".into()
}

/// `proxy.cri`: what happens to CRI calls that create or change containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CriMode {
    /// Refused, all of them: for hosts where nothing but the kubelet's own calls should
    /// reach the CRI plugin and the CRI door is not wanted.
    Refuse,
    /// Passed on unchecked.
    Relay,
    /// The CRI door (the default): `RunPodSandbox`, `CreateContainer`, `PullImage` and
    /// `UpdateContainerResources` admitted as Pods, execs, attaches and port forwards as
    /// CONNECTs; the calls it cannot judge (`CheckpointContainer`, `UpdateRuntimeConfig`,
    /// any new one) refused.
    #[default]
    Admit,
}

/// `proxy.tasks:` — allow-lists for the parts of `Tasks/Create` and `Tasks/Exec` that run
/// something on the host as root. Empty (nothing allowed) by default, but for runc state
/// roots, where the standard ones are allowed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaskRules {
    /// runc state roots (`Options.root`; the shim adds the namespace) a caller may name:
    /// dockerd names `<exec-root>/runtime-runc`.
    #[serde(default = "default_runc_roots")]
    pub runc_roots: Vec<String>,
    /// `CreateTaskRequest.runtime_path`: shim binaries a caller may name.
    #[serde(default)]
    pub runtime_paths: Vec<String>,
    /// runc `Options.binary_name`: runtime binaries a caller may name.
    #[serde(default)]
    pub runc_binaries: Vec<String>,
    /// `binary://` and `file://` stdio URIs (exact, without the query) the shim may run or
    /// write as root.
    #[serde(default)]
    pub stdio: Vec<String>,
    /// Let `Tasks/Create` restore from a checkpoint.
    #[serde(default)]
    pub checkpoints: bool,
}

impl Default for TaskRules {
    fn default() -> Self {
        Self {
            runc_roots: default_runc_roots(),
            runtime_paths: Vec::new(),
            runc_binaries: Vec::new(),
            stdio: Vec::new(),
            checkpoints: false,
        }
    }
}

fn default_runc_roots() -> Vec<String> {
    [
        "/run/containerd/runc",
        "/run/docker/runtime-runc",
        "/var/run/docker/runtime-runc",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            listen_mode: ListenMode::default(),
            containerd: default_containerd(),
            conversion: Conversion::default(),
            runtime_classes: BTreeMap::new(),
            docker: None,
            cri: CriMode::default(),
            kubelet: KubeletDirs::default(),
            cri_trusted_uids: default_cri_trusted_uids(),
            tasks: TaskRules::default(),
            max_connections: default_max_connections(),
        }
    }
}

impl Default for RawProxyConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            listen_mode: default_listen_mode(),
            containerd: default_containerd(),
            conversion: Conversion::default(),
            runtime_classes: BTreeMap::new(),
            docker: None,
            cri: CriMode::default(),
            kubelet: KubeletDirs::default(),
            cri_trusted_uids: default_cri_trusted_uids(),
            tasks: TaskRules::default(),
            max_connections: default_max_connections(),
        }
    }
}

/// A node's clients of containerd (kubelet, dockerd, ctr, nerdctl, monitoring) hold a
/// handful of connections each; 1024 is far above that, and bounds the proxy at about
/// three descriptors per slot (client, containerd, and a client still in its preface).
fn default_max_connections() -> NonZeroUsize {
    NonZeroUsize::new(1024).expect("not zero")
}

fn default_listen() -> PathBuf {
    PathBuf::from("/run/portcullis/containerd.sock")
}
/// The text of [`ListenMode::default`].
fn default_listen_mode() -> String {
    "0660".into()
}
fn default_containerd() -> PathBuf {
    PathBuf::from("/run/containerd/containerd.sock")
}

/// What object policies see for a container request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// A v1 Pod, so Kubernetes policies work unchanged.
    #[default]
    Pod,
    /// The containerd request itself (proto3 JSON, spec decoded).
    Raw,
}
