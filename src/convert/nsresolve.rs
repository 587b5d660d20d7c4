//! The I/O the pure Pod view cannot do: whether a namespace joined by path
//! (`linux.namespaces[].path`) is the host's, and what a `/proc/<pid>/exe` hook runs. A door
//! calls [`resolve`] (or the two functions) when it builds a [`ContainerRecord`]; `to_pod`
//! only reads the answers, and refuses a namespace path with none.
//!
//! A namespace file is identified by the device and inode `stat` gives for it (nsfs); the
//! host's are those of pid 1's (`/proc/1/ns/<type>`), so the door must run in the host's pid
//! namespace, as the hook, the runc wrapper and the proxy do on a node. `/proc/self/…` and
//! `/proc/thread-self/…` name whichever process opens them: the runtime (runc's init, which
//! may be in a container's namespaces already) sees another namespace than this process, so
//! such a path, or a symlink or directory that leads into this process's own `/proc` entry,
//! is not resolved and the container is refused.
//!
//! Between this check and the runtime's `setns` a process may exit and its pid be reused, or a
//! bind mount be replaced; only a caller with such control of the host can exploit that.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use super::hostpower::is_proc_exe;
use super::ContainerRecord;

/// A namespace path as the door found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsPath {
    /// The host's namespace of that type (same nsfs inode as `/proc/1/ns/<type>`).
    Host,
    /// A namespace file of another namespace (another container's, a named netns).
    Other,
    /// Could not be resolved; why, for the refusal message.
    Unresolved(String),
}

/// Whether [`resolve`] has anything to look up on the host: a namespace joined by path, or
/// a `/proc/<pid>/exe` hook. Most specs have neither, and a door skips the I/O.
pub fn needs_host(spec: &Value) -> bool {
    let ns_path = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|n| n.get("path").is_some_and(|p| p != "")));
    let proc_hook = spec
        .get("hooks")
        .and_then(Value::as_object)
        .is_some_and(|hooks| {
            hooks
                .values()
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(|h| h.get("path").and_then(Value::as_str))
                .any(is_proc_exe)
        });
    ns_path || proc_hook
}

/// Fill `record.ns_paths` and `record.hook_exes` from its spec.
pub fn resolve(record: &mut ContainerRecord) {
    record.ns_paths = resolve_namespace_paths(&record.spec);
    record.hook_exes = resolve_hook_exes(&record.spec);
}

/// The `/proc/<pid>/ns/` name of an OCI namespace type.
fn proc_name(oci_type: &str) -> Option<&'static str> {
    Some(match oci_type {
        "network" => "net",
        "pid" => "pid",
        "ipc" => "ipc",
        "uts" => "uts",
        "mount" => "mnt",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => return None,
    })
}

/// Each `linux.namespaces[].path` of the spec, resolved. Malformed entries are skipped
/// (`to_pod` names them); so are entries without a path.
pub fn resolve_namespace_paths(spec: &Value) -> BTreeMap<String, NsPath> {
    resolve_against(spec, Path::new(HOST_NS))
}

/// pid 1's namespace files: the host's.
const HOST_NS: &str = "/proc/1/ns";

/// [`resolve_namespace_paths`] with another process standing for the host (tests: this
/// sandbox may not let root read pid 1's namespace links).
fn resolve_against(spec: &Value, host_ns: &Path) -> BTreeMap<String, NsPath> {
    let mut out = BTreeMap::new();
    let Some(list) = spec.pointer("/linux/namespaces").and_then(Value::as_array) else {
        return out;
    };
    for ns in list {
        let (Some(kind), Some(path)) = (ns["type"].as_str(), ns["path"].as_str()) else {
            continue;
        };
        if path.is_empty() {
            continue;
        }
        let answer = match proc_name(kind) {
            None => NsPath::Unresolved(format!("`{kind}` is not a namespace type")),
            Some(name) => resolve_one(Path::new(path), &host_ns.join(name)),
        };
        // One path named for two types resolves the same way; keep the first answer.
        out.entry(path.to_owned()).or_insert(answer);
    }
    out
}

/// Whether `path` names this process's own `/proc` entry, literally or through links.
fn is_self_relative(path: &Path) -> Result<bool, String> {
    let literal = path.iter().nth(2).and_then(|c| c.to_str());
    if path.starts_with("/proc") && matches!(literal, Some("self" | "thread-self")) {
        return Ok(true);
    }
    let Some(parent) = path.parent() else {
        return Ok(false);
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| format!("cannot resolve its directory ({:?})", e.kind()))?;
    Ok(parent.starts_with(Path::new("/proc").join(std::process::id().to_string())))
}

