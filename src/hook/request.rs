//! From an OCI bundle to the one [`AdmissionRequest`] every door builds: the namespace the
//! container belongs to, then the Pod view of its `config.json` (the conversion the proxy
//! and `check` use).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::convert::{nsresolve, pod, record, PodOptions};
use crate::review::{AdmissionRequest, Operation, UserInfo};

/// The namespace Podman's containers are admitted in (Podman has none of its own).
pub const PODMAN_NAMESPACE: &str = "podman";

/// Spec annotations that name the Kubernetes namespace: CRI-O's, then containerd CRI's.
const NAMESPACE_ANNOTATIONS: [&str; 2] = [
    pod::POD_NAMESPACE_KEY,
    "io.kubernetes.cri.sandbox-namespace",
];

/// containerd's v2 shim bundles: `<state>/io.containerd.runtime.v2.task/<ns>/<id>`.
const CONTAINERD_TASK_DIR: &str = "io.containerd.runtime.v2.task";

/// The namespace a container is admitted in, which chooses the rules it is judged by, so
/// taken from what whoever wrote the spec cannot choose: the containerd namespace from the
/// bundle path or runc's `--root`. Then, only on a CRI-O node (`kubernetes`: `hook.criO`),
/// where CRI-O itself writes them, the Kubernetes namespace annotations; then `podman` for
/// Podman (`io.container.manager: libpod`); else `default`.
pub fn namespace(
    annotations: &BTreeMap<String, String>,
    bundle: &Path,
    runc_root: Option<&Path>,
    kubernetes: bool,
) -> String {
    if let Some(ns) = containerd_namespace(bundle, runc_root) {
        return ns;
    }
    if let Some(ns) = NAMESPACE_ANNOTATIONS
        .iter()
        .filter(|_| kubernetes)
        .find_map(|k| annotations.get(*k).filter(|v| !v.is_empty()))
    {
        return ns.clone();
    }
    if annotations.get("io.container.manager").map(String::as_str) == Some("libpod") {
        return PODMAN_NAMESPACE.to_owned();
    }
    "default".to_owned()
}

/// `.../io.containerd.runtime.v2.task/<ns>/<id>` (any containerd state dir), or runc's root
/// `.../runc/<ns>` as containerd's runc shim passes it.
fn containerd_namespace(bundle: &Path, runc_root: Option<&Path>) -> Option<String> {
    let parts: Vec<&str> = bundle.iter().filter_map(|p| p.to_str()).collect();
    if let Some(i) = parts.iter().position(|p| *p == CONTAINERD_TASK_DIR) {
        if parts.len() > i + 2 {
            return Some(parts[i + 1].to_owned());
        }
    }
    let root = runc_root?;
    let parent = root.parent()?.file_name()?.to_str()?;
    (parent == "runc")
        .then(|| root.file_name()?.to_str().map(str::to_owned))
        .flatten()
}

