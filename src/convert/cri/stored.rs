//! The configs containerd keeps for a CRI container and its sandbox, read back from the
//! `info` of `ContainerStatus` / `PodSandboxStatus` with `verbose: true`, so that a call
//! naming only a container id (`UpdateContainerResources`) is judged against the whole Pod
//! the kubelet created, converted exactly as `CreateContainer` was.
//!
//! containerd writes that info with Go's `encoding/json` over the CRI's generated Go types
//! (`pkg/cri/server/container_status.go` `ContainerInfo.Config`, `sandbox_status.go`
//! `SandboxInfo.Config`): the proto field names in snake_case from the `json:` tags,
//! `omitempty`, enums as numbers, `Int64Value` as `{"value": n}`. k8s-cri's prost types have
//! no serde, so the mirror below reads that JSON and builds them; it is hand-written
//! because no kept crate reads Go's JSON of the CRI types. Every struct refuses fields it
//! does not know (`deny_unknown_fields`): a newer runtime's field would otherwise be dropped
//! unseen by policy, the same rule as [`super::decode`] for the wire.

use std::collections::HashMap;

use k8s_cri::v1 as api;
use serde::Deserialize;
use serde_json::Value;

use super::CriError;

/// What `ContainerStatus` (verbose) says of a container: its sandbox and its config.
#[derive(Debug)]
pub struct StoredContainer {
    pub sandbox_id: String,
    pub config: api::ContainerConfig,
}

/// What `PodSandboxStatus` (verbose) says of a sandbox: its config and runtime handler.
#[derive(Debug)]
pub struct StoredSandbox {
    pub runtime_handler: String,
    pub config: api::PodSandboxConfig,
}

/// Reads `ContainerStatusResponse.info["info"]`. The resources are those in force: the
/// stored config keeps `CreateContainer`'s, while `UpdateContainerResources` changes the
/// container's OCI spec (`runtimeSpec.linux.resources`), which is read over them.
pub fn container(info: &str) -> Result<StoredContainer, CriError> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "sandboxID", default)]
        sandbox_id: String,
        config: Option<Value>,
        #[serde(rename = "runtimeSpec", default)]
        runtime_spec: Value,
    }
    let info: Info = read("ContainerStatus info", info)?;
    let config: ContainerConfig = stored("ContainerStatus info.config", info.config)?;
    let mut config = api::ContainerConfig::from(config);
    if let Some(oci) = info.runtime_spec.pointer("/linux/resources") {
        let linux = config.linux.get_or_insert_with(Default::default);
        in_force(linux.resources.get_or_insert_with(Default::default), oci)?;
    }
    Ok(StoredContainer {
        sandbox_id: info.sandbox_id,
        config,
    })
}

/// Writes the OCI spec's `linux.resources` (runtime-spec config-linux.md) over `r`, for
/// the fields a CRI update sets.
fn in_force(r: &mut api::LinuxContainerResources, oci: &Value) -> Result<(), CriError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Oci {
        memory: Memory,
        cpu: Cpu,
        #[serde(rename = "hugepageLimits")]
        hugepages: Vec<Hugepage>,
        unified: HashMap<String, String>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Memory {
        limit: i64,
        swap: i64,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Cpu {
        shares: u64,
        quota: i64,
        period: u64,
        cpus: String,
        mems: String,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Hugepage {
        #[serde(rename = "pageSize")]
        page_size: String,
        limit: u64,
    }
    let o: Oci = serde_json::from_value(oci.clone()).map_err(|e| CriError::Decode {
        message: "ContainerStatus info.runtimeSpec.linux.resources",
        error: e.to_string(),
    })?;
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    r.memory_limit_in_bytes = o.memory.limit;
    r.memory_swap_limit_in_bytes = o.memory.swap;
    r.cpu_shares = signed(o.cpu.shares);
    r.cpu_quota = o.cpu.quota;
    r.cpu_period = signed(o.cpu.period);
    r.cpuset_cpus = o.cpu.cpus;
    r.cpuset_mems = o.cpu.mems;
    r.unified = o.unified;
    r.hugepage_limits = o
        .hugepages
        .into_iter()
        .map(|h| api::HugepageLimit {
            page_size: h.page_size,
            limit: h.limit,
        })
        .collect();
    Ok(())
}

/// Reads `PodSandboxStatusResponse.info["info"]`.
pub fn sandbox(info: &str) -> Result<StoredSandbox, CriError> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "runtimeHandler", default)]
        runtime_handler: String,
        config: Option<Value>,
    }
    let info: Info = read("PodSandboxStatus info", info)?;
    let config: PodSandboxConfig = stored("PodSandboxStatus info.config", info.config)?;
    Ok(StoredSandbox {
        runtime_handler: info.runtime_handler,
        config: config.into(),
    })
}

fn read<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, CriError> {
    serde_json::from_str(text).map_err(|e| CriError::Decode {
        message: what,
        error: e.to_string(),
    })
}

