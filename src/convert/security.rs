//! The container `securityContext` of the Pod view, read from an OCI spec
//! (k8s.io/api/core/v1 `SecurityContext`; runtime-spec config.md "process", config-linux.md).

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, SELinuxOptions, SeccompProfile, SecurityContext,
};

use super::caps;
use super::spec::{ConvertError, Node};

/// The capability set the container's process gets, in OCI spelling: every capability in
/// any of its sets (bounding, effective, permitted, inheritable, ambient), in first-seen
/// order. The bounding set bounds what an exec'd program can gain, but a capability named
/// only in another set is still asked of the kernel for the process itself, so the view
/// shows it rather than trust that the kernel refuses it. A spec with no
/// `process.capabilities` at all gets none: runc then clears every set (`CapBnd: 0`,
/// checked with runc 1.1.5), so the view is `drop: [ALL]` and a write-back starts from
/// nothing.
pub(crate) fn capability_set<'a>(root: &Node<'a>) -> Result<Vec<&'a str>, ConvertError> {
    let c = root.path("process.capabilities");
    let mut set: Vec<&'a str> = Vec::new();
    if !c.is_present() {
        return Ok(set);
    }
    for name in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        for cap in c.get(name).strings()? {
            if !set.contains(&cap) {
                set.push(cap);
            }
        }
    }
    Ok(set)
}

/// The device cgroup allows every device: an allow rule with no type (or `a`) and no
/// major/minor, not followed by a deny-all rule (rules apply in order).
fn devices_allow_all(root: &Node<'_>) -> Result<bool, ConvertError> {
    let mut all = false;
    for rule in root.path("linux.resources.devices").items()? {
        let any_type = matches!(rule.get("type").str()?, None | Some("a"));
        let any_major = matches!(rule.get("major").i64()?, None | Some(-1));
        let any_minor = matches!(rule.get("minor").i64()?, None | Some(-1));
        if any_type && any_major && any_minor {
            all = rule.get("allow").bool()?.unwrap_or(false);
        }
    }
    Ok(all)
}

/// Neither `linux.maskedPaths` nor `linux.readonlyPaths` hides anything under /proc or /sys.
pub(crate) fn proc_unmasked(root: &Node<'_>) -> Result<bool, ConvertError> {
    Ok(root.path("linux.maskedPaths").strings()?.is_empty()
        && root.path("linux.readonlyPaths").strings()?.is_empty())
}

/// Whether the spec looks like what `--privileged` produces (docker, ctr, podman, CRI):
/// the default capabilities plus `CAP_SYS_ADMIN`, and either the device cgroup allows every
/// device or /proc and /sys are unmasked. "Every capability" cannot be demanded: runtimes grant
/// the capabilities their own process holds, which depends on the host (the captured
/// `ctr --privileged` and `podman --privileged` specs lack `CAP_SYS_RESOURCE`).
pub(crate) fn looks_privileged(root: &Node<'_>, set: &[&str]) -> Result<bool, ConvertError> {
    let has = |c: &str| set.iter().any(|s| caps::to_oci(s) == c);
    let caps_full = has("CAP_SYS_ADMIN") && caps::DEFAULT.iter().all(|c| has(c));
    Ok(caps_full && (devices_allow_all(root)? || proc_unmasked(root)?))
}

/// Default actions that refuse a syscall the filter does not list. Any other default
/// (`SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`, `SCMP_ACT_TRACE`, `SCMP_ACT_NOTIFY`, none) lets every
/// unlisted syscall run, whatever rules follow it.
const DENYING_DEFAULTS: [&str; 5] = [
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
];

/// System calls no runtime's default profile (docker's, containerd's, containers-common's)
/// lets an unprivileged container make: kernel modules and images, BPF, raw file handles,
/// perf, swap, port I/O, the kernel keyring's key creation. A profile that denies by default
/// but allows one of these is not the runtime's default, whatever its default action.
/// (Calls those profiles do allow and leave to capabilities — `mount`, `unshare`, `setns` in
/// containers-common's — are judged through the capabilities the view shows.)
const NEVER_ALLOWED: &[&str] = &[
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "open_by_handle_at",
    "perf_event_open",
    "lookup_dcookie",
    "acct",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "quotactl",
    "nfsservctl",
    "uselib",
    "_sysctl",
    "vm86",
    "vm86old",
    "add_key",
    "request_key",
];

fn seccomp(root: &Node<'_>) -> Result<SeccompProfile, ConvertError> {
    let s = root.path("linux.seccomp");
    let profile = |t: &str| SeccompProfile {
        type_: t.to_owned(),
        localhost_profile: None,
    };
    if !s.is_present() {
        return Ok(profile("Unconfined"));
    }
    let denying = s
        .get("defaultAction")
        .str()?
        .is_some_and(|a| DENYING_DEFAULTS.contains(&a));
    // A user-notification listener hands syscall decisions to a process on the host: the
    // filter then confines only as much as that process wants.
    let listener = s.get("listenerPath").str()?.is_some_and(|p| !p.is_empty());
    let mut notify = false;
    let mut unguarded = false;
    for rule in s.get("syscalls").items()? {
        let action = rule.get("action").str()?;
        notify |= action == Some("SCMP_ACT_NOTIFY");
        if matches!(
            action,
            Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE")
        ) {
            let names = rule.get("names").strings()?;
            unguarded |= names.iter().any(|n| NEVER_ALLOWED.contains(n));
        }
    }
    Ok(profile(if denying && !listener && !notify && !unguarded {
        "RuntimeDefault"
    } else {
        "Unconfined"
    }))
}

