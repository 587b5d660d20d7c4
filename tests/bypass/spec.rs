//! §1 Spec fields: a baseline-clean spec with one field bent, sent as `Containers/Create`
//! through the proxy in baseline namespace `default`, then started with `ctr tasks start`.
//! Each must be refused at the create, naming the field, and nothing may run.

use serde_json::{json, Value};

use super::kit::{outcome, proc_status, runc_options, written, Corpus, Gate, RuncOptions};
use crate::common::{ok, unique};

const NS: &str = "default";

/// The hook stages of runtime-spec 1.0.2, and where each runs: on the host (runtime
/// namespace), or in the container's mount namespace before/after `pivot_root`.
const STAGES: [(&str, bool); 5] = [
    ("createRuntime", true),
    ("prestart", true),
    ("poststart", true),
    ("createContainer", true),
    ("startContainer", false),
];

#[test]
fn spec_hooks_run_as_root_on_the_host() {
    let g = Gate::new("");
    let mut c = Corpus::new("spec hooks");
    for (stage, on_host) in STAGES {
        let id = unique("c");
        // Before pivot_root the hook sees the host's filesystem; after it, the container's
        // (then the marker is read from the bundle's rootfs).
        let (marker, seen) = if on_host {
            let m = g.host(&format!("{stage}.marker"));
            (m.display().to_string(), m)
        } else {
            (
                format!("/{stage}.marker"),
                g.bundle(NS, &id).join(format!("rootfs/{stage}.marker")),
            )
        };
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        spec["hooks"] = json!({stage: [{"path": "/bin/sh", "args": ["sh", "-c", format!("id -u > {marker}")]}]});
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        let mut effects = g.effects(NS, &id);
        effects.push(written(&seen));
        c.refused(
            &format!("hooks.{stage} runs /bin/sh"),
            &result,
            &["hook", "privileged"],
            effects,
        );
    }
    c.finish(&g.w);
}

#[test]
fn spec_root_path_is_the_hosts_root() {
    let g = Gate::new("");
    let mut c = Corpus::new("root.path");
    // pivot_root cannot move `/` onto itself: the attacker asks runc for no pivot_root
    // (runc Options.no_pivot_root, `ctr run --no-pivot`), or names the host's root by
    // another path.
    let abs = g.host_dir("hostdir-abs");
    let rel = g.host_dir("hostdir-rel");
    let up = "../".repeat(24);
    let cases = [
        ("root.path / + no_pivot_root", "/".to_owned(), true, None),
        (
            "root.path ../../.. (relative to the bundle) + no_pivot_root",
            up.clone(),
            true,
            None,
        ),
        (
            "root.path /proc/1/root",
            "/proc/1/root".to_owned(),
            false,
            None,
        ),
        ("root.path /", "/".to_owned(), false, None),
        (
            "root.path a host directory (absolute)",
            abs.display().to_string(),
            false,
            Some(abs.clone()),
        ),
        (
            "root.path a host directory (relative to the bundle)",
            format!("{up}{}", rel.display().to_string().trim_start_matches('/')),
            false,
            Some(rel.clone()),
        ),
    ];
    for (case, root, no_pivot, host_dir) in cases {
        let id = unique("c");
        // On the host's root the marker is a host path; in a host directory, at its root.
        let (marker, inside) = match &host_dir {
            Some(dir) => (dir.join("owned"), "/owned".to_owned()),
            None => {
                let m = g.host(&format!("{id}.marker"));
                let inside = m.display().to_string();
                (m, inside)
            }
        };
        let mut spec = g.spec(
            NS,
            &id,
            &["sh", "-c", &format!("id -u > {inside}; sleep 300")],
        );
        spec["root"] = json!({"path": root, "readonly": false});
        let options = no_pivot.then(|| {
            runc_options(RuncOptions {
                no_pivot_root: true,
                ..Default::default()
            })
        });
        let result = g
            .create_with(
                NS,
                &id,
                &serde_json::to_vec(&spec).unwrap(),
                Default::default(),
                options,
            )
            .and_then(|()| g.start(NS, &id));
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(case, &result, &["root", "hostPath"], effects);
    }
    // The same with ctr's own flag.
    let id = unique("c");
    let marker = g.host(&format!("{id}.marker"));
    let script = format!("id -u > {}; sleep 300", marker.display());
    let result = outcome(g.w.ctr(&[
        "run",
        "-d",
        "--null-io",
        "--seccomp",
        "--no-pivot",
        "--rootfs",
        "/",
        &id,
        "sh",
        "-c",
        &script,
    ]));
    let mut effects = g.effects(NS, &id);
    effects.push(written(&marker));
    c.refused(
        "ctr run --no-pivot --rootfs /",
        &result,
        &["root", "hostPath"],
        effects,
    );
    c.finish(&g.w);
}

