//! OCI `mounts` → Pod `volumes` + `volumeMounts` (runtime-spec config.md "Mounts").
//!
//! A bind mount is a `hostPath` volume, a tmpfs an `emptyDir` with `medium: Memory`. Mounts
//! the runtime itself sets up for every container are skipped, but only when both their
//! destination *and* their kind match, so a host directory bound over `/dev/shm` still shows
//! as a `hostPath`. Mounts of any other kind (a `proc` elsewhere, `nfs`, `overlay`, …) have no
//! honest Pod equivalent and are listed in the `portcullis.dev/unmapped-mounts` annotation.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, Volume, VolumeMount};
use serde_json::{json, Value};

use super::spec::{ConvertError, Node};

/// The Pod side of a container's mounts.
#[derive(Debug, Default)]
pub(crate) struct PodMounts {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    /// `{destination, type, source}` of mounts with no Pod equivalent.
    pub unmapped: Vec<Value>,
}

/// What the runtime knows about the container, to recognise its own per-container files.
pub(crate) struct MountContext<'a> {
    /// The container id (docker `containers/<id>/…`, podman `overlay-containers/<id>/…`).
    pub id: &'a str,
    /// CRI sandbox id (`io.kubernetes.cri.sandbox-id` spec annotation), when any.
    pub sandbox_id: Option<&'a str>,
    /// The container shares the host IPC namespace (then `/dev/shm` is the host's, by design).
    pub host_ipc: bool,
}

/// Kernel filesystems every runtime mounts at these places: (destination, allowed types).
const RUNTIME_FS: [(&str, &[&str]); 6] = [
    ("/proc", &["proc"]),
    ("/dev", &["tmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/dev/mqueue", &["mqueue"]),
    ("/sys", &["sysfs"]),
    ("/sys/fs/cgroup", &["cgroup", "cgroup2"]),
];

/// Files a runtime generates per container and binds in.
const DOCKER_FILES: [&str; 3] = ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts"];
const PODMAN_FILES: [&str; 7] = [
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/run/.containerenv",
    "/etc/passwd",
    "/etc/group",
    "/dev/shm",
];
const CRI_FILES: [&str; 4] = [
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/dev/shm",
];

/// containers/storage keeps a container's files in `<graphroot>/<driver>-containers/<id>/`,
/// whichever storage driver Podman or CRI-O runs with.
const STORAGE_DRIVERS: [&str; 6] = ["overlay", "vfs", "btrfs", "zfs", "aufs", "devicemapper"];

fn base_name(dest: &str) -> &str {
    dest.rsplit('/').next().unwrap_or(dest)
}

/// `source` is `<anything>/<dir>/<file>`, with no `..` anywhere.
fn lives_in(source: &str, dir: &str, file: &str) -> bool {
    !source.split('/').any(|c| c == "..") && source.ends_with(&format!("/{dir}/{file}"))
}

fn runtime_managed(m: &Mount<'_>, ctx: &MountContext<'_>) -> bool {
    let id_ok = !ctx.id.is_empty() && !ctx.id.contains('/');
    if !m.is_bind {
        if m.dest == "/dev/shm" && m.kind == "tmpfs" {
            return true;
        }
        return RUNTIME_FS
            .iter()
            .any(|(d, kinds)| *d == m.dest && kinds.contains(&m.kind));
    }
    let base = base_name(m.dest);
    (m.dest == "/dev/shm" && ctx.host_ipc && m.source == "/dev/shm")
        || (id_ok
            && DOCKER_FILES.contains(&m.dest)
            && lives_in(m.source, &format!("containers/{}", ctx.id), base))
        || (id_ok
            && PODMAN_FILES.contains(&m.dest)
            && STORAGE_DRIVERS.iter().any(|driver| {
                lives_in(
                    m.source,
                    &format!("{driver}-containers/{}/userdata", ctx.id),
                    base,
                )
            }))
        || ctx.sandbox_id.is_some_and(|sb| {
            !sb.is_empty()
                && !sb.contains('/')
                && CRI_FILES.contains(&m.dest)
                && lives_in(
                    m.source,
                    &format!("io.containerd.grpc.v1.cri/sandboxes/{sb}"),
                    base,
                )
        })
}

impl PodMounts {
    /// `root.path` that is a host directory (rootfs.rs): a `hostPath` volume named `rootfs`
    /// mounted at `/`, so policies that refuse host directories refuse it.
    pub(crate) fn add_host_root(&mut self, path: &str, read_only: bool) {
        self.volumes.push(Volume {
            name: "rootfs".into(),
            host_path: Some(HostPathVolumeSource {
                path: path.to_owned(),
                type_: None,
            }),
            ..Default::default()
        });
        self.mounts.push(VolumeMount {
            name: "rootfs".into(),
            mount_path: "/".into(),
            read_only: read_only.then_some(true),
            ..Default::default()
        });
    }
}

struct Mount<'a> {
    dest: &'a str,
    kind: &'a str,
    source: &'a str,
    options: Vec<&'a str>,
    is_bind: bool,
}

