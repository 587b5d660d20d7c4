//! Issue "A sound gate", section 1: each hole in the Pod view, opened on a spec Pod Security
//! baseline admits, must make baseline refuse it. Every fixture stays admitted or refused as
//! its command line says.

use serde_json::{json, Value};

use super::fixture_tests::{self, FIXTURES};
use super::nsresolve::NsPath;
use super::pod::to_pod_value;
use super::{caps, ContainerRecord, PodOptions};
use crate::policy::pss::{evaluate, LevelVersion};

/// A spec baseline admits: docker's default capabilities, masked /proc, its own namespaces,
/// a denying seccomp filter, the bundle's rootfs, a read-only /sys.
fn clean() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "capabilities": {"bounding": caps::DEFAULT}},
        "mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"]}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
            "resources": {"devices": [{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}
        }
    })
}

fn record(spec: Value) -> ContainerRecord {
    ContainerRecord {
        namespace: "default".into(),
        id: "c1".into(),
        spec,
        ..Default::default()
    }
}

/// The baseline checks the Pod fails (empty: admitted).
fn baseline_failures(pod: &Value) -> Vec<String> {
    let lv: LevelVersion = "baseline:latest".parse().unwrap();
    evaluate(&lv, pod)
        .unwrap()
        .into_iter()
        .map(|f| format!("{f:?}"))
        .collect()
}

fn pod_of(r: &ContainerRecord, opts: &PodOptions) -> Value {
    to_pod_value(r, opts).unwrap()
}

/// `edit` opens a hole in the clean spec; baseline must refuse the result.
fn refused(what: &str, edit: impl Fn(&mut Value)) -> Value {
    let mut spec = clean();
    edit(&mut spec);
    let pod = pod_of(&record(spec), &PodOptions::default());
    assert!(
        !baseline_failures(&pod).is_empty(),
        "{what}: admitted {pod:#}"
    );
    pod
}

#[test]
fn the_clean_spec_is_admitted() {
    let pod = pod_of(&record(clean()), &PodOptions::default());
    assert_eq!(baseline_failures(&pod), Vec::<String>::new(), "{pod:#}");
}

#[test]
fn hooks_are_refused_unless_allowed() {
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let hook = json!([{"path": "/bin/sh", "args": ["sh", "-c", "id > /tmp/x"]}]);
        let pod = refused(kind, |s| s["hooks"] = json!({kind: hook}));
        assert_eq!(
            pod["metadata"]["annotations"]["portcullis.dev/hooks"],
            "/bin/sh"
        );
        let reasons = pod["metadata"]["annotations"]["portcullis.dev/privileged-reasons"]
            .as_str()
            .unwrap();
        assert!(
            reasons.contains(&format!("hooks.{kind}[0].path")),
            "{reasons}"
        );
        let mut spec = clean();
        spec["hooks"] = json!({kind: hook});
        let opts = PodOptions {
            allowed_hooks: vec!["/bin/sh".into()],
            ..Default::default()
        };
        let pod = pod_of(&record(spec), &opts);
        assert!(baseline_failures(&pod).is_empty(), "{kind} allowed");
        assert_eq!(
            pod["metadata"]["annotations"]["portcullis.dev/hooks"],
            "/bin/sh"
        );
    }
    let pod =
        refused(
            "two hooks",
            |s| s["hooks"] = json!({"prestart": [{"path": "/a"}], "poststop": [{"path": "/b"}]}),
        );
    assert_eq!(
        pod["metadata"]["annotations"]["portcullis.dev/hooks"],
        "/b,/a"
    );
}

#[test]
fn host_root_filesystems_are_host_paths() {
    for path in [
        "/",
        "/rootfs",
        "../../..",
        "rootfs/../..",
        "/var/lib/docker/overlay2/x/merged",
    ] {
        let pod = refused(path, |s| {
            s["root"] = json!({"path": path, "readonly": true})
        });
        let vol = &pod["spec"]["volumes"][0];
        assert_eq!(
            vol,
            &json!({"name": "rootfs", "hostPath": {"path": path}}),
            "{path}"
        );
        let m = &pod["spec"]["containers"][0]["volumeMounts"][0];
        assert_eq!(
            m,
            &json!({"name": "rootfs", "mountPath": "/", "readOnly": true})
        );
    }
}

