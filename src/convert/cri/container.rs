//! `spec.containers[0]` and its volumes, from a `ContainerConfig`.

use std::collections::BTreeMap;

use k8s_cri::v1::{ContainerConfig, LinuxContainerResources, Mount, MountPropagation};
use serde_json::{json, Map, Value};

use super::sandbox::{log_reason, maps_host_root, SandboxPod};
use super::security::container_context;
use super::CriError;
use crate::config::KubeletDirs;
use crate::convert::pod::{DEVICES_ANNOTATION, PRIVILEGED_REASONS_ANNOTATION};
use crate::convert::quantity;

/// The kubelet's default `--root-dir`: its own volumes live under `pods/<uid>/`.
const USER_IMAGE_ANNOTATION: &str = "portcullis.dev/user-specified-image";
/// Host devices every runtime gives a container anyway (devices.rs).
const DEFAULT_DEVICES: [&str; 9] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
    "/dev/net/tun",
];

/// A mount of the kubelet's own for this Pod: `Some(None)`: its file (etc-hosts,
/// termination log), not shown; `Some(Some((name, volume source)))`: one of its volumes.
fn kubelet_volume(
    paths: &KubeletDirs,
    host_path: &str,
    uid: &str,
) -> Option<Option<(String, Value)>> {
    let pods = super::kubelet_pods(paths);
    if uid.is_empty() || uid.contains('/') || uid == ".." {
        return None;
    }
    let rest = host_path.strip_prefix(pods.as_str())?.strip_prefix(uid)?;
    let parts: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    let source = |plugin: &str, name: &str| -> Value {
        match plugin {
            "kubernetes.io~empty-dir" => json!({"emptyDir": {}}),
            "kubernetes.io~secret" => json!({"secret": {"secretName": name}}),
            "kubernetes.io~configmap" => json!({"configMap": {"name": name}}),
            "kubernetes.io~projected" => json!({"projected": {"sources": []}}),
            "kubernetes.io~downward-api" => json!({"downwardAPI": {}}),
            _ => json!({"persistentVolumeClaim": {"claimName": name}}),
        }
    };
    match parts.as_slice() {
        ["etc-hosts"] | ["containers", _, _] => Some(None),
        ["volumes", plugin, name] => Some(Some((name.to_string(), source(plugin, name)))),
        ["volumes", "kubernetes.io~csi", name, "mount"] => {
            Some(Some((name.to_string(), source("csi", name))))
        }
        _ => None,
    }
}

/// The Pod's volumes and the container's mounts, plus host power with no Pod field.
fn mounts(
    paths: &KubeletDirs,
    mounts: &[Mount],
    uid: &str,
    privileged: bool,
    reasons: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<Value>), CriError> {
    let mut volumes: BTreeMap<String, Value> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("config.mounts[{i}]");
        let propagation = match MountPropagation::try_from(m.propagation) {
            Ok(MountPropagation::PropagationPrivate) => None,
            Ok(MountPropagation::PropagationHostToContainer) => Some("HostToContainer"),
            Ok(MountPropagation::PropagationBidirectional) => {
                if !privileged {
                    reasons.push(format!("`{field}.propagation` is BIDIRECTIONAL: mounts made in the container reach the host"));
                }
                Some("Bidirectional")
            }
            Err(_) => {
                return Err(CriError::refused(
                    format!("{field}.propagation"),
                    "unknown propagation",
                ))
            }
        };
        if maps_host_root_some(&m.uid_mappings) || maps_host_root_some(&m.gid_mappings) {
            reasons.push(format!(
                "`{field}` is idmapped onto host id 0: files of host root"
            ));
        }
        let (name, source) = if let Some(img) = &m.image {
            (
                format!("cri-mount-{i}"),
                json!({"image": {"reference": img.image}}),
            )
        } else {
            match kubelet_volume(paths, &m.host_path, uid) {
                Some(None) => continue,
                Some(Some(v)) => v,
                None => {
                    if m.selinux_relabel {
                        reasons.push(format!(
                            "`{field}.selinux_relabel` relabels host files at {}",
                            m.host_path
                        ));
                    }
                    (
                        format!("cri-mount-{i}"),
                        json!({"hostPath": {"path": m.host_path}}),
                    )
                }
            }
        };
        let mut vm = json!({"name": name, "mountPath": m.container_path});
        if m.readonly || m.image.is_some() {
            vm["readOnly"] = true.into();
        }
        if m.recursive_read_only {
            vm["recursiveReadOnly"] = "Enabled".into();
        }
        if let Some(p) = propagation {
            vm["mountPropagation"] = p.into();
        }
        out.push(vm);
        let mut volume = source;
        volume["name"] = name.clone().into();
        volumes.entry(name).or_insert(volume);
    }
    Ok((volumes.into_values().collect(), out))
}

