//! ContainerRecord → v1 Pod: the Kubernetes view of one containerd container (or OCI bundle)
//! that admission policies see. One container, `spec.containers[0]`; every choice is listed in
//! docs/mapping.md. The view is pure: no I/O, no panics, and a valid spec is never refused.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, PodSecurityContext, PodSpec, ResourceRequirements, Sysctl, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::hostpower::{self, HookTrust};
use super::mounts::{pod_mounts, MountContext};
use super::nsresolve::NsPath;
pub use super::spec::ConvertError;
use super::spec::Node;
use super::{labels, quantity, rootfs, security, ContainerRecord, PodOptions};

/// Prefix of the annotations Portcullis adds; they are read-only on write-back.
pub const ANNOTATION_PREFIX: &str = "portcullis.dev/";
/// The containerd runtime name (`io.containerd.runc.v2`).
pub const RUNTIME_ANNOTATION: &str = "portcullis.dev/runtime";
/// `TaskInfo::runtime_path`, when set.
pub const RUNTIME_PATH_ANNOTATION: &str = "portcullis.dev/runtime-path";
/// `TaskInfo::runc_binary`, when set.
pub const RUNC_BINARY_ANNOTATION: &str = "portcullis.dev/runc-binary";
/// Comma-separated `linux.devices[].path`.
pub const DEVICES_ANNOTATION: &str = "portcullis.dev/devices";
/// Comma-separated hook paths (`hooks.<kind>[].path`), in spec order.
pub const HOOKS_ANNOTATION: &str = "portcullis.dev/hooks";
/// JSON list of sentences: why the view is privileged beyond `--privileged` itself (hooks,
/// devices, writable sysfs, …; see hostpower.rs).
pub const PRIVILEGED_REASONS_ANNOTATION: &str = "portcullis.dev/privileged-reasons";
/// `linux.cgroupsPath`: where the runtime puts the container's cgroup.
pub const CGROUPS_PATH_ANNOTATION: &str = "portcullis.dev/cgroups-path";
/// JSON list of `{destination, type, source}` for mounts with no Pod volume equivalent.
pub const UNMAPPED_MOUNTS_ANNOTATION: &str = "portcullis.dev/unmapped-mounts";
/// `portcullis.dev/namespace-path.<type>`: a namespace joined by path (another container's).
pub const NAMESPACE_PATH_ANNOTATION_PREFIX: &str = "portcullis.dev/namespace-path.";

/// CRI labels (containerd) and CRI-O / Podman spec annotations naming the Pod.
pub const POD_NAME_KEY: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME_KEY: &str = "io.kubernetes.container.name";
/// containerd CRI's spec annotation naming the sandbox (for its per-sandbox mounts).
const CRI_SANDBOX_ID_KEY: &str = "io.kubernetes.cri.sandbox-id";

/// The Pod view of a container.
pub fn to_pod(record: &ContainerRecord, opts: &PodOptions) -> Result<Pod, ConvertError> {
    super::schema::check(&record.spec, &opts.allowed_fields)?;
    let root = Node::root(&record.spec)?;
    let spec_annotations = root.get("annotations").string_map()?;
    // A CRI label wins over a CRI-O/Podman spec annotation, which wins over the fallback.
    let pick = |key: &str, fallback: &str| {
        [record.labels.get(key), spec_annotations.get(key)]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| fallback.to_owned())
    };

    let ns = Namespaces::read(&root, &record.ns_paths)?;
    let host_power = host_power(&root, record, opts, &ns)?;
    let mut mounts = pod_mounts(
        &root,
        &MountContext {
            id: &record.id,
            sandbox_id: spec_annotations.get(CRI_SANDBOX_ID_KEY).map(String::as_str),
            host_ipc: ns.host_ipc,
        },
    )?;
    if let Some(path) = rootfs::host_root(&root, &opts.storage_roots)? {
        mounts.add_host_root(path, root.path("root.readonly").bool()?.unwrap_or(false));
    }
    let unmapped = std::mem::take(&mut mounts.unmapped);
    let annotations = annotations(record, &root, &spec_annotations, &host_power, &ns, unmapped)?;
    let name = pick(CONTAINER_NAME_KEY, &record.id);
    let container = container(record, &root, name, &host_power, mounts.mounts)?;
    let security_context = pod_security_context(&root)?;

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(pick(POD_NAME_KEY, &record.id)),
            // The namespace chooses the rules (levels, exemptions, break-glass), so it comes
            // from what the caller cannot write: the runtime's namespace. The Kubernetes
            // label or annotation counts only where the runtime itself sets it (CRI-O, at
            // the hook door, when configured); policies still see it as a label.
            namespace: Some(if opts.kubernetes_namespace {
                pick(POD_NAMESPACE_KEY, &record.namespace)
            } else {
                record.namespace.clone()
            }),
            labels: Some(pod_labels(record)).filter(|l| !l.is_empty()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            runtime_class_name: runtime_class(&record.runtime, opts),
            host_network: Some(ns.host_network),
            host_pid: Some(ns.host_pid),
            host_ipc: Some(ns.host_ipc),
            host_users: Some(ns.host_users),
            security_context,
            volumes: Some(mounts.volumes).filter(|v| !v.is_empty()),
            ..Default::default()
        }),
        status: None,
    })
}