#[test]
fn devices_beyond_the_defaults_are_privileged() {
    for rule in [
        json!({"allow": true, "type": "b", "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": -1, "minor": -1, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}),
        json!({"allow": true, "access": "rwm"}),
    ] {
        refused(&rule.to_string(), |s| {
            s["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(rule.clone())
        });
    }
    let pod =
        refused(
            "a block device node",
            |s| {
                s["linux"]["devices"] =
                    json!([{"path": "/dev/vda", "type": "b", "major": 254, "minor": 0}])
            },
        );
    assert_eq!(
        pod["metadata"]["annotations"]["portcullis.dev/devices"],
        "/dev/vda"
    );
}

#[test]
fn writable_sysfs_and_cgroupfs_are_privileged() {
    refused("rw /sys", |s| {
        s["mounts"][0]["options"] = json!(["nosuid", "rw"])
    });
    refused("/sys without ro", |s| {
        s["mounts"][0]["options"] = json!(["nosuid"])
    });
    refused("rw cgroup2", |s| {
        s["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/sys/fs/cgroup",
            "type": "cgroup2", "source": "cgroup", "options": ["nosuid"]}))
    });
}

#[test]
fn permissive_seccomp_is_unconfined() {
    for action in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
        let pod = refused(action, |s| {
            s["linux"]["seccomp"] = json!({"defaultAction": action,
                "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]})
        });
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["seccompProfile"]["type"],
            "Unconfined"
        );
    }
    // A listener is refused outright by the schema; let through with `spec.allowedFields`,
    // the view still shows the profile as confining nothing.
    let mut spec = clean();
    spec["linux"]["seccomp"]["listenerPath"] = json!("/run/agent.sock");
    let e = to_pod_value(&record(spec.clone()), &PodOptions::default()).unwrap_err();
    assert!(e.to_string().contains("linux.seccomp.listenerPath"), "{e}");
    let allowed = PodOptions {
        allowed_fields: vec!["linux.seccomp.listenerPath".into()],
        ..Default::default()
    };
    let pod = pod_of(&record(spec), &allowed);
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["seccompProfile"]["type"],
        "Unconfined"
    );
    assert!(!baseline_failures(&pod).is_empty());
}

#[test]
fn user_namespaces_mapping_host_root_are_host_users() {
    // Baseline relaxes nothing for hostUsers, so refusal is checked on the view: hostUsers
    // true keeps every host-level check that a user namespace would excuse in restricted.
    let userns = |maps: Value| {
        let mut s = clean();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = maps.clone();
        s["linux"]["gidMappings"] = maps;
        pod_of(&record(s), &PodOptions::default())["spec"]["hostUsers"].clone()
    };
    let m = |host: u32, size: u32| json!([{"containerID": 0, "hostID": host, "size": size}]);
    assert_eq!(userns(m(100_000, 65536)), false);
    assert_eq!(userns(m(0, 1)), true, "host root is container root");
    assert_eq!(userns(m(0, 65536)), true);
    assert_eq!(userns(m(1, 65536)), false, "host 0 just below the range");
    assert_eq!(userns(m(0, 0)), false, "an empty range maps nothing");
    assert_eq!(userns(json!([])), true, "no mappings shown");
    let two = json!([{"containerID": 0, "hostID": 100000, "size": 1000},
                     {"containerID": 1000, "hostID": 0, "size": 1}]);
    assert_eq!(userns(two), true, "host root in the second range");
    let mut s = clean();
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    s["linux"]["uidMappings"] = m(100_000, 65536);
    s["linux"]["gidMappings"] = m(0, 65536);
    assert_eq!(
        pod_of(&record(s), &PodOptions::default())["spec"]["hostUsers"],
        true,
        "gid 0"
    );
}