fn resolve_one(path: &Path, host: &Path) -> NsPath {
    let why = |s: String| NsPath::Unresolved(s);
    if !path.is_absolute() {
        return why("a relative path is resolved against the runtime's working directory, which Portcullis does not know; use an absolute path".into());
    }
    match is_self_relative(path) {
        Ok(true) => {
            return why("/proc/self and /proc/thread-self name the process that opens them (the runtime), not Portcullis; use /proc/<pid>/ns/… or a bind-mounted namespace file".into())
        }
        Ok(false) => {}
        Err(e) => return why(e),
    }
    // A symlink the caller placed (other than the kernel's own `net:[4026531840]` links) could
    // be re-pointed after this check; name the namespace file itself.
    if let Ok(target) = std::fs::read_link(path) {
        let t = target.to_string_lossy();
        let magic = t.ends_with(']') && t.contains(":[");
        if !magic {
            return why(format!(
                "it is a symbolic link to {t}; name the namespace file itself"
            ));
        }
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return why(format!("cannot stat it ({:?})", e.kind())),
    };
    let host_meta = match std::fs::metadata(host) {
        Ok(m) => m,
        Err(e) => {
            return why(format!(
            "cannot stat the host's {} ({:?}); run Portcullis as root in the host's pid namespace",
            host.display(),
            e.kind()
        ))
        }
    };
    if (meta.dev(), meta.ino()) == (host_meta.dev(), host_meta.ino()) {
        NsPath::Host
    } else if meta.dev() == host_meta.dev() {
        NsPath::Other
    } else {
        why("it is not a namespace file (not on nsfs)".into())
    }
}