/// Some mapping maps host id 0 (an empty list maps nothing here: no idmap).
fn maps_host_root_some(maps: &[k8s_cri::v1::IdMapping]) -> bool {
    !maps.is_empty() && maps_host_root(maps)
}

/// Devices, CDI devices and CDI annotations: host power with no Pod field.
fn device_reasons(c: &ContainerConfig, reasons: &mut Vec<String>) -> Vec<String> {
    let mut paths = Vec::new();
    for (i, d) in c.devices.iter().enumerate() {
        paths.push(d.host_path.clone());
        if !DEFAULT_DEVICES.contains(&d.host_path.as_str()) {
            reasons.push(format!(
                "`config.devices[{i}]` ({}) is a host device beyond the runtime defaults",
                d.host_path
            ));
        }
    }
    for (i, d) in c.cdi_devices.iter().enumerate() {
        reasons.push(format!(
            "`config.CDI_devices[{i}]` ({}) is a CDI device: its spec may add devices, mounts and hooks",
            d.name
        ));
    }
    let mut cdi: Vec<&String> = c
        .annotations
        .keys()
        .filter(|k| k.starts_with("cdi.k8s.io/"))
        .collect();
    cdi.sort();
    for k in cdi {
        reasons.push(format!(
            "`config.annotations[{k}]` requests CDI devices: their spec may add devices, mounts and hooks"
        ));
    }
    paths
}

/// The kubelet's CFS period when it sets none (`pkg/kubelet/cm` `QuotaPeriod`).
pub(super) const DEFAULT_CPU_PERIOD: i64 = 100_000;
/// The kubelet's fewest CPU shares (`MinShares`): what it sends for no request.
pub(super) const MIN_SHARES: i64 = 2;