#[test]
fn spec_device_access_reaches_the_hosts_disk() {
    let g = Gate::new("");
    let mut c = Corpus::new("devices");
    // The host's first block device (major:minor), read through a node the container makes.
    let (major, minor) = first_block_device();
    let mknod_and_read = format!(
        "(mknod /tmp/disk b {major} {minor} && head -c 512 /tmp/disk > /dev/null && echo read > /disk-read) 2> /disk-err; sleep 300"
    );
    let read_sda =
        "(head -c 512 /dev/sda > /dev/null && echo read > /disk-read) 2> /disk-err; sleep 300";
    type Bend = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, &str, Bend)> = vec![
        (
            "linux.resources.devices allow type b rwm",
            &mknod_and_read,
            Box::new(|s: &mut Value| {
                push(
                    &mut s["linux"]["resources"]["devices"],
                    json!({"allow": true, "type": "b", "access": "rwm"}),
                )
            }),
        ),
        (
            "linux.resources.devices allow all rwm",
            &mknod_and_read,
            Box::new(|s: &mut Value| {
                push(
                    &mut s["linux"]["resources"]["devices"],
                    json!({"allow": true, "access": "rwm"}),
                )
            }),
        ),
        (
            "linux.resources.devices allow b MAJOR:MINOR rwm",
            &mknod_and_read,
            Box::new(move |s: &mut Value| {
                push(
                    &mut s["linux"]["resources"]["devices"],
                    json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "rwm"}),
                )
            }),
        ),
        (
            "linux.devices /dev/sda = the host's disk (+ its cgroup rule)",
            read_sda,
            Box::new(move |s: &mut Value| {
                push(
                    &mut s["linux"]["devices"],
                    json!({"path": "/dev/sda", "type": "b", "major": major, "minor": minor, "fileMode": 432, "uid": 0, "gid": 0}),
                );
                push(
                    &mut s["linux"]["resources"]["devices"],
                    json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "rwm"}),
                );
            }),
        ),
    ];
    for (case, script, bend) in cases {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sh", "-c", script]);
        bend(&mut spec);
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut effects = g.effects(NS, &id);
        let read = g.bundle(NS, &id).join("rootfs/disk-read");
        let err =
            std::fs::read_to_string(g.bundle(NS, &id).join("rootfs/disk-err")).unwrap_or_default();
        eprintln!("{case}: reading the disk: {:?}", err.trim());
        effects.push((
            format!("the host's disk {major}:{minor} was read"),
            read.exists(),
        ));
        c.refused(case, &result, &["device", "privileged"], effects);
    }
    c.finish(&g.w);
}

