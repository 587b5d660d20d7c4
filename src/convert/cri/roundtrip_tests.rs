//! Write-back round trips: for kubelet-like requests and a table of Pod mutations, the
//! written request read again is the mutated Pod (`view(write(req, before → after)) ==
//! after`), and writing no change leaves the request as it was.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::writeback_fixtures::{
    containers, push, remove, sandboxes, set, toggle, view_container, view_sandbox, Mutate, C0, SC,
};
use super::{write_container, write_sandbox};

/// Changes to labels, annotations and `spec.securityContext`: both calls carry them.
fn pod_cases() -> Vec<(&'static str, Mutate)> {
    vec![
        ("label added", |p| {
            set(p, "/metadata/labels/example.com~1team", json!("payments"))
        }),
        ("label removed", |p| remove(p, "/metadata/labels/app")),
        ("annotation added", |p| {
            set(
                p,
                "/metadata/annotations/example.com~1note",
                json!("checked"),
            )
        }),
        ("annotation removed", |p| {
            remove(p, "/metadata/annotations/kubernetes.io~1config.source")
        }),
        ("supplementalGroups", |p| {
            set(
                p,
                "/spec/securityContext/supplementalGroups",
                json!([1000, 2000]),
            )
        }),
        ("sysctls", |p| {
            let s = json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]);
            set(p, "/spec/securityContext/sysctls", s)
        }),
        ("sysctls removed", |p| {
            remove(p, "/spec/securityContext/sysctls")
        }),
    ]
}

/// Changes to `spec.securityContext` fields a container has its own of: at
/// CreateContainer the table sets the container's too.
fn pod_security_cases() -> Vec<(&'static str, Mutate)> {
    vec![
        ("pod runAsUser", |p| {
            set(p, "/spec/securityContext/runAsUser", json!(5000))
        }),
        ("pod runAsGroup", |p| {
            set(p, "/spec/securityContext/runAsGroup", json!(6000))
        }),
        ("pod seccomp Localhost", |p| {
            let s =
                json!({"type": "Localhost", "localhostProfile": "/var/lib/kubelet/seccomp/b.json"});
            set(p, "/spec/securityContext/seccompProfile", s)
        }),
        ("pod seccomp removed", |p| {
            remove(p, "/spec/securityContext/seccompProfile")
        }),
        ("pod appArmor Unconfined", |p| {
            set(
                p,
                "/spec/securityContext/appArmorProfile",
                json!({"type": "Unconfined"}),
            )
        }),
        ("pod seLinuxOptions", |p| {
            let s = json!({"type": "container_t", "level": "s0:c3,c4"});
            set(p, "/spec/securityContext/seLinuxOptions", s)
        }),
    ]
}

fn sandbox_cases() -> Vec<(&'static str, Mutate)> {
    let mut cases: Vec<(&'static str, Mutate)> = vec![
        ("runtime class", |p| {
            set(p, "/spec/runtimeClassName", json!("gvisor"))
        }),
        ("runtime class removed", |p| {
            remove(p, "/spec/runtimeClassName")
        }),
        ("pod runAsUser removed", |p| {
            remove(p, "/spec/securityContext/runAsUser")
        }),
        ("pod seccomp RuntimeDefault", |p| {
            let s = json!({"type": "RuntimeDefault"});
            set(p, "/spec/securityContext/seccompProfile", s)
        }),
        ("pod appArmor removed", |p| {
            remove(p, "/spec/securityContext/appArmorProfile")
        }),
        ("pod seLinuxOptions removed", |p| {
            remove(p, "/spec/securityContext/seLinuxOptions")
        }),
    ];
    cases.extend(pod_cases());
    cases.extend(pod_security_cases());
    cases
}

#[test]
fn every_sandbox_change_reads_back_as_the_mutated_pod() {
    let mut wrote = BTreeSet::new();
    for (name, original) in sandboxes() {
        let before = view_sandbox(&original);
        for (case, mutate) in sandbox_cases() {
            let mut after = before.clone();
            mutate(&mut after);
            let mut req = original.clone();
            write_sandbox(&mut req, &before, &after)
                .unwrap_or_else(|e| panic!("{name}: {case}: {e}"));
            assert_eq!(view_sandbox(&req), after, "{name}: {case}");
            if req != original {
                wrote.insert(case);
            }
        }
    }
    assert_every_case_wrote(sandbox_cases(), &wrote);
}

