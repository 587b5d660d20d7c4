//! Host-level power a runtime spec grants outside the fields a Pod has: OCI hooks (programs the
//! runtime runs on the host as root), device access beyond the runtimes' defaults, a writable
//! sysfs or cgroupfs, and mount propagation back to the host. Kubernetes has no field for any of
//! these, and a Pod may only get such power by being privileged, so the view shows each as
//! `privileged: true` (docs/mapping.md "Privileged"); the reasons are listed in the
//! `portcullis.dev/privileged-reasons` annotation so a refusal can be understood.

use std::collections::BTreeMap;

use super::devices;
use super::spec::{ConvertError, Node};

/// What the view needs to judge hooks: the trusted paths and the door's reading of
/// `/proc/<pid>/exe` hook paths.
pub(crate) struct HookTrust<'a> {
    /// `spec.allowedHooks`: exact paths.
    pub allowed: &'a [String],
    /// `/proc/<pid>/exe` → the executable it linked to when the door looked.
    pub exes: &'a BTreeMap<String, String>,
}

impl HookTrust<'_> {
    /// A hook path is trusted when it is in `spec.allowedHooks` exactly, or when it is a
    /// `/proc/<pid>/exe` link (dockerd's libnetwork-setkey hook names dockerd that way) whose
    /// target, read by the door, is.
    fn trusts(&self, path: &str) -> bool {
        let listed = |p: &str| self.allowed.iter().any(|a| a == p);
        listed(path) || (is_proc_exe(path) && self.exes.get(path).is_some_and(|t| listed(t)))
    }
}

