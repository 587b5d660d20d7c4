//! Write-back round trips over every fixture: each writable Pod field, mutated, written back
//! and converted again; unwritable changes refused; damaged inputs never panic.

use serde_json::{json, Value};

use super::fixture_tests::{c0, opts, record, sc, strs, FIXTURES};
use super::pod::to_pod_value;
use super::writeback::{write_back, Reason};
use super::ContainerRecord;

type Mutate = fn(&mut Value);
type Check = fn(&Value, &Value, &ContainerRecord);

/// Remove `pointers` from a copy, to compare what must not have changed.
fn without(v: &Value, pointers: &[&str]) -> Value {
    let mut v = v.clone();
    for p in pointers {
        let (parent, key) = p.rsplit_once('/').unwrap();
        if let Some(Value::Object(m)) = v.pointer_mut(parent) {
            m.remove(key);
        }
    }
    v
}

fn set(pod: &mut Value, ptr: &str, value: Value) {
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    let key = unescape(key);
    let mut cur = &mut *pod;
    for seg in parent.split('/').skip(1).map(unescape) {
        let seg = seg.as_str();
        cur = match cur {
            Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            Value::Object(_) => {
                if cur.get(seg).is_none() {
                    cur[seg] = json!({});
                }
                &mut cur[seg]
            }
            _ => panic!("{ptr}"),
        };
    }
    cur[key.as_str()] = value;
}