#[test]
fn missing_capabilities_are_none() {
    let mut s = clean();
    s["process"].as_object_mut().unwrap().remove("capabilities");
    let pod = pod_of(&record(s), &PodOptions::default());
    let sc = &pod["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(sc["privileged"], false);
}

#[test]
fn namespace_paths_resolved_by_the_door() {
    let joined = |kind: &str, path: &str, how: Option<NsPath>| {
        let mut s = clean();
        let list = s["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != kind);
        list.push(json!({"type": kind, "path": path}));
        let mut r = record(s);
        if let Some(how) = how {
            r.ns_paths.insert(path.to_owned(), how);
        }
        to_pod_value(&r, &PodOptions::default())
    };
    for (kind, field) in [
        ("network", "hostNetwork"),
        ("pid", "hostPID"),
        ("ipc", "hostIPC"),
    ] {
        let pod = joined(kind, "/proc/2/ns/x", Some(NsPath::Host)).unwrap();
        assert_eq!(pod["spec"][field], true, "{kind}");
        assert!(!baseline_failures(&pod).is_empty(), "{kind}");
        let pod = joined(kind, "/run/netns/x", Some(NsPath::Other)).unwrap();
        assert_eq!(pod["spec"][field], false, "{kind}");
        assert!(baseline_failures(&pod).is_empty(), "{kind}");
    }
    let pod = joined("mount", "/proc/2/ns/mnt", Some(NsPath::Host)).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["privileged"],
        true
    );
    assert!(!baseline_failures(&pod).is_empty());
    let pod = joined("user", "/proc/2/ns/user", Some(NsPath::Host)).unwrap();
    assert_eq!(pod["spec"]["hostUsers"], true);
    for (kind, how) in [
        ("network", Some(NsPath::Unresolved("cannot stat it".into()))),
        ("uts", None),
    ] {
        let e = joined(kind, "/proc/self/ns/x", how)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`linux.namespaces[4].path`"), "{e}");
        assert!(e.contains("/proc/self/ns/x"), "{e}");
    }
    // No mount namespace at all: the host's filesystem.
    refused("no mount namespace", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount")
    });
}

#[test]
fn shared_rootfs_propagation_and_unconfined_labels() {
    refused("rshared", |s| {
        s["linux"]["rootfsPropagation"] = json!("rshared")
    });
    refused("apparmor unconfined", |s| {
        s["process"]["apparmorProfile"] = json!("unconfined")
    });
    refused("spc_t", |s| {
        s["process"]["selinuxLabel"] = json!("system_u:system_r:spc_t:s0")
    });
    let mut s = clean();
    s["linux"]["cgroupsPath"] = json!("/system.slice/x");
    let pod = pod_of(&record(s), &PodOptions::default());
    assert_eq!(
        pod["metadata"]["annotations"]["portcullis.dev/cgroups-path"],
        "/system.slice/x"
    );
}

/// The captured specs: privileged exactly when their command line asked for it, and no
/// hostPath for the root filesystem of any of them.
#[test]
fn fixtures_keep_their_verdicts() {
    for name in FIXTURES {
        let pod = fixture_tests::pod(name);
        let privileged = name.ends_with("privileged");
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["privileged"], privileged,
            "{name}"
        );
        let vols = pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!vols.iter().any(|v| v["name"] == "rootfs"), "{name}");
    }
    // Without spec.allowedHooks, dockerd's and the capture hooks are host code like any other.
    for name in ["docker/plain", "podman/plain"] {
        let r = fixture_tests::record(name);
        let pod = to_pod_value(&r, &fixture_tests::opts_without_hooks()).unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["privileged"], true,
            "{name}"
        );
    }
    // dockerd's hook is trusted through the door's reading of /proc/<pid>/exe only.
    let r = fixture_tests::unresolved_record("docker/plain");
    let pod = to_pod_value(&r, &fixture_tests::opts()).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["privileged"],
        true
    );
}