#[test]
fn spec_mounts_give_the_host_or_writable_kernel_interfaces() {
    let g = Gate::new("");
    let mut c = Corpus::new("mounts");
    type Bend = Box<dyn Fn(&mut Value, &str)>;
    let writable = |dest: &'static str, typ: &'static str| -> Bend {
        Box::new(move |s: &mut Value, _| {
            let mounts = s["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["destination"] != dest);
            mounts.push(json!({"destination": dest, "type": typ, "source": typ,
                "options": ["nosuid", "noexec", "nodev", "rw"]}));
        })
    };
    // A host directory stands for the host's `/` (never bind `/` itself in a test).
    let bind_src = g.host_dir("bind-src");
    let host_bind = |typ: &'static str, opts: &'static [&'static str]| -> Bend {
        let src = bind_src.display().to_string();
        Box::new(move |s: &mut Value, _| {
            push(
                &mut s["mounts"],
                json!({"destination": "/host", "type": typ, "source": src, "options": opts}),
            )
        })
    };
    let cases: Vec<(&str, &[&str], Bend)> = vec![
        (
            "/sys sysfs rw",
            &["sys", "mount", "privileged"],
            writable("/sys", "sysfs"),
        ),
        (
            "/sys/fs/cgroup cgroup rw",
            &["cgroup", "mount", "privileged"],
            writable("/sys/fs/cgroup", "cgroup"),
        ),
        (
            "linux.maskedPaths and readonlyPaths emptied",
            &["procMount", "masked", "Unmasked"],
            Box::new(|s: &mut Value, _| {
                s["linux"]["maskedPaths"] = json!([]);
                s["linux"]["readonlyPaths"] = json!([]);
            }),
        ),
        (
            "bind a host directory at /host",
            &["hostPath", "mount"],
            host_bind("bind", &["rbind", "rw"]),
        ),
        (
            "type none + rbind of a host directory (runc binds on the option, not the type)",
            &["hostPath", "mount", "bind"],
            host_bind("none", &["rbind", "rw"]),
        ),
        (
            "type tmpfs + rbind of a host directory (an emptyDir by its type)",
            &["hostPath", "mount", "bind"],
            host_bind("tmpfs", &["rbind", "rw"]),
        ),
    ];
    for (case, words, bend) in cases {
        let id = unique("c");
        let marker = bind_src.join(format!("{id}.owned"));
        // With the host directory at /host, the container writes a file on the host.
        let script = format!("[ -d /host/bin ] && id -u > /host/{id}.owned; sleep 300");
        let mut spec = g.spec(NS, &id, &["sh", "-c", &script]);
        bend(&mut spec, &id);
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(case, &result, words, effects);
    }
    c.finish(&g.w);
}

#[test]
fn spec_seccomp_profiles_that_confine_nothing() {
    let g = Gate::new("");
    let mut c = Corpus::new("seccomp");
    let rule = json!([{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]);
    let cases = [
        (
            "defaultAction SCMP_ACT_ALLOW with one rule",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rule}),
        ),
        (
            "defaultAction SCMP_ACT_LOG with one rule",
            json!({"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rule}),
        ),
        (
            "defaultAction SCMP_ACT_ALLOW, no rules",
            json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        ),
        (
            "defaultAction SCMP_ACT_ERRNO, one rule allowing every dangerous call",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [
                "mount", "umount2", "unshare", "setns", "ptrace", "bpf", "kexec_load", "init_module",
                "finit_module", "open_by_handle_at", "keyctl", "add_key", "perf_event_open",
                "read", "write", "openat", "close", "execve", "exit_group", "nanosleep",
                "clock_nanosleep", "rt_sigaction", "rt_sigprocmask", "brk", "mmap", "munmap",
                "arch_prctl", "set_tid_address", "getpid", "fstat", "newfstatat", "wait4",
                "clone", "fork", "vfork", "getuid", "geteuid", "getgid", "getegid", "ioctl",
                "fcntl", "dup2", "dup3", "pipe", "pipe2", "chdir", "getcwd", "stat", "lstat",
                "access", "uname", "prctl", "capget", "capset", "setgroups", "setuid", "setgid",
                "exit", "futex", "getppid", "sigaltstack", "rt_sigreturn", "lseek", "mprotect",
                "faccessat", "readlink", "getdents64", "statx", "poll", "select"],
                "action": "SCMP_ACT_ALLOW"}]}),
        ),
    ];
    for (case, seccomp) in cases {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        spec["linux"]["seccomp"] = seccomp;
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        let mut effects = g.effects(NS, &id);
        if let Some(pid) = g.task_pid(NS, &id) {
            effects.push((
                format!("Seccomp mode {}", proc_status(pid, "Seccomp")),
                true,
            ));
        }
        c.refused(case, &result, &["seccomp"], effects);
    }
    c.finish(&g.w);
}