/// Each case changed some request: none is a no-op on every fixture.
fn assert_every_case_wrote(cases: Vec<(&'static str, Mutate)>, wrote: &BTreeSet<&str>) {
    for (case, _) in cases {
        assert!(wrote.contains(case), "{case} wrote nothing on any request");
    }
}

/// The container's own fields.
fn container_cases() -> Vec<(&'static str, Mutate)> {
    vec![
        ("image", |p| {
            set(p, &format!("{C0}/image"), json!("registry.example/app:2"))
        }),
        ("command", |p| {
            set(
                p,
                &format!("{C0}/command"),
                json!(["/bin/sh", "-c", "true"]),
            )
        }),
        ("args", |p| set(p, &format!("{C0}/args"), json!(["--flag"]))),
        ("args removed", |p| remove(p, &format!("{C0}/args"))),
        ("env added", |p| {
            push(
                p,
                &format!("{C0}/env"),
                json!({"name": "GREETING", "value": "hi"}),
            )
        }),
        ("env removed", |p| remove(p, &format!("{C0}/env"))),
        ("workingDir", |p| {
            set(p, &format!("{C0}/workingDir"), json!("/srv"))
        }),
        ("privileged toggled", |p| {
            toggle(p, &format!("{SC}/privileged"), false)
        }),
        ("capability added", |p| {
            let at = format!("{SC}/capabilities/add");
            push(p, &at, json!("NET_ADMIN"));
            let mut add: Vec<String> =
                serde_json::from_value(p.pointer(&at).unwrap().clone()).unwrap();
            add.sort();
            set(p, &at, json!(add));
        }),
        ("drop ALL", |p| {
            set(p, &format!("{SC}/capabilities/drop"), json!(["ALL"]))
        }),
        ("capabilities cleared", |p| {
            set(p, &format!("{SC}/capabilities"), json!({}))
        }),
        ("readOnlyRootFilesystem toggled", |p| {
            toggle(p, &format!("{SC}/readOnlyRootFilesystem"), false)
        }),
        ("allowPrivilegeEscalation toggled", |p| {
            toggle(p, &format!("{SC}/allowPrivilegeEscalation"), true)
        }),
        ("runAsUser 2000", |p| {
            set(p, &format!("{SC}/runAsUser"), json!(2000));
            set(p, &format!("{SC}/runAsNonRoot"), json!(true));
        }),
        ("runAsUser 0", |p| {
            set(p, &format!("{SC}/runAsUser"), json!(0));
            set(p, &format!("{SC}/runAsNonRoot"), json!(false));
        }),
        ("runAsUser removed", |p| {
            remove(p, &format!("{SC}/runAsUser"));
            remove(p, &format!("{SC}/runAsNonRoot"));
        }),
        ("runAsGroup", |p| {
            set(p, &format!("{SC}/runAsGroup"), json!(4000))
        }),
        ("seccomp RuntimeDefault", |p| {
            set(
                p,
                &format!("{SC}/seccompProfile"),
                json!({"type": "RuntimeDefault"}),
            )
        }),
        ("seccomp Localhost", |p| {
            let s =
                json!({"type": "Localhost", "localhostProfile": "/var/lib/kubelet/seccomp/c.json"});
            set(p, &format!("{SC}/seccompProfile"), s)
        }),
        ("seccomp removed", |p| {
            remove(p, &format!("{SC}/seccompProfile"))
        }),
        ("appArmor Localhost", |p| {
            let a = json!({"type": "Localhost", "localhostProfile": "k8s-other"});
            set(p, &format!("{SC}/appArmorProfile"), a)
        }),
        ("appArmor removed", |p| {
            remove(p, &format!("{SC}/appArmorProfile"))
        }),
        ("seLinuxOptions", |p| {
            set(
                p,
                &format!("{SC}/seLinuxOptions"),
                json!({"user": "system_u", "level": "s0"}),
            )
        }),
        ("seLinuxOptions removed", |p| {
            remove(p, &format!("{SC}/seLinuxOptions"))
        }),
        ("limits.cpu 750m", |p| {
            set(p, &format!("{C0}/resources/limits/cpu"), json!("750m"))
        }),
        ("limits.cpu 2", |p| {
            set(p, &format!("{C0}/resources/limits/cpu"), json!("2"))
        }),
        ("limits.cpu removed", |p| {
            remove(p, &format!("{C0}/resources/limits/cpu"))
        }),
        ("limits.memory", |p| {
            set(
                p,
                &format!("{C0}/resources/limits/memory"),
                json!("134217728"),
            )
        }),
        ("limits.memory removed", |p| {
            remove(p, &format!("{C0}/resources/limits/memory"))
        }),
        ("requests.cpu 100m", |p| {
            set(p, &format!("{C0}/resources/requests/cpu"), json!("100m"))
        }),
        ("requests.cpu 3m", |p| {
            set(p, &format!("{C0}/resources/requests/cpu"), json!("3m"))
        }),
        ("requests.cpu removed", |p| {
            remove(p, &format!("{C0}/resources/requests/cpu"))
        }),
        ("resources removed", |p| {
            remove(p, &format!("{C0}/resources"))
        }),
    ]
}

/// The Pod-level security fields with the container's set alike, as Kubernetes would
/// apply them.
fn inherited_cases() -> Vec<(&'static str, Mutate)> {
    pod_security_cases()
        .into_iter()
        .filter(|(case, _)| !case.ends_with("removed"))
        .collect()
}

/// The container's field that a Pod-level one applies to.
fn own(pod_ptr: &str) -> String {
    pod_ptr.replace("/spec/securityContext", SC)
}

#[test]
fn every_container_change_reads_back_as_the_mutated_pod() {
    let mut cases = container_cases();
    cases.extend(pod_cases());
    cases.extend(
        pod_security_cases()
            .into_iter()
            .filter(|(c, _)| c.ends_with("removed")),
    );
    let mut wrote = BTreeSet::new();
    for (name, original) in containers() {
        let before = view_container(&original);
        let run = |case: &'static str, after: Value, wrote: &mut BTreeSet<&str>| {
            let mut req = original.clone();
            write_container(&mut req, &before, &after)
                .unwrap_or_else(|e| panic!("{name}: {case}: {e}"));
            let mut expected = after.clone();
            let image = &after["spec"]["containers"][0]["image"];
            if *image != before["spec"]["containers"][0]["image"] {
                // The name the Pod asks for is the policy's (`user_specified_image`).
                set(
                    &mut expected,
                    "/metadata/annotations/portcullis.dev~1user-specified-image",
                    image.clone(),
                );
            }
            assert_eq!(view_container(&req), expected, "{name}: {case}");
            if req != original {
                wrote.insert(case);
            }
        };
        for (case, mutate) in &cases {
            let mut after = before.clone();
            mutate(&mut after);
            run(case, after, &mut wrote);
        }
        for (case, mutate) in inherited_cases() {
            let mut after = before.clone();
            mutate(&mut after);
            for field in [
                "runAsUser",
                "runAsGroup",
                "seccompProfile",
                "appArmorProfile",
                "seLinuxOptions",
            ] {
                let pod = format!("/spec/securityContext/{field}");
                if let Some(v) = after.pointer(&pod).cloned() {
                    set(&mut after, &own(&pod), v);
                }
            }
            if after.pointer(&format!("{SC}/runAsUser")).is_some() {
                set(&mut after, &format!("{SC}/runAsNonRoot"), json!(true));
            }
            run(case, after, &mut wrote);
        }
    }
    cases.extend(inherited_cases());
    assert_every_case_wrote(cases, &wrote);
}

#[test]
fn no_change_writes_nothing() {
    for (name, original) in sandboxes() {
        let before = view_sandbox(&original);
        let mut req = original.clone();
        write_sandbox(&mut req, &before, &before).unwrap();
        assert_eq!(req, original, "{name}");
    }
    for (name, original) in containers() {
        let before = view_container(&original);
        let mut req = original.clone();
        write_container(&mut req, &before, &before).unwrap();
        assert_eq!(req, original, "{name}");
    }
}