/// (name, mutation of the Pod, check of (old pod, new pod, record), spec paths it may touch)
fn writable_cases() -> Vec<(&'static str, Mutate, Check, &'static [&'static str])> {
    vec![
        (
            "image",
            |p| {
                set(
                    p,
                    "/spec/containers/0/image",
                    json!("registry.example/app:2"),
                )
            },
            |_, n, r| {
                assert_eq!(r.image, "registry.example/app:2");
                assert_eq!(c0(n)["image"], "registry.example/app:2");
            },
            &[],
        ),
        (
            "command",
            |p| {
                set(
                    p,
                    "/spec/containers/0/command",
                    json!(["/bin/sh", "-c", "echo hi"]),
                )
            },
            |_, n, _| assert_eq!(strs(&c0(n)["command"]), ["/bin/sh", "-c", "echo hi"]),
            &["/process/args"],
        ),
        (
            "args",
            |p| set(p, "/spec/containers/0/args", json!(["--extra"])),
            |o, n, _| {
                let mut want = strs(&c0(o)["command"]);
                want.push("--extra");
                assert_eq!(strs(&c0(n)["command"]), want);
            },
            &["/process/args"],
        ),
        (
            "env",
            |p| {
                let env = p
                    .pointer_mut("/spec/containers/0/env")
                    .unwrap()
                    .as_array_mut()
                    .unwrap();
                env.push(json!({"name": "INJECTED", "value": "1"}));
            },
            |o, n, _| {
                let mut want = c0(o)["env"].as_array().unwrap().clone();
                want.push(json!({"name": "INJECTED", "value": "1"}));
                assert_eq!(c0(n)["env"], Value::Array(want));
            },
            &["/process/env"],
        ),
        (
            "workingDir",
            |p| set(p, "/spec/containers/0/workingDir", json!("/srv")),
            |_, n, _| assert_eq!(c0(n)["workingDir"], "/srv"),
            &["/process/cwd"],
        ),
        (
            "runAsUser",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/runAsUser",
                    json!(4242),
                )
            },
            |_, n, _| {
                assert_eq!(sc(n)["runAsUser"], 4242);
                assert_eq!(sc(n)["runAsNonRoot"], true);
            },
            &["/process/user/uid"],
        ),
        (
            "runAsUser+runAsNonRoot",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/runAsUser",
                    json!(1001),
                );
                set(
                    p,
                    "/spec/containers/0/securityContext/runAsNonRoot",
                    json!(true),
                );
            },
            |_, n, _| {
                assert_eq!(
                    (sc(n)["runAsUser"].clone(), sc(n)["runAsNonRoot"].clone()),
                    (json!(1001), json!(true))
                )
            },
            &["/process/user/uid"],
        ),
        (
            "runAsGroup",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/runAsGroup",
                    json!(4343),
                )
            },
            |o, n, _| {
                assert_eq!(sc(n)["runAsGroup"], 4343);
                // The old primary gid does not linger as a supplementary group.
                assert_eq!(
                    n["spec"]["securityContext"]["supplementalGroups"],
                    o["spec"]["securityContext"]["supplementalGroups"]
                );
            },
            &["/process/user/gid", "/process/user/additionalGids"],
        ),
        (
            "supplementalGroups",
            |p| set(p, "/spec/securityContext/supplementalGroups", json!([5, 6])),
            |_, n, _| {
                assert_eq!(
                    n["spec"]["securityContext"]["supplementalGroups"],
                    json!([5, 6])
                )
            },
            &["/process/user/additionalGids"],
        ),
        (
            "capabilities drop ALL",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/capabilities",
                    json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
                )
            },
            |_, n, r| {
                assert_eq!(
                    sc(n)["capabilities"],
                    json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]})
                );
                let caps = &r.spec["process"]["capabilities"];
                assert_eq!(caps["bounding"], json!(["CAP_NET_BIND_SERVICE"]));
                // Capabilities were all `--privileged` gave before host power counted; the
                // --privileged fixtures keep their devices and writable sysfs, and say so.
                let host_power = n["metadata"]["annotations"]
                    .get("portcullis.dev/privileged-reasons")
                    .is_some();
                assert_eq!(sc(n)["privileged"], host_power);
            },
            &["/process/capabilities"],
        ),
        (
            "capabilities add",
            |p| {
                let caps = p
                    .pointer_mut("/spec/containers/0/securityContext/capabilities")
                    .unwrap();
                let add = caps
                    .as_object_mut()
                    .unwrap()
                    .entry("add")
                    .or_insert(json!([]));
                add.as_array_mut().unwrap().push(json!("SYS_PTRACE"));
            },
            |o, n, _| {
                assert!(strs(&sc(n)["capabilities"]["add"]).contains(&"SYS_PTRACE"));
                assert_eq!(sc(n)["capabilities"]["drop"], sc(o)["capabilities"]["drop"]);
            },
            &["/process/capabilities"],
        ),
        (
            "allowPrivilegeEscalation",
            |p| {
                let v = sc(p)["allowPrivilegeEscalation"].as_bool().unwrap();
                set(
                    p,
                    "/spec/containers/0/securityContext/allowPrivilegeEscalation",
                    json!(!v),
                );
            },
            |o, n, r| {
                let was = sc(o)["allowPrivilegeEscalation"].as_bool().unwrap();
                assert_eq!(sc(n)["allowPrivilegeEscalation"], !was);
                assert_eq!(r.spec["process"]["noNewPrivileges"], was);
            },
            &["/process/noNewPrivileges"],
        ),
        (
            "readOnlyRootFilesystem",
            |p| {
                let v = sc(p)["readOnlyRootFilesystem"].as_bool().unwrap();
                set(
                    p,
                    "/spec/containers/0/securityContext/readOnlyRootFilesystem",
                    json!(!v),
                );
            },
            |o, n, _| {
                assert_eq!(
                    sc(n)["readOnlyRootFilesystem"],
                    !sc(o)["readOnlyRootFilesystem"].as_bool().unwrap()
                )
            },
            &["/root/readonly"],
        ),
        (
            "runtimeClassName",
            |p| set(p, "/spec/runtimeClassName", json!("kata")),
            |_, n, r| {
                assert_eq!(r.runtime, "io.containerd.kata.v2");
                assert_eq!(n["spec"]["runtimeClassName"], "kata");
            },
            &[],
        ),
        (
            "label added",
            |p| set(p, "/metadata/labels/example.com~1injected", json!("yes")),
            |_, n, r| {
                assert_eq!(r.labels["example.com/injected"], "yes");
                assert_eq!(n["metadata"]["labels"]["example.com/injected"], "yes");
            },
            &[],
        ),
        (
            "annotation added",
            |p| {
                set(
                    p,
                    "/metadata/annotations/example.com~1note",
                    json!("checked"),
                )
            },
            |_, n, r| {
                assert_eq!(r.labels["example.com/note"], "checked");
                assert_eq!(n["metadata"]["annotations"]["example.com/note"], "checked");
            },
            &[],
        ),
        (
            "memory limit",
            |p| {
                set(
                    p,
                    "/spec/containers/0/resources/limits/memory",
                    json!("128Mi"),
                )
            },
            |_, n, r| {
                assert_eq!(c0(n)["resources"]["limits"]["memory"], "134217728");
                assert_eq!(r.spec["linux"]["resources"]["memory"]["limit"], 134217728);
            },
            &["/linux/resources/memory"],
        ),
        (
            "cpu limit",
            |p| set(p, "/spec/containers/0/resources/limits/cpu", json!("250m")),
            |_, n, _| assert_eq!(c0(n)["resources"]["limits"]["cpu"], "250m"),
            &["/linux/resources/cpu"],
        ),
    ]
}