/// A user namespace that maps container root onto host root is no user namespace for what
/// matters: Pod Security restricted (1.35, KEP-127) lets uid 0 run only in a user namespace
/// that keeps the host's root out, so the view must say `hostUsers: true` and restricted
/// refuse uid 0. (Under baseline such a container is admitted like any root container.)
#[test]
fn spec_user_namespace_mapping_container_root_to_host_root() {
    let g = Gate::new("");
    let mut c = Corpus::new("uidMappings");
    let ns = "strict";
    ok(g.w.ctr(&[
        "-n",
        ns,
        "images",
        "import",
        crate::common::image_tar().to_str().unwrap(),
    ]));
    for (case, size) in [("0 -> 0, 65536", 65536u64), ("0 -> 0, all", 4294967295)] {
        let id = unique("c");
        let mut spec = g.spec(ns, &id, &["sleep", "300"]);
        // Restricted in every other respect: no capabilities, no privilege escalation.
        spec["process"]["capabilities"] = json!({"bounding": [], "effective": [], "permitted": []});
        spec["process"]["noNewPrivileges"] = json!(true);
        spec["process"]["user"] = json!({"uid": 0, "gid": 0});
        push(&mut spec["linux"]["namespaces"], json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 0, "size": size}]);
        spec["linux"]["uidMappings"] = map.clone();
        spec["linux"]["gidMappings"] = map;
        let result = g.attempt(ns, &id, &serde_json::to_vec(&spec).unwrap());
        let effects = g.effects(ns, &id);
        c.refused(
            &format!("uid 0 in restricted, user namespace with uidMappings {case}"),
            &result,
            &["runAsNonRoot", "runAsUser", "hostUsers"],
            effects,
        );
    }
    c.finish(&g.w);
}

/// A spec with no `process.capabilities` runs with none: it must be admitted as such (not
/// judged as holding every capability), and a mutation's write-back must not grant any.
#[test]
fn spec_without_capabilities_is_admitted_without_any_and_write_back_grants_none() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("env.yaml"),
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: env}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{spec: Object.spec{containers: object.spec.containers.map(c,
          Object.spec.containers{name: c.name,
            env: [Object.spec.containers.env{name: "MUTATED", value: "yes"}]})}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: env}
spec: {policyName: env}
"#,
    )
    .unwrap();
    let g = Gate::new(&format!("policyDir: {}\n", policies.path().display()));
    let mut c = Corpus::new("capabilities absent");
    for (case, bend) in [
        ("process.capabilities absent", "absent"),
        ("process.capabilities null", "null"),
        ("process.capabilities {}", "empty"),
    ] {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        match bend {
            "absent" => {
                spec["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("capabilities");
            }
            "null" => spec["process"]["capabilities"] = Value::Null,
            _ => spec["process"]["capabilities"] = json!({}),
        }
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        let stored: Value = serde_json::from_str(&crate::common::text(&g.w.ctr_direct(&[
            "containers",
            "info",
            &id,
        ])))
        .unwrap_or(Value::Null);
        let caps = &stored["Spec"]["process"]["capabilities"];
        let granted = [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ]
        .iter()
        .any(|set| caps[set].as_array().is_some_and(|a| !a.is_empty()));
        let env = stored["Spec"]["process"]["env"].to_string();
        let cap_eff = g
            .task_pid(NS, &id)
            .map(|pid| proc_status(pid, "CapEff"))
            .unwrap_or_default();
        c.admitted(
            case,
            &result,
            vec![
                (
                    "the mutation was written back".into(),
                    env.contains("MUTATED=yes"),
                ),
                (
                    format!("the stored spec grants no capability ({caps})"),
                    !granted,
                ),
                (
                    format!("the task runs with CapEff 0 (CapEff {cap_eff:?})"),
                    cap_eff == "0000000000000000",
                ),
            ],
        );
    }
    c.finish(&g.w);
}