/// `limits.cpu` in millicores of a CFS quota: ⌈quota × 1000 / period⌉, period 0 being
/// [`DEFAULT_CPU_PERIOD`]; `None` for no quota.
pub(super) fn quota_millis(quota: i64, period: i64) -> Option<i64> {
    if quota <= 0 {
        return None;
    }
    let period = i128::from(if period > 0 {
        period
    } else {
        DEFAULT_CPU_PERIOD
    });
    let millis = (i128::from(quota) * 1000 + period - 1) / period;
    Some(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// `requests.cpu` in millicores of CPU shares: ⌈shares × 1000 / 1024⌉, the exact inverse of
/// the kubelet's `MilliCPUToShares` (⌊millicores × 1024 / 1000⌋, at least 2); `None` for
/// the kubelet's minimum, which is what it sends for no request.
pub(super) fn shares_millis(shares: i64) -> Option<i64> {
    if shares <= MIN_SHARES {
        return None;
    }
    let millis = (i128::from(shares) * 1000 + 1023) / 1024;
    Some(i64::try_from(millis).unwrap_or(i64::MAX))
}

pub(crate) fn resources(r: &LinuxContainerResources) -> Value {
    let mut limits = Map::new();
    if r.memory_limit_in_bytes > 0 {
        limits.insert("memory".into(), r.memory_limit_in_bytes.to_string().into());
    }
    if let Some(millis) = quota_millis(r.cpu_quota, r.cpu_period) {
        limits.insert("cpu".into(), quantity::format_millis(millis).into());
    }
    for h in &r.hugepage_limits {
        if let Some(size) = quantity::hugepage_size(&h.page_size) {
            limits.insert(format!("hugepages-{size}"), h.limit.to_string().into());
        }
    }
    let mut out = Map::new();
    if !limits.is_empty() {
        out.insert("limits".into(), Value::Object(limits));
    }
    if let Some(millis) = shares_millis(r.cpu_shares) {
        out.insert(
            "requests".into(),
            json!({"cpu": quantity::format_millis(millis)}),
        );
    }
    Value::Object(out)
}

/// Adds the container of `c` to the sandbox's Pod.
pub(crate) fn add(pod: &mut SandboxPod, c: &ContainerConfig) -> Result<(), CriError> {
    let name = c
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(CriError::Missing {
            field: "config.metadata.name".into(),
            why: "a Pod's container has a name",
        });
    }
    if c.windows
        .as_ref()
        .and_then(|w| w.security_context.as_ref())
        .is_some_and(|s| s.host_process)
    {
        return Err(CriError::refused(
            "config.windows.security_context.host_process",
            "a host process runs on the host",
        ));
    }
    let linux = c.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let field = "config.linux.security_context";
    pod.ns.add(
        sc.namespace_options.as_ref(),
        &format!("{field}.namespace_options"),
        true,
    )?;
    pod.groups.extend(&sc.supplemental_groups);
    let mut reasons = Vec::new();
    let devices = device_reasons(c, &mut reasons);
    let uid = pod.uid().to_owned();
    let (volumes, volume_mounts) =
        mounts(&pod.paths, &c.mounts, &uid, sc.privileged, &mut reasons)?;
    reasons.extend(log_reason(
        &pod.paths,
        &pod.log_directory,
        &c.log_path,
        "sandbox_config.log_directory, config.log_path",
    ));
    let image = c.image.clone().unwrap_or_default();
    let mut container = json!({"name": name, "image": image.image,
        "tty": c.tty, "stdin": c.stdin, "stdinOnce": c.stdin_once});
    let set = |container: &mut Value, k: &str, v: Value| {
        if !(v.as_array().is_some_and(Vec::is_empty)
            || v.as_str().is_some_and(str::is_empty)
            || v.as_object().is_some_and(Map::is_empty))
        {
            container[k] = v;
        }
    };
    set(&mut container, "command", json!(c.command));
    set(&mut container, "args", json!(c.args));
    set(&mut container, "workingDir", json!(c.working_dir));
    let env: Vec<Value> = c
        .envs
        .iter()
        .map(|e| json!({"name": e.key, "value": e.value}))
        .collect();
    set(&mut container, "env", env.into());
    set(&mut container, "ports", Value::Array(pod.ports.clone()));
    set(&mut container, "volumeMounts", Value::Array(volume_mounts));
    if let Some(r) = &linux.resources {
        set(&mut container, "resources", resources(r));
    }
    let privileged = sc.privileged || !reasons.is_empty();
    container["securityContext"] = container_context(&sc, privileged, field)?;
    annotate(pod, image.user_specified_image, &devices, reasons);
    let spec = pod.spec_mut();
    spec.insert("containers".into(), Value::Array(vec![container]));
    if !volumes.is_empty() {
        spec.insert("volumes".into(), Value::Array(volumes));
    }
    Ok(())
}

/// The container's synthetic annotations.
fn annotate(pod: &mut SandboxPod, user_image: String, devices: &[String], reasons: Vec<String>) {
    let annotations = pod.annotations_mut();
    if !user_image.is_empty() {
        annotations.insert(USER_IMAGE_ANNOTATION.into(), user_image.into());
    }
    if !devices.is_empty() {
        annotations.insert(DEVICES_ANNOTATION.into(), devices.join(",").into());
    }
    if !reasons.is_empty() {
        let r = Value::from(reasons).to_string();
        annotations.insert(PRIVILEGED_REASONS_ANNOTATION.into(), r.into());
    }
}
