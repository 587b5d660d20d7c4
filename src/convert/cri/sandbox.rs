//! The Pod-level part of the view, from a `PodSandboxConfig`.

use std::collections::BTreeMap;

use k8s_cri::v1::{
    IdMapping, NamespaceMode, NamespaceOption, PodSandboxConfig, PortMapping, Protocol,
};
use serde_json::{json, Map, Value};

use super::security::{apparmor, seccomp, selinux};
use super::CriError;
use crate::config::KubeletDirs;
use crate::convert::pod::{ANNOTATION_PREFIX, PRIVILEGED_REASONS_ANNOTATION};

/// The kubelet's default `podLogsDir`.
/// The placeholder container of a sandbox Pod.
pub(crate) const SANDBOX_CONTAINER: &str = "sandbox";
const CGROUP_PARENT_ANNOTATION: &str = "portcullis.dev/cgroup-parent";
const PID_TARGET_ANNOTATION: &str = "portcullis.dev/pid-target";

/// Which namespaces are the host's (or shared), OR'ed over sandbox and container.
#[derive(Debug, Default)]
pub(crate) struct Namespaces {
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    host_users: bool,
    share_pid: bool,
    pid_target: Option<String>,
}

fn mode(v: i32, field: &str) -> Result<NamespaceMode, CriError> {
    NamespaceMode::try_from(v).map_err(|_| {
        CriError::refused(
            field,
            format!("{v} is not a NamespaceMode this build knows"),
        )
    })
}

/// Host id 0 inside one of the ranges, or no range at all.
pub(crate) fn maps_host_root(maps: &[IdMapping]) -> bool {
    maps.is_empty() || maps.iter().any(|m| m.host_id == 0 && m.length > 0)
}

impl Namespaces {
    /// Adds one `namespace_options` (`field` names it); `container`: TARGET pid is allowed.
    pub(crate) fn add(
        &mut self,
        opts: Option<&NamespaceOption>,
        field: &str,
        container: bool,
    ) -> Result<(), CriError> {
        let Some(o) = opts else {
            // No options: every namespace POD, and no user namespace at all.
            self.share_pid = true;
            self.host_users = true;
            return Ok(());
        };
        for (v, name) in [(o.network, "network"), (o.ipc, "ipc")] {
            let f = format!("{field}.{name}");
            let host = match mode(v, &f)? {
                NamespaceMode::Node => true,
                NamespaceMode::Pod | NamespaceMode::Container => false,
                NamespaceMode::Target => {
                    return Err(CriError::refused(f, "TARGET is only defined for pid"))
                }
            };
            if name == "network" {
                self.host_network |= host;
            } else {
                self.host_ipc |= host;
            }
        }
        let f = format!("{field}.pid");
        match mode(o.pid, &f)? {
            NamespaceMode::Node => self.host_pid = true,
            NamespaceMode::Pod => self.share_pid = true,
            NamespaceMode::Container => {}
            NamespaceMode::Target if container => {
                self.share_pid = true;
                self.pid_target = Some(o.target_id.clone());
            }
            NamespaceMode::Target => {
                return Err(CriError::refused(f, "a sandbox has no container to target"))
            }
        }
        let f = format!("{field}.userns_options.mode");
        self.host_users |= match &o.userns_options {
            None => true,
            Some(u) => match mode(u.mode, &f)? {
                NamespaceMode::Node => true,
                NamespaceMode::Pod => maps_host_root(&u.uids) || maps_host_root(&u.gids),
                m => {
                    return Err(CriError::refused(
                        f,
                        format!(
                            "{} is not a user namespace mode (POD or NODE)",
                            m.as_str_name()
                        ),
                    ))
                }
            },
        };
        Ok(())
    }
}

/// The sandbox's Pod while it is built.
pub(crate) struct SandboxPod {
    pod: Value,
    pub(crate) ns: Namespaces,
    /// `ports[]` entries for the host ports.
    pub(crate) ports: Vec<Value>,
    privileged: bool,
    /// Host power of the sandbox with no Pod field (shown on the placeholder).
    reasons: Vec<String>,
    /// `log_directory`, for the container's log path.
    pub(crate) log_directory: String,
    /// `linux.security_context.supplemental_groups`.
    pub(crate) groups: Vec<i64>,
    pub(crate) paths: KubeletDirs,
}