/// Kubernetes `mountPropagation` from the OCI propagation option, when one is set.
fn propagation(options: &[&str]) -> Option<String> {
    options.iter().rev().find_map(|o| match *o {
        "shared" | "rshared" => Some("Bidirectional".to_owned()),
        "slave" | "rslave" => Some("HostToContainer".to_owned()),
        "private" | "rprivate" => Some("None".to_owned()),
        _ => None,
    })
}

pub(crate) fn pod_mounts(
    root: &Node<'_>,
    ctx: &MountContext<'_>,
) -> Result<PodMounts, ConvertError> {
    let mut out = PodMounts::default();
    for (i, item) in root.get("mounts").items()?.iter().enumerate() {
        let options = item.get("options").strings()?;
        let kind = item.get("type").str()?.unwrap_or("");
        let m = Mount {
            dest: item.get("destination").str()?.unwrap_or(""),
            kind,
            source: item.get("source").str()?.unwrap_or(""),
            is_bind: kind == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind"),
            options,
        };
        if runtime_managed(&m, ctx) {
            continue;
        }
        let name = format!("mount-{i}");
        let read_only = m.options.contains(&"ro").then_some(true);
        let volume = if m.is_bind {
            Volume {
                name: name.clone(),
                host_path: Some(HostPathVolumeSource {
                    path: m.source.to_owned(),
                    type_: None,
                }),
                ..Default::default()
            }
        } else if m.kind == "tmpfs" {
            Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        } else {
            out.unmapped
                .push(json!({"destination": m.dest, "type": m.kind, "source": m.source}));
            continue;
        };
        out.volumes.push(volume);
        out.mounts.push(VolumeMount {
            name,
            mount_path: m.dest.to_owned(),
            read_only,
            mount_propagation: if m.is_bind {
                propagation(&m.options).filter(|p| p != "None")
            } else {
                None
            },
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(spec: Value, host_ipc: bool) -> PodMounts {
        let root = Node::root(&spec).unwrap();
        let ctx = MountContext {
            id: "abc",
            sandbox_id: Some("sb1"),
            host_ipc,
        };
        pod_mounts(&root, &ctx).unwrap()
    }

    #[test]
    fn host_dir_over_dev_shm_is_not_hidden() {
        let spec = json!({"mounts": [
            {"destination": "/dev/shm", "type": "bind", "source": "/", "options": ["rbind"]},
            {"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/docker/containers/other/hosts"},
            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/docker/containers/abc/../../../../etc/hosts"},
        ]});
        let m = map(spec, false);
        assert_eq!(m.volumes.len(), 4);
        assert_eq!(m.volumes[0].host_path.as_ref().unwrap().path, "/");
    }

    #[test]
    fn runtime_files_are_skipped() {
        let spec = json!({"mounts": [
            {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/data/docker/containers/abc/hosts"},
            {"destination": "/etc/hosts", "source": "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/sb1/hosts", "options": ["rbind"]},
            {"destination": "/run/.containerenv", "type": "bind", "source": "/run/containers/storage/overlay-containers/abc/userdata/.containerenv"},
            {"destination": "/etc/hostname", "type": "bind", "source": "/var/lib/containers/storage/vfs-containers/abc/userdata/hostname"},
        ]});
        assert!(map(spec.clone(), true).volumes.is_empty());
        // Without a host IPC namespace, the host's /dev/shm bound in is a hostPath.
        assert_eq!(map(spec, false).volumes.len(), 1);
    }

    #[test]
    fn other_kinds_are_listed_not_invented() {
        let spec =
            json!({"mounts": [{"destination": "/host/proc", "type": "proc", "source": "proc"}]});
        let m = map(spec, false);
        assert!(m.volumes.is_empty());
        assert_eq!(m.unmapped[0]["destination"], "/host/proc");
    }
}