/// Why the container has power over the host beyond `--privileged` itself (hooks, devices,
/// the host's mount namespace, …): the privileged reasons of the view.
fn host_power(
    root: &Node<'_>,
    record: &ContainerRecord,
    opts: &PodOptions,
    ns: &Namespaces,
) -> Result<Vec<String>, ConvertError> {
    let mut host_power = hostpower::reasons(
        root,
        &HookTrust {
            allowed: &opts.allowed_hooks,
            exes: &record.hook_exes,
        },
    )?;
    // Without a mount namespace of its own, runc (1.1.5, checked) mounts the container's root
    // and /proc in the host's mount namespace and enters the root with chroot, which
    // CAP_SYS_CHROOT — a default capability — can leave.
    if ns.host_mount {
        host_power.push(
            "`linux.namespaces` gives the container the host's mount namespace: its mounts land on the host and its root is a chroot"
                .to_owned(),
        );
    }
    Ok(host_power)
}

/// The Pod's annotations: the container's labels and spec annotations (none of ours), then
/// the synthetic `portcullis.dev/` ones for what has no Pod field.
fn annotations(
    record: &ContainerRecord,
    root: &Node<'_>,
    spec_annotations: &BTreeMap<String, String>,
    host_power: &[String],
    ns: &Namespaces,
    unmapped: Vec<Value>,
) -> Result<BTreeMap<String, String>, ConvertError> {
    let mut annotations: BTreeMap<String, String> = record.labels.clone();
    annotations.extend(spec_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    annotations.retain(|k, _| !k.starts_with(ANNOTATION_PREFIX));
    let mut synthetic = |k: &str, v: &str| {
        if !v.is_empty() {
            annotations.insert(k.to_owned(), v.to_owned());
        }
    };
    synthetic(RUNTIME_ANNOTATION, &record.runtime);
    if let Some(task) = &record.task {
        synthetic(RUNTIME_PATH_ANNOTATION, &task.runtime_path);
        synthetic(RUNC_BINARY_ANNOTATION, &task.runc_binary);
    }
    let devices: Vec<&str> = root
        .path("linux.devices")
        .items()?
        .iter()
        .map(|d| d.get("path").str().map(Option::unwrap_or_default))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    synthetic(DEVICES_ANNOTATION, &devices.join(","));
    let hooks: Vec<&str> = hostpower::hooks(root)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    synthetic(HOOKS_ANNOTATION, &hooks.join(","));
    if !host_power.is_empty() {
        synthetic(
            PRIVILEGED_REASONS_ANNOTATION,
            &Value::from(host_power.to_vec()).to_string(),
        );
    }
    synthetic(
        CGROUPS_PATH_ANNOTATION,
        root.path("linux.cgroupsPath").str()?.unwrap_or_default(),
    );
    for (kind, path) in &ns.paths {
        synthetic(&format!("{NAMESPACE_PATH_ANNOTATION_PREFIX}{kind}"), path);
    }
    if !unmapped.is_empty() {
        synthetic(
            UNMAPPED_MOUNTS_ANNOTATION,
            &Value::Array(unmapped).to_string(),
        );
    }
    Ok(annotations)
}

/// The container's labels that are valid Kubernetes labels.
fn pod_labels(record: &ContainerRecord) -> BTreeMap<String, String> {
    record
        .labels
        .iter()
        .filter(|(k, v)| labels::is_label_key(k) && labels::is_label_value(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `spec.containers[0]`, named `name`.
fn container(
    record: &ContainerRecord,
    root: &Node<'_>,
    name: String,
    host_power: &[String],
    volume_mounts: Vec<VolumeMount>,
) -> Result<Container, ConvertError> {
    Ok(Container {
        name,
        image: Some(record.image.clone()),
        command: Some(root.path("process.args").strings()?)
            .filter(|a| !a.is_empty())
            .map(|a| a.into_iter().map(str::to_owned).collect()),
        env: Some(env(root)?).filter(|e| !e.is_empty()),
        working_dir: root.path("process.cwd").str()?.map(str::to_owned),
        tty: Some(root.path("process.terminal").bool()?.unwrap_or(false)),
        resources: limits(root)?.map(|l| ResourceRequirements {
            limits: Some(l),
            ..Default::default()
        }),
        security_context: Some(security::security_context(root, host_power)?),
        volume_mounts: Some(volume_mounts).filter(|m| !m.is_empty()),
        ..Default::default()
    })
}

/// The Pod's security context: supplemental groups and sysctls (none when both are empty).
fn pod_security_context(root: &Node<'_>) -> Result<Option<PodSecurityContext>, ConvertError> {
    let gid = root.path("process.user.gid").u32()?.unwrap_or(0);
    let supplemental: Vec<i64> = root
        .path("process.user.additionalGids")
        .u32s()?
        .into_iter()
        .filter(|g| *g != gid)
        .map(i64::from)
        .collect();
    let sysctls: Vec<Sysctl> = root
        .path("linux.sysctl")
        .string_map()?
        .into_iter()
        .map(|(name, value)| Sysctl { name, value })
        .collect();
    Ok(Some(PodSecurityContext {
        supplemental_groups: Some(supplemental).filter(|g| !g.is_empty()),
        sysctls: Some(sysctls).filter(|s| !s.is_empty()),
        ..Default::default()
    })
    .filter(|s| s != &PodSecurityContext::default()))
}

/// The Pod view as JSON, as it is sent to policies (`apiVersion: v1`, `kind: Pod`).
pub fn to_pod_value(record: &ContainerRecord, opts: &PodOptions) -> Result<Value, ConvertError> {
    let pod = to_pod(record, opts)?;
    serde_json::to_value(&pod).map_err(|e| ConvertError::Serialize(e.to_string()))
}

/// The RuntimeClass whose handler is this runtime. Several classes may name one runtime;
/// the first class name in sort order is shown, so the view is deterministic.
pub fn runtime_class(runtime: &str, opts: &PodOptions) -> Option<String> {
    if runtime.is_empty() {
        return None;
    }
    opts.runtime_classes
        .iter()
        .find(|(_, r)| r.as_str() == runtime)
        .map(|(class, _)| class.clone())
}

/// `K=V` → `{name: K, value: V}`; a string without `=` is a variable with no value (`K`),
/// which round-trips as `K` rather than `K=`.
fn env(root: &Node<'_>) -> Result<Vec<EnvVar>, ConvertError> {
    Ok(root
        .path("process.env")
        .strings()?
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => EnvVar {
                name: k.to_owned(),
                value: Some(v.to_owned()),
                value_from: None,
            },
            None => EnvVar {
                name: kv.to_owned(),
                value: None,
                value_from: None,
            },
        })
        .collect())
}

/// `linux.resources` → `resources.limits`: memory in bytes, CPU quota/period in millicores,
/// hugepages per page size. Unlimited (`-1`, absent, non-positive) shows no limit.
fn limits(root: &Node<'_>) -> Result<Option<BTreeMap<String, Quantity>>, ConvertError> {
    let r = root.path("linux.resources");
    let mut out = BTreeMap::new();
    if let Some(mem) = r.path("memory.limit").i64()?.filter(|m| *m > 0) {
        out.insert("memory".to_owned(), Quantity(mem.to_string()));
    }
    let quota = r.path("cpu.quota").i64()?.filter(|q| *q > 0);
    let period = r
        .path("cpu.period")
        .u64()?
        .filter(|p| *p > 0)
        .unwrap_or(100_000);
    if let Some(quota) = quota {
        // ceil(quota × 1000 / period) in i128: no overflow for any u64/i64 input.
        let millis = (i128::from(quota) * 1000 + i128::from(period) - 1) / i128::from(period);
        let millis = i64::try_from(millis).unwrap_or(i64::MAX);
        out.insert("cpu".to_owned(), Quantity(quantity::format_millis(millis)));
    }
    for h in r.get("hugepageLimits").items()? {
        let size = h.get("pageSize").str()?.and_then(quantity::hugepage_size);
        if let (Some(size), Some(limit)) = (size, h.get("limit").u64()?) {
            out.insert(format!("hugepages-{size}"), Quantity(limit.to_string()));
        }
    }
    Ok(Some(out).filter(|o| !o.is_empty()))
}

/// Which of the container's namespaces are the host's.
struct Namespaces {
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    host_users: bool,
    /// The host's mount namespace: the host's filesystem, shown as privileged.
    host_mount: bool,
    /// Namespaces joined by path, by OCI type.
    paths: BTreeMap<String, String>,
}

impl Namespaces {
    /// A type absent from `linux.namespaces` is the host's (runtime-spec config-linux.md
    /// "Namespaces"). One joined by path is judged by the door's resolution of that path
    /// (`ContainerRecord::ns_paths`): the host's namespace by another name (`/proc/1/ns/net`,
    /// `/proc/<any host pid>/ns/net`, a bind mount of it) is the host's; a path the door
    /// could not resolve, or did not, is refused, as it may be the host's.
    fn read(root: &Node<'_>, resolved: &BTreeMap<String, NsPath>) -> Result<Self, ConvertError> {
        let mut own = Vec::new();
        let mut paths = BTreeMap::new();
        for (i, n) in root.path("linux.namespaces").items()?.iter().enumerate() {
            let kind = n.get("type").str()?.unwrap_or("");
            match n.get("path").str()?.filter(|p| !p.is_empty()) {
                Some(p) => {
                    let refuse = |why: &str| ConvertError::NamespacePath {
                        field: format!("linux.namespaces[{i}].path"),
                        path: p.to_owned(),
                        why: why.to_owned(),
                    };
                    match resolved.get(p) {
                        Some(NsPath::Host) => {}
                        Some(NsPath::Other) => {
                            paths.insert(kind.to_owned(), p.to_owned());
                            own.push(kind);
                        }
                        Some(NsPath::Unresolved(why)) => return Err(refuse(why)),
                        None => return Err(refuse("the door that received it did not resolve it")),
                    }
                }
                None => own.push(kind),
            }
        }
        let host = |k: &str| !own.contains(&k);
        let host_users = host("user") || root_mapped(root)?;
        Ok(Namespaces {
            host_network: host("network"),
            host_pid: host("pid"),
            host_ipc: host("ipc"),
            host_users,
            host_mount: host("mount"),
            paths,
        })
    }
}

/// Whether the host's uid 0 or gid 0 is inside a range of `linux.uidMappings` /
/// `gidMappings` (`hostID ≤ 0 < hostID + size`), or a list is empty (a user namespace joined
/// by path has its creator's mappings, which the spec need not show; a new one without
/// mappings is refused by runc): then container root is, or may be, host root, and the view
/// says `hostUsers: true`. Idmapped mounts (`mounts[].uidMappings`) change file ownership on
/// one mount, not who the process is; a bind mount is a `hostPath` volume whatever its idmap.
fn root_mapped(root: &Node<'_>) -> Result<bool, ConvertError> {
    for key in ["linux.uidMappings", "linux.gidMappings"] {
        let maps = root.path(key).items()?;
        if maps.is_empty() {
            return Ok(true);
        }
        for m in maps {
            let host = m.get("hostID").u32()?.unwrap_or(0);
            let size = m.get("size").u32()?.unwrap_or(0);
            if host == 0 && size > 0 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(spec: Value) -> ContainerRecord {
        ContainerRecord {
            namespace: "default".into(),
            id: "c1".into(),
            spec,
            ..Default::default()
        }
    }

    #[test]
    fn value_has_api_version_and_kind() {
        let v = to_pod_value(&record(json!({})), &PodOptions::default()).unwrap();
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["metadata"]["name"], "c1");
        assert_eq!(v["metadata"]["namespace"], "default");
    }

    #[test]
    fn names_from_cri_labels_then_spec_annotations() {
        let mut r = record(json!({"annotations": {
            "io.kubernetes.pod.name": "from-annotation", "io.kubernetes.container.name": "app"}}));
        r.labels.insert(POD_NAME_KEY.into(), "from-label".into());
        r.labels.insert(POD_NAMESPACE_KEY.into(), "team-a".into());
        let pod = to_pod(&r, &PodOptions::default()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("from-label"));
        assert_eq!(pod.spec.unwrap().containers[0].name, "app");
        // The namespace chooses the rules, so the caller's label does not choose it; it
        // stays visible as a label.
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.metadata.labels.unwrap()[POD_NAMESPACE_KEY], "team-a");
        let cri_o = PodOptions {
            kubernetes_namespace: true,
            ..Default::default()
        };
        let pod = to_pod(&r, &cri_o).unwrap();
        assert_eq!(pod.metadata.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn namespace_paths() {
        let mut r = record(json!({"linux": {"namespaces": [
            {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "pid", "path": "/run/netns/other"},
            {"type": "ipc"}, {"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}));
        r.ns_paths = [
            ("/proc/1/ns/net".to_owned(), NsPath::Host),
            ("/run/netns/other".to_owned(), NsPath::Other),
        ]
        .into_iter()
        .collect();
        let v = to_pod_value(&r, &PodOptions::default()).unwrap();
        assert_eq!(
            v["spec"]["hostNetwork"], true,
            "pid 1's namespace is the host's"
        );
        assert_eq!(v["spec"]["hostPID"], false);
        assert_eq!(v["spec"]["hostIPC"], false);
        assert_eq!(v["spec"]["hostUsers"], false);
        assert_eq!(
            v["metadata"]["annotations"]["portcullis.dev/namespace-path.pid"],
            "/run/netns/other"
        );
    }

    #[test]
    fn env_without_equals_and_hugepages() {
        let r = record(json!({"process": {"env": ["A=1", "B", "C="]},
            "linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                                    "cpu": {"quota": 150000}}}}));
        let v = to_pod_value(&r, &PodOptions::default()).unwrap();
        let c = &v["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B"}, {"name": "C", "value": ""}])
        );
        assert_eq!(c["resources"]["limits"]["hugepages-2Mi"], "4194304");
        assert_eq!(c["resources"]["limits"]["cpu"], "1500m");
    }

    #[test]
    fn synthetic_annotations_cannot_be_spoofed_by_labels() {
        let mut r = record(json!({"annotations": {"portcullis.dev/runtime": "fake", "x": "spec"}}));
        r.labels
            .insert("portcullis.dev/devices".into(), "/dev/fake".into());
        r.labels.insert("x".into(), "label".into());
        r.runtime = "io.containerd.runc.v2".into();
        let v = to_pod_value(&r, &PodOptions::default()).unwrap();
        let a = &v["metadata"]["annotations"];
        assert_eq!(a["portcullis.dev/runtime"], "io.containerd.runc.v2");
        assert!(a.get("portcullis.dev/devices").is_none());
        assert_eq!(
            a["x"], "spec",
            "spec annotations win over containerd labels"
        );
        assert_eq!(v["metadata"]["labels"]["x"], "label");
    }

    #[test]
    fn hostile_specs_error_or_convert_but_never_panic() {
        let specs = [
            Value::Null,
            json!([]),
            json!("spec"),
            json!({"process": 1}),
            json!({"process": {"args": "sh"}}),
            json!({"process": {"user": {"uid": -1}}}),
            json!({"process": {"user": {"additionalGids": [1, "x"]}}}),
            json!({"linux": {"resources": {"cpu": {"quota": i64::MAX, "period": 1}}}}),
            json!({"linux": {"resources": {"memory": {"limit": -1}, "cpu": {"quota": -1}}}}),
            json!({"linux": {"namespaces": [null, {"type": 5}]}}),
            json!({"mounts": [null, {}, {"options": null}]}),
            json!({"annotations": {"a": 1}}),
            json!({"linux": {"sysctl": {"a": null}}}),
            json!({"hooks": {"prestart": [null, {"path": 1}]}}),
            json!({"hooks": {"prestart": {"path": "/x"}}}),
            json!({"root": {"path": 7}}),
            json!({"linux": {"namespaces": [{"type": "network", "path": 3}]}}),
            json!({"linux": {"namespaces": [{"type": "user"}], "uidMappings": [{"hostID": -1}]}}),
            json!({"linux": {"devices": [{"type": "b", "major": "x"}]}}),
            json!({"linux": {"resources": {"devices": [{"allow": true, "major": 1.5}]}}}),
            json!({"linux": {"seccomp": {"defaultAction": 1, "listenerPath": []}}}),
            json!({"mounts": [{"type": "sysfs", "options": "ro"}]}),
        ];
        for s in specs {
            let _ = to_pod_value(&record(s), &PodOptions::default());
        }
        let e = to_pod(
            &record(json!({"process": {"args": "sh"}})),
            &PodOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("`process.args`"), "{e}");
    }
}