/// The spec's string annotations.
pub fn annotations(spec: &Value) -> BTreeMap<String, String> {
    spec["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A Pod CREATE request for `pod` (a Pod view), asked by `username`; name and namespace
/// are the Pod's.
pub fn pod_request(pod: Value, username: &str) -> AdmissionRequest {
    let user = UserInfo {
        username: username.into(),
        ..Default::default()
    };
    AdmissionRequest::for_pod(Operation::Create, pod, user)
}

/// The request for container `id` of a bundle's `config.json` in `namespace`.
pub fn bundle_request(
    namespace: &str,
    id: &str,
    spec: &Value,
    opts: &PodOptions,
    username: &str,
) -> anyhow::Result<AdmissionRequest> {
    let mut record = record::from_oci_config(namespace, id, spec)?;
    // The hook and the runc wrapper run on the host, as the runtime does: their reading of
    // namespace paths and `/proc/<pid>/exe` hooks is the runtime's.
    nsresolve::resolve(&mut record);
    let mut opts = opts.clone();
    opts.allowed_hooks.extend(own_hooks(spec));
    Ok(pod_request(pod::to_pod_value(&record, &opts)?, username))
}

/// The spec's hooks that are this Portcullis's own `hook` door (what `portcullis install
/// hooks` puts in hooks.d): the same executable, run as `portcullis hook …`. Trusted without
/// `spec.allowedHooks`, since the gate is already running that binary on the host; any other
/// subcommand (`install` writes files) is judged like every hook.
fn own_hooks(spec: &Value) -> Vec<String> {
    let Ok(me) = std::env::current_exe() else {
        return Vec::new();
    };
    let hooks = spec["hooks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values());
    hooks
        .filter_map(Value::as_array)
        .flatten()
        .filter(|h| h["args"].get(1).and_then(Value::as_str) == Some("hook"))
        .filter_map(|h| h["path"].as_str())
        .filter(|p| std::fs::canonicalize(p).is_ok_and(|c| c == me))
        .map(str::to_owned)
        .collect()
}

/// The containers/storage graph root of a Podman or CRI-O bundle,
/// `<graph root>/overlay-containers/<id>/userdata`: the runtime chose that path, so the
/// container's root filesystem under `<graph root>/overlay/` is its own (rootfs.rs).
pub fn storage_root(bundle: &Path) -> Option<String> {
    let userdata = bundle.file_name()?;
    let dir = bundle.parent()?.parent()?;
    (userdata == "userdata" && dir.file_name()? == "overlay-containers")
        .then(|| dir.parent()?.to_str().map(str::to_owned))
        .flatten()
}

/// `<bundle>/config.json`.
pub fn read_spec(bundle: &Path) -> anyhow::Result<Value> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        // The error kind, not the OS text (see `daemon::io_kind`: Podman rewrites it).
        .map_err(|e| anyhow::anyhow!("cannot read {} ({:?})", path.display(), e.kind()))?;
    // As runc will read it: no key twice under Go's fold (`convert::strict`).
    crate::convert::strict::parse_spec(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The image of the (one) container of a Pod request, empty when unknown.
pub fn image_of(request: &AdmissionRequest) -> &str {
    request
        .object
        .as_ref()
        .and_then(|o| o.pointer("/spec/containers/0/image"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runtime-specs");

    fn spec(path: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap())
            .unwrap()
    }

    #[test]
    fn namespace_from_bundle_and_root_then_annotations_on_cri_o_only() {
        let none = BTreeMap::new();
        let p = PathBuf::from;
        let a = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let kube = a("io.kubernetes.pod.namespace", "team-a");
        // Anywhere but a CRI-O node, whoever writes the spec writes the annotation.
        assert_eq!(namespace(&kube, &p("/x"), None, false), "default");
        assert_eq!(namespace(&kube, &p("/x"), None, true), "team-a");
        let sandbox = a("io.kubernetes.cri.sandbox-namespace", "kube-system");
        assert_eq!(namespace(&sandbox, &p("/x"), None, false), "default");
        assert_eq!(namespace(&sandbox, &p("/x"), None, true), "kube-system");
        let libpod = a("io.container.manager", "libpod");
        assert_eq!(namespace(&libpod, &p("/x"), None, false), "podman");
        let task = p("/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc");
        assert_eq!(namespace(&none, &task, None, false), "k8s.io");
        // The containerd namespace is not the caller's to choose, whatever it annotates.
        for forged in [&kube, &sandbox, &libpod] {
            assert_eq!(namespace(forged, &task, None, true), "k8s.io");
        }
        let moby = p("/tmp/t/state/io.containerd.runtime.v2.task/moby/abc");
        assert_eq!(namespace(&none, &moby, None, false), "moby");
        let root = p("/run/containerd/runc/team-b");
        assert_eq!(namespace(&kube, &p("/b"), Some(&root), true), "team-b");
        assert_eq!(
            namespace(&none, &p("/b"), Some(&p("/run/runc")), false),
            "default"
        );
        assert_eq!(namespace(&none, &p("/b"), None, false), "default");
    }

    #[test]
    fn podman_bundle_becomes_a_pod_in_podman() {
        let spec = spec("podman/privileged.config.json");
        let ns = namespace(&annotations(&spec), Path::new("/b"), None, false);
        let r =
            bundle_request(&ns, "c1", &spec, &PodOptions::default(), "portcullis-hook").unwrap();
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("podman", "c1"));
        let pod = r.object.unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["privileged"],
            true
        );
        assert_eq!(r.user_info.username, "portcullis-hook");
    }

    #[test]
    fn storage_root_from_podman_bundles() {
        let root = |p: &str| storage_root(Path::new(p));
        assert_eq!(
            root("/var/lib/containers/storage/overlay-containers/abc/userdata").as_deref(),
            Some("/var/lib/containers/storage")
        );
        assert_eq!(
            root("/tmp/t/root/overlay-containers/abc/userdata").as_deref(),
            Some("/tmp/t/root")
        );
        assert_eq!(
            root("/run/containerd/io.containerd.runtime.v2.task/default/abc"),
            None
        );
        assert_eq!(root("/x/overlay-containers/abc"), None);
    }

    #[test]
    fn docker_spec_converts_like_the_proxy() {
        let info = spec("docker/hostpid.container.json");
        let r = bundle_request("moby", "c2", &info["Spec"], &PodOptions::default(), "u").unwrap();
        assert_eq!(r.object.unwrap()["spec"]["hostPID"], true);
    }

    #[test]
    fn own_hook_door_is_trusted_other_subcommands_and_binaries_are_not() {
        let me = std::env::current_exe().unwrap();
        let me = me.to_str().unwrap();
        let privileged = |hooks: Value| {
            let spec = json!({"ociVersion": "1.0.2", "hooks": hooks,
                "process": {"capabilities": {"bounding": ["CAP_CHOWN"]}},
                "linux": {"maskedPaths": ["/proc/kcore"], "namespaces": [{"type": "mount"}]}});
            let r = bundle_request("podman", "c", &spec, &PodOptions::default(), "u").unwrap();
            r.object.unwrap()["spec"]["containers"][0]["securityContext"]["privileged"].clone()
        };
        let own = json!({"createRuntime": [{"path": me, "args": ["portcullis", "hook", "--config", "/etc/p.yaml"]}]});
        assert_eq!(privileged(own), false);
        let install =
            json!({"createRuntime": [{"path": me, "args": ["portcullis", "install", "hooks"]}]});
        assert_eq!(privileged(install), true);
        let other = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "hook"]}]});
        assert_eq!(privileged(other), true);
    }
}