#[test]
fn spec_namespaces_joined_by_path_are_the_hosts() {
    let g = Gate::new("");
    let mut c = Corpus::new("namespaces by path");
    let me = std::process::id();
    let cases = [
        ("network", "/proc/self/ns/net".to_owned(), "net"),
        ("network", "/proc/1/ns/net".to_owned(), "net"),
        ("network", "/proc/2/ns/net".to_owned(), "net"),
        ("network", format!("/proc/{me}/ns/net"), "net"),
        ("pid", "/proc/1/ns/pid".to_owned(), "pid"),
        ("ipc", "/proc/1/ns/ipc".to_owned(), "ipc"),
        ("mount", format!("/proc/{me}/ns/mnt"), "mnt"),
        ("uts", "/proc/1/ns/uts".to_owned(), "uts"),
        ("cgroup", "/proc/1/ns/cgroup".to_owned(), "cgroup"),
    ];
    for (typ, path, link) in cases {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        let namespaces = spec["linux"]["namespaces"].as_array_mut().unwrap();
        if !namespaces.iter().any(|n| n["type"] == typ) {
            namespaces.push(json!({"type": typ}));
        }
        for ns in namespaces {
            if ns["type"] == typ {
                ns["path"] = json!(path);
            }
        }
        let bytes = serde_json::to_vec(&spec).unwrap();
        // Joining the host's mount namespace would make runc pivot_root the host's, its UTS
        // namespace set the host's hostname: only the create is tried for them.
        let result = if typ == "mount" || typ == "uts" {
            g.create(NS, &id, &bytes)
        } else {
            g.attempt(NS, &id, &bytes)
        };
        let mut effects = g.effects(NS, &id);
        if let Some(pid) = g.task_pid(NS, &id) {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{link}")).ok();
            let ours = std::fs::read_link(format!("/proc/self/ns/{link}")).ok();
            effects.push((
                format!("the task is in the host's {typ} namespace"),
                theirs == ours,
            ));
        }
        c.refused(
            &format!("linux.namespaces {typ} path {path}"),
            &result,
            &["namespace", "host"],
            effects,
        );
    }
    c.finish(&g.w);
}

#[test]
fn spec_lsm_labels_that_confine_nothing() {
    let g = Gate::new("");
    let mut c = Corpus::new("LSM labels");
    type Bend = fn(&mut Value);
    let cases: [(&str, &[&str], Bend); 3] = [
        ("process.apparmorProfile unconfined", &["apparmor"], |s| {
            s["process"]["apparmorProfile"] = json!("unconfined")
        }),
        ("process.selinuxLabel spc_t", &["selinux", "spc_t"], |s| {
            s["process"]["selinuxLabel"] = json!("system_u:system_r:spc_t:s0")
        }),
        (
            "linux.mountLabel spc_t",
            &["selinux", "mountLabel", "spc_t"],
            |s| s["linux"]["mountLabel"] = json!("system_u:object_r:spc_t:s0"),
        ),
    ];
    for (case, words, bend) in cases {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        bend(&mut spec);
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        c.refused(case, &result, words, g.effects(NS, &id));
    }
    c.finish(&g.w);
}

