//! `linux.cgroupsPath` against the host's cgroups, read by the doors before the runtime
//! creates anything (I/O at the edge, like `nsresolve`).
//!
//! runc (cgroupfs driver) creates the cgroup the path names, or *joins it if it exists*, and
//! writes the container's limits into it: a path naming a host cgroup (`/system.slice`, a
//! service's cgroup) puts the container among host processes and rewrites their limits. A
//! container's own cgroup does not exist before its task is created, so a path that exists
//! is someone else's and is refused. The systemd driver's form, `slice:prefix:name`, makes a
//! new transient scope (systemd refuses one that exists) and passes. Only where the runtime
//! has not created the cgroup yet can this be asked: the proxy and the runc wrapper, not the
//! OCI hooks (runc has made it by then).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why the spec's `linux.cgroupsPath` cannot be let through, if it cannot.
pub fn refusal(spec: &Value) -> Option<String> {
    let path = spec.pointer("/linux/cgroupsPath")?.as_str()?;
    refusal_under(Path::new(CGROUP_ROOT), path)
}

fn refusal_under(root: &Path, path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    if !path.starts_with('/') {
        let parts: Vec<&str> = path.split(':').collect();
        let plain = |p: &&str| !p.contains('/') && *p != "..";
        if parts.len() == 3 && parts.iter().all(plain) {
            return None;
        }
        return Some(format!(
            "{path:?} is neither an absolute cgroupfs path nor the systemd driver's \
             `slice:prefix:name`; give the container a path of its own"
        ));
    }
    if path.split('/').any(|p| p == ".." || p == ".") {
        return Some(format!("{path:?} has `.` or `..` components"));
    }
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return Some("\"/\" is the host's root cgroup".to_owned());
    }
    let existing = hierarchies(root)
        .into_iter()
        .map(|h| h.join(relative))
        .find(|dir| dir.exists())?;
    Some(format!(
        "{path:?} names the existing cgroup {}: runc would put the container in it and write \
         its limits there; give the container a cgroup of its own",
        existing.display()
    ))
}

/// The hierarchies to look in: the unified one (v2), or each v1 controller's.
fn hierarchies(root: &Path) -> Vec<PathBuf> {
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    std::fs::read_dir(root)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_cgroups_and_odd_paths_are_refused() {
        let root = tempfile::tempdir().unwrap();
        // A v1 layout: one hierarchy per controller.
        std::fs::create_dir_all(root.path().join("memory/system.slice/cron.service")).unwrap();
        std::fs::create_dir_all(root.path().join("pids")).unwrap();
        let at = |p: &str| refusal_under(root.path(), p);
        assert_eq!(at(""), None);
        assert_eq!(at("/default/c1"), None);
        assert_eq!(at("system.slice:docker:abc"), None);
        for bad in [
            "/system.slice",
            "/system.slice/cron.service",
            "/",
            "/default/../system.slice",
            "relative/path",
            "a:b",
            "system.slice:docker:../x",
        ] {
            assert!(at(bad).is_some(), "{bad}");
        }
        assert!(at("/system.slice").unwrap().contains("existing cgroup"));
        // v2: one unified hierarchy.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "memory").unwrap();
        std::fs::create_dir_all(v2.path().join("init.scope")).unwrap();
        assert!(refusal_under(v2.path(), "/init.scope").is_some());
        assert_eq!(refusal_under(v2.path(), "/default/c1"), None);
    }

    #[test]
    fn specs_without_a_path_pass() {
        assert_eq!(refusal(&serde_json::json!({})), None);
        assert_eq!(refusal(&serde_json::json!({"linux": {}})), None);
    }
}