/// `/proc/<digits>/exe`, nothing else (`/proc/self/exe` is the runtime's own binary as seen by
/// whatever process runs the hook, so it is not resolved).
pub fn is_proc_exe(path: &str) -> bool {
    path.strip_prefix("/proc/")
        .and_then(|r| r.strip_suffix("/exe"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Every hook as `(field, path)`, e.g. `("hooks.prestart[0].path", "/usr/bin/x")`. Every key
/// of `hooks` is read, not only the six kinds runtime-spec 1.2 defines, so a kind added later
/// is not skipped.
pub(crate) fn hooks<'a>(root: &Node<'a>) -> Result<Vec<(String, &'a str)>, ConvertError> {
    let h = root.get("hooks");
    let mut out = Vec::new();
    for kind in h.object()?.map(|m| m.keys()).into_iter().flatten() {
        for (i, hook) in h.get(kind).items()?.iter().enumerate() {
            let path = hook.get("path").str()?.unwrap_or_default();
            out.push((format!("hooks.{kind}[{i}].path"), path));
        }
    }
    Ok(out)
}

/// Whether the last `ro`/`rw` option of a mount says read-only (the kernel applies options
/// in order, and runc's parser lets the last one win).
pub(crate) fn read_only(options: &[&str]) -> bool {
    options
        .iter()
        .rev()
        .find(|o| matches!(**o, "ro" | "rw"))
        .is_some_and(|o| *o == "ro")
}

/// The reasons, as sentences naming the spec field, the container has host-level power that
/// only a privileged Pod may have. Empty: none.
pub(crate) fn reasons(root: &Node<'_>, trust: &HookTrust<'_>) -> Result<Vec<String>, ConvertError> {
    let mut out = Vec::new();
    for (field, path) in hooks(root)? {
        if !trust.trusts(path) {
            out.push(format!(
                "`{field}` ({path}) runs on the host as root and is not in spec.allowedHooks"
            ));
        }
    }
    out.extend(devices::beyond_defaults(root)?);
    for (i, m) in root.get("mounts").items()?.iter().enumerate() {
        let kind = m.get("type").str()?.unwrap_or_default();
        if matches!(kind, "sysfs" | "cgroup" | "cgroup2")
            && !read_only(&m.get("options").strings()?)
        {
            let dest = m.get("destination").str()?.unwrap_or_default();
            out.push(format!(
                "`mounts[{i}]` is a writable {kind} at {dest}: kernel and cgroup settings of the host"
            ));
        }
    }
    // A Pod has no field for the label of the container's files: every runtime's SELinux
    // policy gives them `container_file_t`. Another type (`spc_t`, a host file type) labels
    // the root filesystem as something the policy cannot see.
    if let Some(label) = root
        .path("linux.mountLabel")
        .str()?
        .filter(|l| !l.is_empty())
    {
        let kind = label.split(':').nth(2).unwrap_or_default();
        if kind != "container_file_t" {
            out.push(format!(
                "`linux.mountLabel` {label:?} is not of type container_file_t, the type runtimes label container files with"
            ));
        }
    }
    // Kubernetes allows `Bidirectional` propagation only to privileged containers; a shared
    // rootfs is that propagation for the whole root filesystem.
    if let Some(p @ ("shared" | "rshared")) = root.path("linux.rootfsPropagation").str()? {
        out.push(format!(
            "`linux.rootfsPropagation` is {p}: mounts made in the container reach the host"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(spec: Value, allowed: &[&str], exes: &[(&str, &str)]) -> Vec<String> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let exes = exes
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let trust = HookTrust {
            allowed: &allowed,
            exes: &exes,
        };
        reasons(&Node::root(&spec).unwrap(), &trust).unwrap()
    }

    #[test]
    fn a_mount_label_other_than_container_files_is_host_power() {
        let label = |l: &str| run(json!({"linux": {"mountLabel": l}}), &[], &[]);
        assert!(label("system_u:object_r:container_file_t:s0:c1,c2").is_empty());
        assert!(label("").is_empty());
        assert_eq!(label("system_u:object_r:spc_t:s0").len(), 1);
        assert_eq!(label("garbage").len(), 1);
    }

    #[test]
    fn every_hook_kind_needs_an_exact_allowed_path() {
        for kind in [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
            "someFutureKind",
        ] {
            let spec = json!({"hooks": {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "id > /tmp/x"]}]}});
            let r = run(spec.clone(), &[], &[]);
            assert_eq!(r.len(), 1, "{kind}");
            assert!(r[0].contains(&format!("hooks.{kind}[0].path")), "{r:?}");
            assert!(run(spec.clone(), &["/bin/sh"], &[]).is_empty(), "{kind}");
            // Exact match only: no prefix, no trailing slash, no other spelling.
            assert_eq!(run(spec.clone(), &["/bin"], &[]).len(), 1);
            assert_eq!(run(spec.clone(), &["/bin/sh/"], &[]).len(), 1);
            assert_eq!(run(spec, &["/bin//sh"], &[]).len(), 1);
        }
        let two = json!({"hooks": {"prestart": [{"path": "/ok"}, {"path": "/bad"}]}});
        assert_eq!(
            run(two, &["/ok"], &[]).len(),
            1,
            "every hook must be allowed"
        );
    }

    #[test]
    fn proc_pid_exe_hooks_are_judged_by_their_target() {
        let spec = json!({"hooks": {"prestart": [{"path": "/proc/6552/exe", "args": ["libnetwork-setkey"]}]}});
        let dockerd = [("/proc/6552/exe", "/usr/bin/dockerd")];
        assert!(run(spec.clone(), &["/usr/bin/dockerd"], &dockerd).is_empty());
        assert_eq!(
            run(spec.clone(), &["/usr/bin/dockerd"], &[]).len(),
            1,
            "unresolved"
        );
        let bash = [("/proc/6552/exe", "/usr/bin/bash")];
        assert_eq!(run(spec, &["/usr/bin/dockerd"], &bash).len(), 1);
        // Only /proc/<digits>/exe is looked up; any other path must match itself.
        let other = json!({"hooks": {"prestart": [{"path": "/tmp/x"}]}});
        assert_eq!(
            run(
                other,
                &["/usr/bin/dockerd"],
                &[("/tmp/x", "/usr/bin/dockerd")]
            )
            .len(),
            1
        );
        assert!(is_proc_exe("/proc/1/exe"));
        for p in [
            "/proc/self/exe",
            "/proc//exe",
            "/proc/1/../1/exe",
            "/proc/1/exe/",
        ] {
            assert!(!is_proc_exe(p), "{p}");
        }
    }

    #[test]
    fn writable_sysfs_and_cgroupfs() {
        let m = |kind: &str, dest: &str, opts: Value| json!({"mounts": [{"destination": dest, "type": kind, "source": kind, "options": opts}]});
        for (kind, dest) in [
            ("sysfs", "/sys"),
            ("cgroup", "/sys/fs/cgroup"),
            ("cgroup2", "/sys/fs/cgroup"),
            ("sysfs", "/host-sys"),
        ] {
            assert_eq!(
                run(m(kind, dest, json!(["nosuid", "rw"])), &[], &[]).len(),
                1
            );
            assert_eq!(run(m(kind, dest, json!(["nosuid"])), &[], &[]).len(), 1);
            assert_eq!(run(m(kind, dest, json!(null)), &[], &[]).len(), 1);
            assert_eq!(run(m(kind, dest, json!(["ro", "rw"])), &[], &[]).len(), 1);
            assert!(run(m(kind, dest, json!(["rw", "nodev", "ro"])), &[], &[]).is_empty());
        }
        assert!(run(m("tmpfs", "/sys", json!([])), &[], &[]).is_empty());
    }

    #[test]
    fn shared_rootfs_propagation() {
        for (p, n) in [("shared", 1), ("rshared", 1), ("rslave", 0), ("private", 0)] {
            let spec = json!({"linux": {"rootfsPropagation": p}});
            assert_eq!(run(spec, &[], &[]).len(), n, "{p}");
        }
    }

    #[test]
    fn malformed_hooks_name_the_field() {
        let spec = json!({"hooks": {"prestart": [{"path": 3}]}});
        let trust = HookTrust {
            allowed: &[],
            exes: &BTreeMap::new(),
        };
        let e = reasons(&Node::root(&spec).unwrap(), &trust).unwrap_err();
        assert!(e.to_string().contains("`hooks.prestart[0].path`"), "{e}");
        let spec = json!({"hooks": []});
        let e = reasons(&Node::root(&spec).unwrap(), &trust).unwrap_err();
        assert!(e.to_string().contains("`hooks`"), "{e}");
    }
}
