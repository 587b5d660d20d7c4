//! The schema walk: real specs pass, unknown and refused fields are refused with their dotted
//! path, `spec.allowedFields` lets exactly what it names through, and docs/mapping.md lists
//! the schema as it is.

use serde_json::{json, Value};

use super::*;
use crate::convert::fixture_tests::{record, FIXTURES};
use crate::convert::pod::to_pod;
use crate::convert::PodOptions;

fn err(spec: Value) -> String {
    check(&spec, &[]).expect_err("must be refused").to_string()
}

fn allow(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_fixture_spec_and_process_passes() {
    for name in FIXTURES {
        let spec = record(name).spec;
        check(&spec, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_process(&spec["process"], &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn unknown_field_message_is_exact() {
    assert_eq!(
        err(json!({"linux": {"netDevicez": {"eth0": {}}}})),
        "unknown OCI spec field linux.netDevicez: this build cannot judge it; remove it, or list \
         it under spec.allowedFields in the config to let it through unjudged"
    );
}

#[test]
fn unknown_fields_at_every_depth_name_their_path() {
    let cases = [
        (json!({"extra": 1}), "field extra:"),
        (
            json!({"process": {"user": {"uid": 0, "home": "/"}}}),
            "process.user.home:",
        ),
        (
            json!({"linux": {"resources": {"memory": {"limit": 1, "max": 2}}}}),
            "linux.resources.memory.max:",
        ),
        (
            json!({"mounts": [{"destination": "/a"}, null, {"destination": "/b", "idmap": true}]}),
            "mounts[2].idmap: this build cannot judge it; remove it, or list `mounts.idmap`",
        ),
        (
            json!({"linux": {"seccomp": {"syscalls": [{"names": ["a"], "args": [{"index": 0, "mask": 1}]}]}}}),
            "linux.seccomp.syscalls[0].args[0].mask:",
        ),
        (
            json!({"linux": {"resources": {"rdma": {"mlx5_0": {"hcaHandles": 1, "hcaMrs": 2}}}}}),
            "linux.resources.rdma[\"mlx5_0\"].hcaMrs: this build cannot judge it; remove it, or \
             list `linux.resources.rdma.hcaMrs`",
        ),
        (
            json!({"hooks": {"prestart": [{"path": "/bin/true", "user": "root"}]}}),
            "hooks.prestart[0].user:",
        ),
    ];
    for (spec, want) in cases {
        let e = err(spec);
        assert!(e.starts_with("unknown OCI spec field "), "{e}");
        assert!(e.contains(want), "{want} not in: {e}");
    }
}

#[test]
fn case_variants_are_unknown() {
    // Go's encoding/json would read each of these as the known key (Unicode folding included:
    // U+212A KELVIN SIGN folds to `k`), so each could hide a field from the Pod view.
    let cases = [
        (json!({"PROCESS": {"args": ["sh"]}}), "PROCESS"),
        (json!({"process": {"User": {"uid": 0}}}), "process.User"),
        (json!({"linux": {"Namespaces": []}}), "linux.Namespaces"),
        (json!({"ociversion": "1.0.2"}), "ociversion"),
        (
            json!({"linux": {"resources": {"memory": {"\u{212A}ernel": 1}}}}),
            "linux.resources.memory.\u{212A}ernel",
        ),
    ];
    for (spec, field) in cases {
        assert!(
            err(spec).starts_with(&format!("unknown OCI spec field {field}:")),
            "{field}"
        );
    }
}

#[test]
fn maps_have_free_form_keys() {
    let spec = json!({
        "annotations": {"PROCESS": "x", "anything.at/all": "y"},
        "linux": {
            "sysctl": {"net.ipv4.ip_forward": "1", "Weird": "v"},
            "resources": {
                "unified": {"memory.high": "1G", "memory.min": "0", "memory.swap.max": "0", "io.weight": "50"},
                "rdma": {"any-device": {"hcaHandles": 3}}
            },
            "timeOffsets": {"monotonic": {"secs": 1}, "boottime": {"nanosecs": 2}}
        }
    });
    check(&spec, &[]).unwrap();
}

#[test]
fn refused_fields_are_refused_with_their_reason() {
    let cases = [
        (json!({"windows": {"layerFolders": ["C:\\"]}}), "windows"),
        (json!({"vm": {"hypervisor": {"path": "/bin/sh"}}}), "vm"),
        (json!({"solaris": {"milestone": "x"}}), "solaris"),
        (json!({"zos": {"namespaces": [{"type": "pid"}]}}), "zos"),
        (json!({"freebsd": {"jail": {}}}), "freebsd"),
        (
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 99}}}),
            "process.scheduler",
        ),
        (
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_RT"}}}),
            "process.ioPriority",
        ),
        (
            json!({"process": {"commandLine": "cmd.exe"}}),
            "process.commandLine",
        ),
        (
            json!({"process": {"user": {"username": "Administrator"}}}),
            "process.user.username",
        ),
        (
            json!({"linux": {"netDevices": {"eth0": {"name": "eth1"}}}}),
            "linux.netDevices",
        ),
        (
            json!({"linux": {"seccomp": {"listenerPath": "/run/agent.sock"}}}),
            "linux.seccomp.listenerPath",
        ),
        (
            json!({"linux": {"resources": {"network": {"classID": 1048577}}}}),
            "linux.resources.network.classID",
        ),
        (
            json!({"mounts": [{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}]}),
            "mounts[0].uidMappings",
        ),
        (
            json!({"linux": {"resources": {"unified": {"memory.max": "max"}}}}),
            "linux.resources.unified.memory.max",
        ),
        (
            json!({"linux": {"resources": {"unified": {"cgroup.procs": "1"}}}}),
            "linux.resources.unified.cgroup.procs",
        ),
        (
            json!({"linux": {"resources": {"unified": {"hugetlb.2MB.max": "max"}}}}),
            "linux.resources.unified.hugetlb.2MB.max",
        ),
        (
            json!({"annotations": {"org.systemd.property.MemoryMax": "uint64 18446744073709551615"}}),
            "annotations.org.systemd.property.MemoryMax",
        ),
        (
            json!({"annotations": {"run.oci.seccomp.plugins": "/tmp/evil.so"}}),
            "annotations.run.oci.seccomp.plugins",
        ),
        (
            json!({"annotations": {"bundle": "/tmp/x"}}),
            "annotations.bundle",
        ),
        (
            json!({"annotations": {"org.criu.config": "/tmp/x.conf"}}),
            "annotations.org.criu.config",
        ),
    ];
    for (spec, field) in cases {
        let e = err(spec);
        assert!(
            e.starts_with(&format!("OCI spec field {field} is refused: ")),
            "{field}: {e}"
        );
        assert!(e.ends_with("to let it through unjudged"), "{e}");
    }
    let e = err(json!({"process": {"scheduler": {"policy": "SCHED_FIFO"}}}));
    assert!(e.contains("SCHED_FIFO"), "the reason is given: {e}");
}

#[test]
fn refused_fields_that_are_unset_pass() {
    let spec = json!({
        "windows": null, "vm": {}, "solaris": {},
        "process": {"scheduler": null, "ioPriority": {}, "commandLine": "", "user": {"uid": 0, "username": ""}},
        "mounts": [{"destination": "/a", "uidMappings": []}],
        "linux": {"netDevices": {}, "seccomp": {"listenerPath": ""},
                  "resources": {"network": {"classID": 0}}}
    });
    check(&spec, &[]).unwrap();
}

#[test]
fn allowed_fields_let_through_only_what_they_name() {
    let spec = json!({"linux": {"netDevices": {"eth0": {}}, "fooBar": {"x": 1}}});
    check(&spec, &allow(&["linux.netDevices", "linux.fooBar"])).unwrap();
    // Below the entry: a whole subtree.
    let spec = json!({"linux": {"resources": {"memory": {"new": 1}, "newController": {}}}});
    check(&spec, &allow(&["linux.resources"])).unwrap();
    // Not a sibling whose name merely starts the same, and not a parent or another branch.
    let only = allow(&["linux.fooBar"]);
    assert!(check(&json!({"linux": {"fooBarBaz": 1}}), &only).is_err());
    assert!(check(&json!({"process": {"fooBar": 1}}), &only).is_err());
    assert!(check(
        &json!({"linux": {"resources": {"x": 1}}}),
        &allow(&["linux.resources.memory"])
    )
    .is_err());
    // An entry without list indices covers every item; an empty entry allows nothing.
    let spec = json!({"mounts": [{"destination": "/a"}, {"destination": "/b", "uidMappings": [{"size": 1}]}]});
    check(&spec, &allow(&["mounts.uidMappings"])).unwrap();
    assert!(check(&spec, &allow(&[""])).is_err());
    // A refused map key by its own entry, and the same entry in check_process.
    let spec =
        json!({"linux": {"resources": {"unified": {"memory.max": "max", "cgroup.procs": "1"}}}});
    let e = check(&spec, &allow(&["linux.resources.unified.memory.max"])).unwrap_err();
    assert!(e.to_string().contains("unified.cgroup.procs"), "{e}");
    let p = json!({"args": ["sh"], "scheduler": {"policy": "SCHED_FIFO"}});
    check_process(&p, &allow(&["process.scheduler"])).unwrap();
}

#[test]
fn allowed_entry_matching_is_at_dot_boundaries() {
    let only = allow(&["linux"]);
    assert!(check(&json!({"linuxx": 1}), &only).is_err());
    assert!(check(&json!({"linux": {"anything": 1}}), &only).is_ok());
}

#[test]
fn wrong_shapes_name_the_field_and_never_panic() {
    let e = err(json!({"linux": 5}));
    assert!(e.contains("`linux` is a number"), "{e}");
    let e = err(json!({"mounts": {"destination": "/"}}));
    assert!(
        e.contains("`mounts` is an object") && e.contains("an array"),
        "{e}"
    );
    let e = err(json!({"mounts": ["/"]}));
    assert!(e.contains("`mounts[0]` is a string"), "{e}");
    assert!(check(&Value::Null, &[]).is_err());
    assert!(check(&json!([1]), &[]).is_err());
    assert!(check_process(&json!("sh"), &[]).is_err());
    for v in [
        json!(null),
        json!(1),
        json!("x"),
        json!([null, 1, {}]),
        json!({"a": [[]]}),
    ] {
        for path in [
            "process",
            "linux",
            "mounts",
            "hooks",
            "linux.resources",
            "linux.seccomp",
        ] {
            let mut spec = json!({});
            let mut at = &mut spec;
            for k in path.split('.') {
                at = &mut at[k];
            }
            *at = v.clone();
            let _ = check(&spec, &[]);
        }
        let _ = check_process(&v, &[]);
    }
}

#[test]
fn check_process_names_fields_under_process() {
    let e = check_process(&json!({"args": ["sh"], "Env": []}), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown OCI spec field process.Env:"),
        "{e}"
    );
    let e = check_process(&json!({"ioPriority": {"class": "IOPRIO_CLASS_RT"}}), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("OCI spec field process.ioPriority is refused"),
        "{e}"
    );
}

#[test]
fn to_pod_checks_first_and_honours_allowed_fields() {
    let r = crate::convert::ContainerRecord {
        spec: json!({"process": {"args": ["sh"]}, "linux": {"netDevices": {"eth0": {}}}}),
        ..Default::default()
    };
    let e = to_pod(&r, &PodOptions::default()).unwrap_err();
    assert!(e.to_string().contains("linux.netDevices"), "{e}");
    let opts = PodOptions {
        allowed_fields: allow(&["linux.netDevices"]),
        ..Default::default()
    };
    to_pod(&r, &opts).unwrap();
}

/// Field names of runtime-spec specs-go/config.go (v1.0.0 … main) in the structs a Linux
/// spec holds. Each is a key somewhere in the schema, or lives only inside a field the schema
/// refuses whole (`OPAQUE_ONLY`).
const GO_KEYS: &str = "access action additionalGids allow ambient annotations apparmorProfile \
     architectures args blockIO bounding burst capabilities cgroupsPath checkBeforeUpdate class \
     classID closID commandLine consoleSize containerID cpu cpus createContainer createRuntime cwd \
     deadline defaultAction defaultErrnoRet destination devices disableOOMKiller domain domainname \
     effective enableCMT enableMBM enableMonitoring env errnoRet execCPUAffinity fileMode final \
     flags freebsd gid gidMappings hard hcaHandles hcaObjects height hooks hostID hostname \
     hugepageLimits idle index inheritable initial intelRdt ioPriority kernel kernelTCP \
     l3CacheSchema leafWeight limit linux listenerMetadata listenerPath major maskedPaths \
     memBwSchema memory memoryPolicy mems minor mode mountLabel mounts name names namespaces \
     nanosecs netDevices network nice noNewPrivileges nodes ociVersion oomScoreAdj op options \
     pageSize path period permitted personality pids policy poststart poststop prestart \
     priorities priority process quota rate rdma readonly readonlyPaths realtimePeriod \
     realtimeRuntime reservation resources rlimits root rootfsPropagation runtime scheduler \
     schemata seccomp secs selinuxLabel shares size soft solaris source startContainer swap \
     swappiness syscalls sysctl terminal throttleReadBpsDevice throttleReadIOPSDevice \
     throttleWriteBpsDevice throttleWriteIOPSDevice timeOffsets timeout type uid uidMappings \
     umask unified useHierarchy user username value valueTwo vm weight weightDevice width \
     windows zos";
/// Keys of `process.scheduler` and `process.ioPriority`, refused whole.
const OPAQUE_ONLY: &str = "class deadline nice policy runtime";

#[test]
fn schema_covers_every_runtime_spec_key() {
    let mut keys = std::collections::BTreeSet::new();
    fn collect(fields: &'static [Field], keys: &mut std::collections::BTreeSet<&'static str>) {
        for f in fields {
            keys.insert(f.key);
            if let Kind::Struct(fs) | Kind::Array(fs) | Kind::MapOf(fs) = f.kind {
                collect(fs, keys);
            }
        }
    }
    collect(SPEC, &mut keys);
    for k in GO_KEYS.split_whitespace() {
        assert!(
            keys.contains(k) || OPAQUE_ONLY.split_whitespace().any(|o| o == k),
            "runtime-spec key {k} is not in the schema"
        );
    }
    // No object lists a key twice (the walk would judge only the first).
    fn unique(fields: &'static [Field]) {
        for (i, f) in fields.iter().enumerate() {
            assert!(
                !fields[..i].iter().any(|g| g.key == f.key),
                "{} twice",
                f.key
            );
            if let Kind::Struct(fs) | Kind::Array(fs) | Kind::MapOf(fs) = f.kind {
                unique(fs);
            }
        }
    }
    unique(SPEC);
}

/// The "Every OCI spec field" table, as docs/mapping.md must hold it.
fn doc_table() -> String {
    let mut out =
        String::from("| Field | Class | What the gate does, and why |\n| --- | --- | --- |\n");
    for row in rows(SPEC, "") {
        let (class, why) = match row.class {
            Class::Mapped(to) => ("mapped", to),
            Class::Harmless(why) => ("harmless", why),
            Class::Refused(why) => ("refused", why),
            Class::Members => ("object", "judged member by member, below"),
        };
        let below = if row.and_below { " and below" } else { "" };
        out.push_str(&format!("| `{}`{below} | {class} | {why} |\n", row.entry));
    }
    out
}

#[test]
fn mapping_doc_lists_every_field() {
    let doc = include_str!("../../docs/mapping.md");
    let want = doc_table();
    assert!(
        doc.contains(&want),
        "docs/mapping.md \"Every OCI spec field\" must hold this table:\n{want}"
    );
}