/// The runtimes' own default AppArmor profiles (docker, containerd CRI, podman/CRI-O).
fn is_runtime_default_apparmor(name: &str) -> bool {
    name == "docker-default"
        || name == "cri-containerd.apparmor.d"
        || name.starts_with("containers-default")
}

fn apparmor(root: &Node<'_>) -> Result<Option<AppArmorProfile>, ConvertError> {
    Ok(match root.path("process.apparmorProfile").str()? {
        None | Some("") => None,
        Some("unconfined") => Some(AppArmorProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        Some(p) if is_runtime_default_apparmor(p) => Some(AppArmorProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        Some(p) => Some(AppArmorProfile {
            type_: "Localhost".into(),
            localhost_profile: Some(p.to_owned()),
        }),
    })
}

/// `user:role:type:level`; the level may itself hold colons (`s0:c1,c2`).
fn selinux(root: &Node<'_>) -> Result<Option<SELinuxOptions>, ConvertError> {
    let Some(label) = root
        .path("process.selinuxLabel")
        .str()?
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    let mut parts = label
        .splitn(4, ':')
        .map(|p| Some(p.to_owned()).filter(|p| !p.is_empty()));
    Ok(Some(SELinuxOptions {
        user: parts.next().flatten(),
        role: parts.next().flatten(),
        type_: parts.next().flatten(),
        level: parts.next().flatten(),
    }))
}

/// The container's security context; `host_power` lists what else makes it privileged
/// (`hostpower::reasons`).
pub(crate) fn security_context(
    root: &Node<'_>,
    host_power: &[String],
) -> Result<SecurityContext, ConvertError> {
    let set = capability_set(root)?;
    let privileged = looks_privileged(root, &set)? || !host_power.is_empty();
    let (add, drop) = caps::add_drop(&set);
    let uid = root.path("process.user.uid").u32()?.unwrap_or(0);
    let gid = root.path("process.user.gid").u32()?.unwrap_or(0);
    let nnp = root
        .path("process.noNewPrivileges")
        .bool()?
        .unwrap_or(false);
    // A privileged container is unmasked as part of being privileged; a Kubernetes
    // privileged Pod still says `procMount: Default`, so only an unprivileged container
    // with nothing masked is `Unmasked`.
    let proc_mount = if !privileged && proc_unmasked(root)? {
        "Unmasked"
    } else {
        "Default"
    };
    Ok(SecurityContext {
        privileged: Some(privileged),
        capabilities: Some(Capabilities {
            add: Some(add).filter(|v| !v.is_empty()),
            drop: Some(drop).filter(|v| !v.is_empty()),
        }),
        run_as_user: Some(i64::from(uid)),
        run_as_group: Some(i64::from(gid)),
        run_as_non_root: Some(uid != 0),
        allow_privilege_escalation: Some(!nnp),
        read_only_root_filesystem: Some(root.path("root.readonly").bool()?.unwrap_or(false)),
        seccomp_profile: Some(seccomp(root)?),
        app_armor_profile: apparmor(root)?,
        se_linux_options: selinux(root)?,
        proc_mount: Some(proc_mount.to_owned()),
        windows_options: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sc(spec: serde_json::Value) -> SecurityContext {
        security_context(&Node::root(&spec).unwrap(), &[]).unwrap()
    }

    #[test]
    fn apparmor_and_selinux() {
        let s = sc(
            json!({"process": {"apparmorProfile": "docker-default", "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"}}),
        );
        assert_eq!(s.app_armor_profile.unwrap().type_, "RuntimeDefault");
        let se = s.se_linux_options.unwrap();
        assert_eq!(se.type_.as_deref(), Some("container_t"));
        assert_eq!(se.level.as_deref(), Some("s0:c1,c2"));
        let s = sc(json!({"process": {"apparmorProfile": "unconfined"}}));
        assert_eq!(s.app_armor_profile.unwrap().type_, "Unconfined");
        let s = sc(json!({"process": {"apparmorProfile": "my-profile"}}));
        let p = s.app_armor_profile.unwrap();
        assert_eq!(
            (p.type_.as_str(), p.localhost_profile.as_deref()),
            ("Localhost", Some("my-profile"))
        );
        assert!(sc(json!({"process": {"apparmorProfile": ""}}))
            .app_armor_profile
            .is_none());
    }

    #[test]
    fn missing_capabilities_mean_none() {
        // Was "every capability, so privileged": runc 1.1.5 gives such a process CapBnd 0.
        let s = sc(json!({"process": {}, "linux": {"maskedPaths": ["/proc/kcore"]}}));
        assert_eq!(s.privileged, Some(false));
        let c = s.capabilities.unwrap();
        assert_eq!(c.drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(c.add, None);
        let s = sc(json!({}));
        assert_eq!(
            s.privileged,
            Some(false),
            "nothing masked, but no capabilities"
        );
        assert_eq!(s.proc_mount.as_deref(), Some("Unmasked"));
    }

    #[test]
    fn host_power_makes_privileged() {
        let spec = json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}},
            "linux": {"maskedPaths": ["/proc/kcore"]}});
        let s = security_context(&Node::root(&spec).unwrap(), &["a hook".to_owned()]).unwrap();
        assert_eq!(s.privileged, Some(true));
        assert_eq!(s.proc_mount.as_deref(), Some("Default"));
    }

    #[test]
    fn cap_add_all_alone_is_not_privileged() {
        let all: Vec<&str> = caps::ALL.to_vec();
        let s = sc(json!({"process": {"capabilities": {"bounding": all}},
            "linux": {"maskedPaths": ["/proc/kcore"], "resources": {"devices": [{"allow": false, "access": "rwm"}]}}}));
        assert_eq!(s.privileged, Some(false));
        assert_eq!(s.proc_mount.as_deref(), Some("Default"));
    }

    #[test]
    fn allow_all_then_deny_all_is_not_allow_all() {
        let spec = json!({"linux": {"resources": {"devices": [
            {"allow": true, "access": "rwm"}, {"allow": false, "type": "a", "access": "rwm"}]}}});
        assert!(!devices_allow_all(&Node::root(&spec).unwrap()).unwrap());
    }

    #[test]
    fn seccomp_allow_everything_is_unconfined() {
        let s = sc(json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}));
        assert_eq!(s.seccomp_profile.unwrap().type_, "Unconfined");
        let s = sc(json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}));
        assert_eq!(s.seccomp_profile.unwrap().type_, "RuntimeDefault");
    }

    #[test]
    fn capabilities_outside_the_bounding_set_are_shown() {
        let s = sc(
            json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"],
            "effective": ["CAP_CHOWN", "CAP_SYS_ADMIN"], "ambient": ["CAP_NET_ADMIN"]}}}),
        );
        let add = s.capabilities.unwrap().add.unwrap_or_default();
        assert!(add.contains(&"SYS_ADMIN".to_owned()), "{add:?}");
        assert!(add.contains(&"NET_ADMIN".to_owned()), "{add:?}");
    }

    #[test]
    fn a_denying_profile_that_allows_kernel_level_calls_is_unconfined() {
        let with = |names: serde_json::Value| {
            sc(
                json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}}}),
            )
            .seccomp_profile
            .unwrap()
            .type_
        };
        assert_eq!(
            with(json!(["read", "write", "mount", "unshare"])),
            "RuntimeDefault"
        );
        assert_eq!(with(json!(["read", "init_module"])), "Unconfined");
        assert_eq!(with(json!(["bpf"])), "Unconfined");
    }

    #[test]
    fn seccomp_by_default_action_rules_and_listener() {
        let errno_rule = json!([{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]);
        for (action, want) in [
            ("SCMP_ACT_ALLOW", "Unconfined"),
            ("SCMP_ACT_LOG", "Unconfined"),
            ("SCMP_ACT_TRACE", "Unconfined"),
            ("SCMP_ACT_NOTIFY", "Unconfined"),
            ("SCMP_ACT_SOMETHING_NEW", "Unconfined"),
            ("SCMP_ACT_ERRNO", "RuntimeDefault"),
            ("SCMP_ACT_KILL", "RuntimeDefault"),
            ("SCMP_ACT_KILL_PROCESS", "RuntimeDefault"),
            ("SCMP_ACT_KILL_THREAD", "RuntimeDefault"),
            ("SCMP_ACT_TRAP", "RuntimeDefault"),
        ] {
            for rules in [json!([]), errno_rule.clone()] {
                let s =
                    sc(json!({"linux": {"seccomp": {"defaultAction": action, "syscalls": rules}}}));
                assert_eq!(s.seccomp_profile.unwrap().type_, want, "{action} {rules}");
            }
        }
        let s = sc(json!({"linux": {"seccomp": {}}}));
        assert_eq!(
            s.seccomp_profile.unwrap().type_,
            "Unconfined",
            "no default action"
        );
        let s = sc(
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
            "listenerPath": "/run/agent.sock"}}}),
        );
        assert_eq!(s.seccomp_profile.unwrap().type_, "Unconfined", "listener");
        let s = sc(
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}}}),
        );
        assert_eq!(
            s.seccomp_profile.unwrap().type_,
            "Unconfined",
            "notify rule"
        );
    }

    #[test]
    fn unmasked_proc() {
        let s = sc(json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}, "linux": {}}));
        assert_eq!(s.proc_mount.as_deref(), Some("Unmasked"));
        assert_eq!(s.privileged, Some(false));
    }
}