fn stored<T: serde::de::DeserializeOwned>(
    what: &'static str,
    config: Option<Value>,
) -> Result<T, CriError> {
    let config = config.ok_or_else(|| CriError::Missing {
        field: what.into(),
        why: "the runtime keeps no config for it (containerd's CRI plugin does), so the \
              Pod it belongs to cannot be judged",
    })?;
    serde_json::from_value(config).map_err(|e| CriError::Decode {
        message: what,
        error: e.to_string(),
    })
}

// --- the mirror: Go's JSON of the CRI config types -----------------------------------

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ContainerConfig {
    metadata: Option<ContainerMetadata>,
    image: Option<ImageSpec>,
    command: Vec<String>,
    args: Vec<String>,
    working_dir: String,
    envs: Vec<KeyValue>,
    mounts: Vec<Mount>,
    devices: Vec<Device>,
    labels: HashMap<String, String>,
    annotations: HashMap<String, String>,
    log_path: String,
    stdin: bool,
    stdin_once: bool,
    tty: bool,
    linux: Option<LinuxContainerConfig>,
    windows: Option<Empty>,
    #[serde(rename = "CDI_devices")]
    cdi_devices: Vec<CdiDevice>,
}

/// A Windows section: containerd on Linux keeps none; anything in it is refused.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ContainerMetadata {
    name: String,
    attempt: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ImageSpec {
    image: String,
    annotations: HashMap<String, String>,
    user_specified_image: String,
    runtime_handler: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Mount {
    container_path: String,
    host_path: String,
    readonly: bool,
    selinux_relabel: bool,
    propagation: i32,
    #[serde(rename = "uidMappings")]
    uid_mappings: Vec<IdMapping>,
    #[serde(rename = "gidMappings")]
    gid_mappings: Vec<IdMapping>,
    recursive_read_only: bool,
    image: Option<ImageSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct IdMapping {
    host_id: u32,
    container_id: u32,
    length: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Device {
    container_path: String,
    host_path: String,
    permissions: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CdiDevice {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LinuxContainerConfig {
    resources: Option<Resources>,
    security_context: Option<ContainerSecurity>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Resources {
    cpu_period: i64,
    cpu_quota: i64,
    cpu_shares: i64,
    memory_limit_in_bytes: i64,
    oom_score_adj: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    hugepage_limits: Vec<HugepageLimit>,
    unified: HashMap<String, String>,
    memory_swap_limit_in_bytes: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct HugepageLimit {
    page_size: String,
    limit: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ContainerSecurity {
    capabilities: Option<Capability>,
    privileged: bool,
    namespace_options: Option<NamespaceOption>,
    selinux_options: Option<SeLinuxOption>,
    run_as_user: Option<Int64Value>,
    run_as_group: Option<Int64Value>,
    run_as_username: String,
    readonly_rootfs: bool,
    supplemental_groups: Vec<i64>,
    supplemental_groups_policy: i32,
    no_new_privs: bool,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
    seccomp: Option<SecurityProfile>,
    apparmor: Option<SecurityProfile>,
    apparmor_profile: String,
    seccomp_profile_path: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Capability {
    add_capabilities: Vec<String>,
    drop_capabilities: Vec<String>,
    add_ambient_capabilities: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct NamespaceOption {
    network: i32,
    pid: i32,
    ipc: i32,
    target_id: String,
    userns_options: Option<UserNamespace>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct UserNamespace {
    mode: i32,
    uids: Vec<IdMapping>,
    gids: Vec<IdMapping>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SeLinuxOption {
    user: String,
    role: String,
    #[serde(rename = "type")]
    kind: String,
    level: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Int64Value {
    value: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SecurityProfile {
    profile_type: i32,
    localhost_ref: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PodSandboxConfig {
    metadata: Option<PodSandboxMetadata>,
    hostname: String,
    log_directory: String,
    dns_config: Option<DnsConfig>,
    port_mappings: Vec<PortMapping>,
    labels: HashMap<String, String>,
    annotations: HashMap<String, String>,
    linux: Option<LinuxPodSandboxConfig>,
    windows: Option<Empty>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PodSandboxMetadata {
    name: String,
    uid: String,
    namespace: String,
    attempt: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DnsConfig {
    servers: Vec<String>,
    searches: Vec<String>,
    options: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PortMapping {
    protocol: i32,
    container_port: i32,
    host_port: i32,
    host_ip: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LinuxPodSandboxConfig {
    cgroup_parent: String,
    security_context: Option<SandboxSecurity>,
    sysctls: HashMap<String, String>,
    overhead: Option<Resources>,
    resources: Option<Resources>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SandboxSecurity {
    namespace_options: Option<NamespaceOption>,
    selinux_options: Option<SeLinuxOption>,
    run_as_user: Option<Int64Value>,
    run_as_group: Option<Int64Value>,
    readonly_rootfs: bool,
    supplemental_groups: Vec<i64>,
    supplemental_groups_policy: i32,
    privileged: bool,
    seccomp: Option<SecurityProfile>,
    apparmor: Option<SecurityProfile>,
    seccomp_profile_path: String,
}

#[path = "stored_into.rs"]
mod into;

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