/// `/proc/<pid>/exe` hook paths → the executable they link to now (dockerd names itself that
/// way in its libnetwork-setkey prestart hook). Unreadable links are left out, so such a hook
/// is judged by its literal path.
pub fn resolve_hook_exes(spec: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(hooks) = spec.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for list in hooks.values().filter_map(Value::as_array) {
        for path in list.iter().filter_map(|h| h["path"].as_str()) {
            if !is_proc_exe(path) {
                continue;
            }
            if let Ok(target) = std::fs::read_link(path) {
                out.insert(path.to_owned(), target.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_and_proc_hooks_need_the_host() {
        use serde_json::json;
        assert!(!needs_host(&json!({})));
        assert!(!needs_host(
            &json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": ""}]},
            "hooks": {"prestart": [{"path": "/usr/bin/x"}]}})
        ));
        assert!(needs_host(
            &json!({"linux": {"namespaces": [{"type": "network", "path": "/proc/2/ns/net"}]}})
        ));
        assert!(needs_host(
            &json!({"hooks": {"prestart": [{"path": "/proc/6552/exe"}]}})
        ));
    }
    use serde_json::json;
    use std::path::PathBuf;

    /// A process in this test's namespaces, standing in for pid 1.
    struct Sleeper(std::process::Child);

    impl Sleeper {
        fn new() -> Self {
            Sleeper(
                std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .unwrap(),
            )
        }

        fn ns(&self) -> PathBuf {
            PathBuf::from(format!("/proc/{}/ns", self.0.id()))
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn one_against(kind: &str, path: &str, host: &Path) -> NsPath {
        let spec = json!({"linux": {"namespaces": [{"type": kind, "path": path}]}});
        resolve_against(&spec, host).remove(path).expect("resolved")
    }

    fn one(kind: &str, path: &str) -> NsPath {
        one_against(kind, path, &Sleeper::new().ns())
    }

    fn unresolved(n: &NsPath) -> &str {
        match n {
            NsPath::Unresolved(why) => why,
            other => panic!("expected Unresolved, got {other:?}"),
        }
    }

    #[test]
    fn pid_1_is_the_host() {
        let r = resolve_namespace_paths(
            &json!({"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}}),
        );
        match std::fs::metadata("/proc/1/ns/net") {
            Ok(_) => assert_eq!(r["/proc/1/ns/net"], NsPath::Host),
            // This sandbox's pid 1 is not readable even by root: refused, saying why.
            Err(_) => assert!(unresolved(&r["/proc/1/ns/net"]).contains("PermissionDenied")),
        }
    }

    #[test]
    fn any_process_in_the_host_namespace_is_the_host() {
        let host = Sleeper::new();
        let other = Sleeper::new();
        for (kind, name) in [
            ("network", "net"),
            ("pid", "pid"),
            ("mount", "mnt"),
            ("uts", "uts"),
            ("ipc", "ipc"),
            ("cgroup", "cgroup"),
            ("user", "user"),
        ] {
            let p = other.ns().join(name);
            assert_eq!(
                one_against(kind, p.to_str().unwrap(), &host.ns()),
                NsPath::Host,
                "{kind}"
            );
        }
    }

    #[test]
    fn self_and_relative_and_missing_are_unresolved() {
        for p in [
            "/proc/self/ns/net",
            "/proc/thread-self/ns/net",
            "/proc/self/../1/ns/net",
        ] {
            assert!(unresolved(&one("network", p)).contains("/proc/self"), "{p}");
        }
        // This process's own pid is /proc/self by another name.
        let own = format!("/proc/{}/ns/net", std::process::id());
        assert!(unresolved(&one("network", &own)).contains("/proc/self"));
        assert!(unresolved(&one("network", "proc/1/ns/net")).contains("relative"));
        assert!(unresolved(&one("network", "/nonexistent/ns/net")).contains("NotFound"));
        let plain = tempfile::NamedTempFile::new().unwrap();
        let plain = plain.path().to_str().unwrap();
        assert!(unresolved(&one("network", plain)).contains("nsfs"));
        assert!(unresolved(&one("bogus", "/proc/1/ns/net")).contains("not a namespace type"));
        let host = Sleeper::new();
        let gone = Path::new("/nonexistent/ns");
        let p = host.ns().join("net");
        assert!(unresolved(&one_against("network", p.to_str().unwrap(), gone)).contains("host's"));
    }

    #[test]
    fn symlinks_to_namespaces_are_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("net");
        let host = Sleeper::new();
        std::os::unix::fs::symlink(host.ns().join("net"), &link).unwrap();
        let r = one("network", link.to_str().unwrap());
        assert!(unresolved(&r).contains("symbolic link"), "{r:?}");
        // A directory link into this process's own /proc entry is /proc/self too.
        let me = dir.path().join("me");
        std::os::unix::fs::symlink("/proc/self", &me).unwrap();
        let r = one("network", me.join("ns/net").to_str().unwrap());
        assert!(unresolved(&r).contains("/proc/self"), "{r:?}");
    }

    /// A network namespace of its own, bind-mounted on a file in a temporary directory with
    /// `unshare --net=<file>`, is Other; the host's bind-mounted the same way is Host.
    #[test]
    fn bind_mounted_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        let hostfile = dir.path().join("host");
        std::fs::write(&own, "").unwrap();
        std::fs::write(&hostfile, "").unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .is_ok_and(|s| s.success())
        };
        let (own_s, host_s) = (own.to_str().unwrap(), hostfile.to_str().unwrap());
        if !run(&["unshare", &format!("--net={own_s}"), "true"]) {
            eprintln!("skipped: unshare --net=<file> needs root and util-linux");
            return;
        }
        // Unmounted even when an assertion fails, so no nsfs mount outlives the test.
        struct Unmount<'a>(&'a str);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(self.0).status();
            }
        }
        let _own = Unmount(own_s);
        let host = Sleeper::new();
        let host_net = host.ns().join("net");
        assert!(run(&[
            "mount",
            "--bind",
            host_net.to_str().unwrap(),
            host_s
        ]));
        let _host = Unmount(host_s);
        assert_eq!(one_against("network", own_s, &host.ns()), NsPath::Other);
        assert_eq!(one_against("network", host_s, &host.ns()), NsPath::Host);
    }

    #[test]
    fn hook_exes() {
        let sleeper = Sleeper::new();
        let exe = format!("/proc/{}/exe", sleeper.0.id());
        let spec = json!({"hooks": {"prestart": [{"path": exe}, {"path": "/proc/999999999/exe"},
            {"path": "/usr/bin/true"}], "poststop": 3}});
        let exes = resolve_hook_exes(&spec);
        let target = std::fs::read_link(&exe).unwrap();
        assert_eq!(exes.get(&exe).map(String::as_str), target.to_str());
        assert_eq!(exes.len(), 1, "{exes:?}");
    }

    #[test]
    fn malformed_specs_resolve_nothing() {
        for spec in [
            json!(null),
            json!({"linux": {"namespaces": 1}}),
            json!({"linux": {"namespaces": [null, {"type": 1, "path": "/x"}, {"type": "network", "path": ""}]}}),
        ] {
            assert!(resolve_namespace_paths(&spec).is_empty());
            assert!(resolve_hook_exes(&spec).is_empty());
        }
    }
}