fn sorted(m: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A host path of the node's logs of this Pod, or a reason.
pub(crate) fn log_reason(
    paths: &KubeletDirs,
    directory: &str,
    path: &str,
    field: &str,
) -> Option<String> {
    let logs = super::pod_logs(paths);
    let dir_ok = directory.is_empty()
        || directory
            .strip_prefix(logs.as_str())
            .map(|r| r.trim_end_matches('/'))
            .is_some_and(|r| !r.is_empty() && !r.contains('/') && r != "..");
    let path_ok = !path.starts_with('/') && !path.split('/').any(|c| c == "..");
    (!(dir_ok && path_ok)).then(|| {
        format!("`{field}` ({directory:?} + {path:?}) has the runtime write the container's output outside {logs}<pod> on the host (proxy.kubelet.podLogsDir)")
    })
}

fn ports(mappings: &[PortMapping]) -> Result<Vec<Value>, CriError> {
    let mut out = Vec::new();
    for (i, p) in mappings.iter().enumerate() {
        let field = |f: &str| format!("config.port_mappings[{i}].{f}");
        if !(0..=65535).contains(&p.host_port) {
            return Err(CriError::refused(field("host_port"), "outside 0‥65535"));
        }
        let protocol = match Protocol::try_from(p.protocol) {
            Ok(Protocol::Tcp) => "TCP",
            Ok(Protocol::Udp) => "UDP",
            Ok(Protocol::Sctp) => "SCTP",
            Err(_) => return Err(CriError::refused(field("protocol"), "unknown protocol")),
        };
        if p.host_port == 0 {
            continue;
        }
        let mut port = json!({"containerPort": p.container_port, "hostPort": p.host_port,
            "protocol": protocol});
        if !p.host_ip.is_empty() {
            port["hostIP"] = p.host_ip.clone().into();
        }
        out.push(port);
    }
    Ok(out)
}

impl SandboxPod {
    #[allow(deprecated)] // the deprecated profile fields are still honoured by runtimes
    pub(crate) fn read(
        c: &PodSandboxConfig,
        runtime_handler: &str,
        paths: &KubeletDirs,
    ) -> Result<Self, CriError> {
        let meta = c.metadata.clone().unwrap_or_default();
        for (v, f) in [(&meta.name, "name"), (&meta.namespace, "namespace")] {
            if v.is_empty() {
                return Err(CriError::Missing {
                    field: format!("config.metadata.{f}"),
                    why: "the Pod's name and namespace choose the rules",
                });
            }
        }
        let mut metadata = json!({"name": meta.name, "namespace": meta.namespace});
        if !meta.uid.is_empty() {
            metadata["uid"] = meta.uid.into();
        }
        if !c.labels.is_empty() {
            metadata["labels"] = json!(sorted(&c.labels));
        }
        let mut annotations = sorted(&c.annotations);
        annotations.retain(|k, _| !k.starts_with(ANNOTATION_PREFIX));
        let linux = c.linux.clone().unwrap_or_default();
        if !linux.cgroup_parent.is_empty() {
            annotations.insert(CGROUP_PARENT_ANNOTATION.into(), linux.cgroup_parent.clone());
        }
        if let Some(true) = c
            .windows
            .as_ref()
            .and_then(|w| w.security_context.as_ref())
            .map(|s| s.host_process)
        {
            return Err(CriError::refused(
                "config.windows.security_context.host_process",
                "a host process runs on the host",
            ));
        }
        let sc = linux.security_context.clone().unwrap_or_default();
        let field = "config.linux.security_context";
        let mut ns = Namespaces::default();
        ns.add(
            sc.namespace_options.as_ref(),
            &format!("{field}.namespace_options"),
            false,
        )?;
        let mut spec = Map::new();
        if !runtime_handler.is_empty() {
            spec.insert("runtimeClassName".into(), runtime_handler.into());
        }
        if !c.hostname.is_empty() {
            spec.insert("hostname".into(), c.hostname.clone().into());
        }
        if let Some(d) = &c.dns_config {
            spec.insert("dnsConfig".into(), dns(d));
        }
        let psc = pod_security_context(&sc, &linux, field)?;
        spec.insert("securityContext".into(), Value::Object(psc));
        metadata["annotations"] = json!(annotations);
        let reasons = log_reason(paths, &c.log_directory, "", "config.log_directory")
            .into_iter()
            .collect();
        Ok(SandboxPod {
            pod: json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}),
            ns,
            ports: ports(&c.port_mappings)?,
            privileged: sc.privileged,
            reasons,
            log_directory: c.log_directory.clone(),
            groups: sc.supplemental_groups.clone(),
            paths: paths.clone(),
        })
    }

    pub(crate) fn uid(&self) -> &str {
        self.pod["metadata"]["uid"].as_str().unwrap_or("")
    }

    pub(crate) fn spec_mut(&mut self) -> &mut Map<String, Value> {
        self.pod["spec"]
            .as_object_mut()
            .expect("spec is built as an object")
    }

    pub(crate) fn annotations_mut(&mut self) -> &mut Map<String, Value> {
        self.pod["metadata"]["annotations"]
            .as_object_mut()
            .expect("annotations are built as an object")
    }

    /// The placeholder container: what Pod Security judges on containers only.
    pub(crate) fn placeholder(&mut self) -> Option<Value> {
        if !self.privileged && self.reasons.is_empty() && self.ports.is_empty() {
            return None;
        }
        let mut c = json!({"name": SANDBOX_CONTAINER,
            "securityContext": {"privileged": self.privileged || !self.reasons.is_empty()}});
        if !self.ports.is_empty() {
            c["ports"] = Value::Array(self.ports.clone());
        }
        if !self.reasons.is_empty() {
            let r = Value::from(self.reasons.clone()).to_string();
            self.annotations_mut()
                .insert(PRIVILEGED_REASONS_ANNOTATION.into(), r.into());
        }
        Some(c)
    }

    /// The finished Pod: namespace flags, supplemental groups, empty maps dropped.
    pub(crate) fn into_value(mut self) -> Value {
        let ns = std::mem::take(&mut self.ns);
        if let Some(t) = &ns.pid_target {
            self.annotations_mut()
                .insert(PID_TARGET_ANNOTATION.into(), t.clone().into());
        }
        let mut groups = std::mem::take(&mut self.groups);
        groups.sort_unstable();
        groups.dedup();
        let spec = self.spec_mut();
        spec.insert("hostNetwork".into(), ns.host_network.into());
        spec.insert("hostPID".into(), ns.host_pid.into());
        spec.insert("hostIPC".into(), ns.host_ipc.into());
        spec.insert("hostUsers".into(), ns.host_users.into());
        if ns.share_pid {
            spec.insert("shareProcessNamespace".into(), true.into());
        }
        if !groups.is_empty() {
            spec.insert(
                "securityContext".into(),
                merge(
                    spec.get("securityContext"),
                    "supplementalGroups",
                    groups.into(),
                ),
            );
        }
        if self.pod["metadata"]["annotations"]
            .as_object()
            .is_some_and(Map::is_empty)
        {
            self.pod["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
        self.pod
    }
}

/// `spec.securityContext` from the sandbox's.
#[allow(deprecated)] // the deprecated profile field is still honoured by runtimes
fn pod_security_context(
    sc: &k8s_cri::v1::LinuxSandboxSecurityContext,
    linux: &k8s_cri::v1::LinuxPodSandboxConfig,
    field: &str,
) -> Result<Map<String, Value>, CriError> {
    let mut psc = Map::new();
    if let Some(u) = &sc.run_as_user {
        psc.insert("runAsUser".into(), u.value.into());
    }
    if let Some(g) = &sc.run_as_group {
        psc.insert("runAsGroup".into(), g.value.into());
    }
    psc.insert(
        "supplementalGroupsPolicy".into(),
        match sc.supplemental_groups_policy {
            0 => "Merge",
            1 => "Strict",
            _ => {
                return Err(CriError::refused(
                    format!("{field}.supplemental_groups_policy"),
                    "unknown policy",
                ))
            }
        }
        .into(),
    );
    if let Some(profile) = seccomp(sc.seccomp.as_ref(), &sc.seccomp_profile_path, field)? {
        psc.insert("seccompProfile".into(), profile);
    }
    if let Some(a) = apparmor(sc.apparmor.as_ref(), "", field)? {
        psc.insert("appArmorProfile".into(), a);
    }
    if let Some(s) = selinux(sc.selinux_options.as_ref()) {
        psc.insert("seLinuxOptions".into(), s);
    }
    let sysctls: Vec<Value> = sorted(&linux.sysctls)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    if !sysctls.is_empty() {
        psc.insert("sysctls".into(), sysctls.into());
    }
    Ok(psc)
}

fn merge(sc: Option<&Value>, key: &str, v: Value) -> Value {
    let mut sc = sc.cloned().unwrap_or_else(|| json!({}));
    sc[key] = v;
    sc
}

fn dns(d: &k8s_cri::v1::DnsConfig) -> Value {
    let options: Vec<Value> = d
        .options
        .iter()
        .map(|o| match o.split_once(':') {
            Some((n, v)) => json!({"name": n, "value": v}),
            None => json!({"name": o}),
        })
        .collect();
    let mut out = Map::new();
    for (k, v) in [
        ("nameservers", json!(d.servers)),
        ("searches", json!(d.searches)),
        ("options", Value::Array(options)),
    ] {
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}