#[test]
fn every_writable_field_round_trips_on_every_fixture() {
    let opts = opts();
    for name in FIXTURES {
        let original = record(name);
        let before = to_pod_value(&original, &opts).unwrap();
        for (case, mutate, check, touched) in writable_cases() {
            let mut after = before.clone();
            mutate(&mut after);
            let mut r = original.clone();
            let written = write_back(&mut r, &before, &after, &opts)
                .unwrap_or_else(|e| panic!("{name} {case}: {e}"));
            assert!(!written.is_empty(), "{name} {case}");
            let again = to_pod_value(&r, &opts).unwrap_or_else(|e| panic!("{name} {case}: {e}"));
            check(&before, &again, &r);
            assert_eq!(
                without(&r.spec, touched),
                without(&original.spec, touched),
                "{name} {case}: other spec fields changed"
            );
        }
    }
}

#[test]
fn no_change_writes_nothing() {
    for name in FIXTURES {
        let mut r = record(name);
        let before = to_pod_value(&r, &opts()).unwrap();
        assert_eq!(
            write_back(&mut r, &before, &before.clone(), &opts()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(r, record(name), "{name}");
    }
}

#[test]
fn spec_annotations_are_written_to_the_spec() {
    let mut r = record("podman/annot");
    let before = to_pod_value(&r, &opts()).unwrap();
    let mut after = before.clone();
    set(
        &mut after,
        "/metadata/annotations/io.portcullis.test",
        json!("no"),
    );
    after["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("io.podman.annotations.init");
    let written = write_back(&mut r, &before, &after, &opts()).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(r.spec["annotations"]["io.portcullis.test"], "no");
    assert!(r.spec["annotations"]
        .get("io.podman.annotations.init")
        .is_none());
    assert!(r.labels.is_empty());
}

#[test]
fn labels_can_be_removed() {
    let mut r = record("ctr/runtime");
    let before = to_pod_value(&r, &opts()).unwrap();
    let mut after = before.clone();
    after["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("team");
    let written = write_back(&mut r, &before, &after, &opts()).unwrap();
    assert_eq!(written, ["/metadata/labels/team"]);
    assert!(!r.labels.contains_key("team"));
    assert_eq!(
        r.spec,
        record("ctr/runtime").spec,
        "the spec annotation `team` stays"
    );
}

#[test]
fn env_valueless_vars_keep_their_form() {
    let mut r = record("ctr/plain");
    r.spec["process"]["env"] = json!(["PATH=/bin", "BARE"]);
    let original = r.clone();
    let before = to_pod_value(&r, &opts()).unwrap();
    let mut after = before.clone();
    after["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "NEW"}));
    write_back(&mut r, &before, &after, &opts()).unwrap();
    assert_eq!(
        r.spec["process"]["env"],
        json!(["PATH=/bin", "BARE", "NEW="])
    );
    assert_eq!(
        without(&r.spec, &["/process/env"]),
        without(&original.spec, &["/process/env"])
    );
}

#[test]
fn non_root_capability_change_grants_no_effective_capabilities() {
    // docker --user 1000: only a bounding set; adding a capability must not create one.
    let mut r = record("docker/user");
    let before = to_pod_value(&r, &opts()).unwrap();
    let mut after = before.clone();
    set(
        &mut after,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["NET_ADMIN"]),
    );
    write_back(&mut r, &before, &after, &opts()).unwrap();
    let caps = r.spec["process"]["capabilities"].as_object().unwrap();
    assert_eq!(caps.keys().collect::<Vec<_>>(), ["bounding"]);
    assert!(strs(&caps["bounding"]).contains(&"CAP_NET_ADMIN"));
}

#[test]
fn unwritable_changes_are_refused_and_leave_the_record_alone() {
    let cases: Vec<(&str, Mutate)> = vec![
        ("/spec/containers/0/securityContext/privileged", |p| {
            set(
                p,
                "/spec/containers/0/securityContext/privileged",
                json!(true),
            )
        }),
        ("/spec/hostNetwork", |p| {
            set(p, "/spec/hostNetwork", json!(true))
        }),
        ("/spec/volumes", |p| {
            let spec = p["spec"].as_object_mut().unwrap();
            let vols = spec.entry("volumes").or_insert(json!([]));
            vols.as_array_mut()
                .unwrap()
                .push(json!({"name": "x", "hostPath": {"path": "/"}}));
        }),
        (
            "/spec/containers/0/securityContext/seLinuxOptions/type",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/seLinuxOptions",
                    json!({"type": "spc_t"}),
                )
            },
        ),
        ("/metadata/name", |p| {
            set(p, "/metadata/name", json!("other"))
        }),
        ("/metadata/namespace", |p| {
            set(p, "/metadata/namespace", json!("kube-system"))
        }),
        ("/spec/containers", |p| {
            let c = p["spec"]["containers"][0].clone();
            p["spec"]["containers"].as_array_mut().unwrap().push(c);
        }),
        ("/metadata/annotations/portcullis.dev~1runtime", |p| {
            set(
                p,
                "/metadata/annotations/portcullis.dev~1runtime",
                json!("io.containerd.kata.v2"),
            )
        }),
        ("/spec/containers/0/resources/requests/cpu", |p| {
            set(p, "/spec/containers/0/resources/requests/cpu", json!("1"))
        }),
        ("/spec/runtimeClassName", |p| {
            set(p, "/spec/runtimeClassName", json!("gvisor"))
        }),
        ("/spec/containers/0/env/0/valueFrom", |p| {
            p["spec"]["containers"][0]["env"][0]["valueFrom"] =
                json!({"secretKeyRef": {"name": "s", "key": "k"}})
        }),
        (
            "/spec/containers/0/securityContext/seccompProfile/type",
            |p| {
                set(
                    p,
                    "/spec/containers/0/securityContext/seccompProfile/type",
                    json!("Localhost"),
                )
            },
        ),
        ("/spec/containers/0/securityContext/runAsNonRoot", |p| {
            set(
                p,
                "/spec/containers/0/securityContext/runAsNonRoot",
                json!(true),
            )
        }),
        ("/metadata/labels/bad", |p| {
            set(p, "/metadata/labels/bad", json!("not a label value"))
        }),
    ];
    for name in ["docker/plain", "ctr/runtime", "podman/annot"] {
        let original = record(name);
        let before = to_pod_value(&original, &opts()).unwrap();
        for (field, mutate) in &cases {
            let mut after = before.clone();
            // A writable change alongside, so a refusal must also undo it.
            set(&mut after, "/spec/containers/0/image", json!("changed:1"));
            mutate(&mut after);
            let mut r = original.clone();
            let e = write_back(&mut r, &before, &after, &opts())
                .expect_err(&format!("{name}: {field}"));
            assert_eq!(e.field, *field, "{name}: {e}");
            assert!(e.to_string().contains(field), "{e}");
            assert!(
                e.to_string()
                    .contains("cannot be written back into a containerd container"),
                "{e}"
            );
            assert!(e.to_string().contains("refused"), "{e}");
            assert_eq!(r, original, "{name}: {field}");
        }
    }
    let original = record("docker/plain");
    let before = to_pod_value(&original, &opts()).unwrap();
    let mut after = before.clone();
    set(&mut after, "/spec/runtimeClassName", json!("gvisor"));
    let e = write_back(&mut original.clone(), &before, &after, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::UnknownRuntimeClass("gvisor".into()));
    assert!(e.to_string().contains("proxy.runtimeClasses"), "{e}");
}

#[test]
fn empty_objects_added_by_webhooks_are_no_change() {
    let mut r = record("docker/plain");
    let before = to_pod_value(&r, &opts()).unwrap();
    let mut after = before.clone();
    set(&mut after, "/spec/containers/0/resources", json!({}));
    set(&mut after, "/spec/containers/0/args", json!([]));
    set(
        &mut after,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(null),
    );
    assert!(write_back(&mut r, &before, &after, &opts())
        .unwrap()
        .is_empty());
    assert_eq!(r, record("docker/plain"));
}

// ---- robustness: nothing panics on any input ----------------------------------------------

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            pointers(
                c,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!(""),
        json!("x=y"),
        json!("/"),
        json!(true),
        json!([]),
        json!([null, 1, "a"]),
        json!({}),
        json!({"type": "a", "path": 3}),
    ]
}

#[test]
fn damaged_specs_and_mutations_never_panic() {
    // A fixed-seed LCG keeps the run reproducible without a dependency.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % n.max(1)
    };
    let odd = odd_values();
    for name in FIXTURES {
        let original = record(name);
        let mut spec_ptrs = Vec::new();
        pointers(&original.spec, String::new(), &mut spec_ptrs);
        let before = to_pod_value(&original, &opts()).unwrap();
        let mut pod_ptrs = Vec::new();
        pointers(&before, String::new(), &mut pod_ptrs);
        for _ in 0..150 {
            let mut r = original.clone();
            if let Some(slot) = r.spec.pointer_mut(&spec_ptrs[next(spec_ptrs.len())]) {
                *slot = odd[next(odd.len())].clone();
            }
            let _ = to_pod_value(&r, &opts());

            let mut after = before.clone();
            if let Some(slot) = after.pointer_mut(&pod_ptrs[next(pod_ptrs.len())]) {
                *slot = odd[next(odd.len())].clone();
            }
            let mut r = original.clone();
            if write_back(&mut r, &before, &after, &opts()).is_err() {
                assert_eq!(
                    r, original,
                    "{name}: a refused write-back changed the record"
                );
            } else {
                let _ = to_pod_value(&r, &opts());
            }
        }
    }
}