#[test]
fn spec_fields_the_gate_cannot_judge() {
    let g = Gate::new("");
    let mut c = Corpus::new("unknown and unjudged fields");
    type Bend = fn(&mut Value);
    let cases: [(&str, &[&str], Bend); 6] = [
        (
            "linux.netDevices (unknown to the gate)",
            &["netDevices"],
            |s| s["linux"]["netDevices"] = json!({"eth0": {"name": "ctr0"}}),
        ),
        ("an unknown top-level field", &["unknownField"], |s| {
            s["unknownField"] = json!({"x": 1})
        }),
        ("linux.rootfsPropagation rshared", &["propagation"], |s| {
            s["linux"]["rootfsPropagation"] = json!("rshared")
        }),
        ("linux.rootfsPropagation shared", &["propagation"], |s| {
            s["linux"]["rootfsPropagation"] = json!("shared")
        }),
        (
            "linux.sysctl kernel.msgmax (not a safe sysctl)",
            &["sysctl"],
            |s| s["linux"]["sysctl"] = json!({"kernel.msgmax": "65536"}),
        ),
        (
            "CAP_SYS_ADMIN in effective/permitted/ambient, bounding unchanged",
            &["capabilit", "SYS_ADMIN", "privileged"],
            |s| {
                for set in ["effective", "permitted", "inheritable", "ambient"] {
                    push(
                        &mut s["process"]["capabilities"][set],
                        json!("CAP_SYS_ADMIN"),
                    );
                }
            },
        ),
    ];
    for (case, words, bend) in cases {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        bend(&mut spec);
        let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
        c.refused(case, &result, words, g.effects(NS, &id));
    }
    c.finish(&g.w);
}

/// Appends `v` to the array at `at` (made an array when absent).
pub fn push(at: &mut Value, v: Value) {
    if !at.is_array() {
        *at = json!([]);
    }
    at.as_array_mut().unwrap().push(v);
}

/// The first whole block device in `/proc/partitions` (major, minor).
fn first_block_device() -> (u64, u64) {
    let parts = std::fs::read_to_string("/proc/partitions").unwrap();
    parts
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.parse().ok()?, f.get(1)?.parse().ok()?))
        })
        .unwrap_or((8, 0))
}

/// A cgroup of the host's, removed when the test ends (after its tasks are gone).
struct HostCgroup(std::path::PathBuf);

impl Drop for HostCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `linux.cgroupsPath` naming a cgroup the container does not own: runc joins it and writes
/// the container's limits into it (here a memory limit into a host cgroup standing for
/// `system.slice/containerd.service`).
#[test]
fn spec_cgroups_path_names_a_host_cgroup() {
    let name = format!("portcullis-bypass-victim-{}", std::process::id());
    let victim = std::path::Path::new("/sys/fs/cgroup/memory").join(&name);
    std::fs::create_dir_all(&victim).unwrap();
    let _cleanup = HostCgroup(victim.clone());
    let g = Gate::new("");
    let mut c = Corpus::new("cgroupsPath");
    let id = unique("c");
    let mut spec = g.spec(NS, &id, &["sleep", "300"]);
    spec["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    spec["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    let before = std::fs::read_to_string(victim.join("memory.limit_in_bytes")).unwrap_or_default();
    let result = g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap());
    let after = std::fs::read_to_string(victim.join("memory.limit_in_bytes")).unwrap_or_default();
    let procs = std::fs::read_to_string(victim.join("cgroup.procs")).unwrap_or_default();
    let mut effects = g.effects(NS, &id);
    effects.push((
        format!(
            "the host cgroup's memory limit {} -> {}",
            before.trim(),
            after.trim()
        ),
        before != after,
    ));
    effects.push((
        "the task runs in the host cgroup".to_owned(),
        !procs.trim().is_empty(),
    ));
    c.refused(
        "linux.cgroupsPath /<a host cgroup>",
        &result,
        &["cgroupsPath", "cgroup"],
        effects,
    );
    c.finish(&g.w);
}
