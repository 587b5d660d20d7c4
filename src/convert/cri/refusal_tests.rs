//! Write-back refusals: tables of changes neither call, or one call, can carry, each
//! refused naming the Pod field and leaving the request as it was; and odd values anywhere
//! in the Pod, which are refused or written, never a panic.

use serde_json::{json, Value};

use super::writeback_fixtures::{
    containers, push, remove, sandboxes, set, view_container, view_sandbox, Mutate, C0, SC,
};
use super::{container_pod, sandbox_pod, write_container, write_sandbox, WriteBackError};
use crate::config::KubeletDirs;

/// Asserts `e` refuses `field` with a fix, at `call`.
fn assert_refuses(e: &WriteBackError, field: &str, call: &str, at: &str) {
    let message = e.to_string();
    assert!(
        e.refused.iter().any(|r| r.field.starts_with(field)),
        "{at}: {message}"
    );
    assert!(
        message.contains(field) && message.contains(call),
        "{at}: {message}"
    );
    assert!(
        message.contains("make the change in the Pod spec, or set the policy to warn"),
        "{at}: {message}"
    );
}

/// Changes neither call can carry, each with the path the refusal names.
fn refused_anywhere() -> Vec<(&'static str, Mutate)> {
    vec![
        ("/spec/hostNetwork", |p| {
            set(p, "/spec/hostNetwork", json!(true))
        }),
        ("/spec/hostPID", |p| set(p, "/spec/hostPID", json!(true))),
        ("/spec/hostname", |p| {
            set(p, "/spec/hostname", json!("other"))
        }),
        ("/spec/dnsConfig", |p| {
            set(p, "/spec/dnsConfig/nameservers", json!(["1.1.1.1"]))
        }),
        ("/spec/volumes", |p| {
            push(
                p,
                "/spec/volumes",
                json!({"name": "h", "hostPath": {"path": "/"}}),
            )
        }),
        ("/metadata/annotations/portcullis.dev~1note", |p| {
            set(
                p,
                "/metadata/annotations/portcullis.dev~1note",
                json!("ours"),
            )
        }),
        ("/metadata/labels/bad", |p| {
            set(p, "/metadata/labels/bad", json!("not a label value"))
        }),
        ("/spec/securityContext/runAsNonRoot", |p| {
            set(p, "/spec/securityContext/runAsNonRoot", json!(true))
        }),
        ("/spec/securityContext/fsGroup", |p| {
            set(p, "/spec/securityContext/fsGroup", json!(2000))
        }),
        ("/spec/securityContext/supplementalGroupsPolicy", |p| {
            set(
                p,
                "/spec/securityContext/supplementalGroupsPolicy",
                json!("Strict"),
            )
        }),
        ("/spec/securityContext/seccompProfile", |p| {
            set(
                p,
                "/spec/securityContext/seccompProfile",
                json!({"type": "Unconfined"}),
            )
        }),
        ("/spec/securityContext/sysctls/1", |p| {
            let s = json!([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]);
            set(p, "/spec/securityContext/sysctls", s)
        }),
    ]
}

#[test]
fn sandbox_changes_it_cannot_carry_are_refused() {
    let mut cases = refused_anywhere();
    cases.extend::<Vec<(&str, Mutate)>>(vec![
        ("/spec/containers", |p| {
            push(p, "/spec/containers", json!({"name": "x", "image": "y"}))
        }),
        (
            "/spec/securityContext/seccompProfile/localhostProfile",
            |p| {
                let s = json!({"type": "Localhost", "localhostProfile": "profiles/a.json"});
                set(p, "/spec/securityContext/seccompProfile", s)
            },
        ),
    ]);
    for (name, original) in sandboxes() {
        let before = view_sandbox(&original);
        for (field, mutate) in &cases {
            let mut after = before.clone();
            // A writable change alongside, so the refusal must undo it too.
            set(&mut after, "/metadata/labels/extra", json!("1"));
            mutate(&mut after);
            let mut req = original.clone();
            let e = write_sandbox(&mut req, &before, &after).expect_err(field);
            assert_refuses(&e, field, "RunPodSandbox", &format!("{name}: {field}"));
            assert_eq!(req, original, "{name}: {field}");
        }
    }
}

#[test]
fn container_changes_it_cannot_carry_are_refused() {
    let mut cases = refused_anywhere();
    cases.extend::<Vec<(&str, Mutate)>>(vec![
        ("/spec/runtimeClassName", |p| {
            set(p, "/spec/runtimeClassName", json!("kata"))
        }),
        ("/spec/containers", |p| {
            push(p, "/spec/containers", json!({"name": "x", "image": "y"}))
        }),
        ("/spec/containers/0/name", |p| {
            set(p, &format!("{C0}/name"), json!("other"))
        }),
        ("/spec/containers/0/tty", |p| {
            set(p, &format!("{C0}/tty"), json!(true))
        }),
        ("/spec/containers/0/ports", |p| {
            push(p, &format!("{C0}/ports"), json!({"containerPort": 80}))
        }),
        ("/spec/containers/0/volumeMounts", |p| {
            push(
                p,
                &format!("{C0}/volumeMounts"),
                json!({"name": "h", "mountPath": "/h"}),
            )
        }),
        ("/spec/containers/0/image", |p| {
            set(p, &format!("{C0}/image"), json!(""))
        }),
        ("/spec/containers/0/env/1/valueFrom", |p| {
            push(
                p,
                &format!("{C0}/env"),
                json!({"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
            )
        }),
        ("/spec/containers/0/securityContext/procMount", |p| {
            set(p, &format!("{SC}/procMount"), json!("Unmasked"))
        }),
        ("/spec/containers/0/securityContext/runAsNonRoot", |p| {
            set(p, &format!("{SC}/runAsUser"), json!(0));
            set(p, &format!("{SC}/runAsNonRoot"), json!(true));
        }),
        ("/spec/containers/0/securityContext/capabilities/add", |p| {
            set(p, &format!("{SC}/capabilities/add"), json!(["NET ADMIN"]))
        }),
        (
            "/spec/containers/0/securityContext/seccompProfile/type",
            |p| {
                set(
                    p,
                    &format!("{SC}/seccompProfile"),
                    json!({"type": "Strict"}),
                )
            },
        ),
        ("/spec/containers/0/resources/requests/memory", |p| {
            set(p, &format!("{C0}/resources/requests/memory"), json!("64Mi"))
        }),
        ("/spec/containers/0/resources/limits/hugepages-2Mi", |p| {
            set(
                p,
                &format!("{C0}/resources/limits/hugepages-2Mi"),
                json!("2Mi"),
            )
        }),
        ("/spec/containers/0/resources/limits/memory", |p| {
            set(p, &format!("{C0}/resources/limits/memory"), json!("1500m"))
        }),
        ("/spec/containers/0/resources/limits/cpu", |p| {
            set(p, &format!("{C0}/resources/limits/cpu"), json!("5m"))
        }),
        ("/spec/containers/0/resources/requests/cpu", |p| {
            set(p, &format!("{C0}/resources/requests/cpu"), json!("2m"))
        }),
        // The Pod's profile, the container left without one: Kubernetes would apply it.
        ("/spec/securityContext/seccompProfile", |p| {
            let s =
                json!({"type": "Localhost", "localhostProfile": "/var/lib/kubelet/seccomp/z.json"});
            set(p, "/spec/securityContext/seccompProfile", s);
            remove(p, &format!("{SC}/seccompProfile"));
        }),
    ]);
    for (name, original) in containers() {
        let before = view_container(&original);
        for (field, mutate) in &cases {
            let mut after = before.clone();
            set(&mut after, &format!("{C0}/workingDir"), json!("/changed"));
            mutate(&mut after);
            let mut req = original.clone();
            let e = write_container(&mut req, &before, &after).expect_err(field);
            assert_refuses(&e, field, "CreateContainer", &format!("{name}: {field}"));
            assert_eq!(req, original, "{name}: {field}");
        }
    }
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Any value at any place of the Pod: a refusal or a request the view reads again, never a
/// panic.
#[test]
fn odd_values_anywhere_never_panic() {
    let odd = [
        json!(null),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!([1, "a"]),
        json!({"type": 7}),
    ];
    let dirs = KubeletDirs::default();
    for (_, original) in containers() {
        let before = view_container(&original);
        let mut all = Vec::new();
        pointers(&before, "", &mut all);
        for ptr in all.iter().filter(|p| !p.is_empty()) {
            for v in &odd {
                let mut after = before.clone();
                set(&mut after, ptr, v.clone());
                let mut req = original.clone();
                if write_container(&mut req, &before, &after).is_ok() {
                    let config = req.config.clone().unwrap_or_default();
                    let sandbox = req.sandbox_config.clone().unwrap_or_default();
                    container_pod(&sandbox, &config, "", &dirs)
                        .unwrap_or_else(|e| panic!("{ptr} = {v}: {e}"));
                }
            }
        }
    }
    for (_, original) in sandboxes() {
        let before = view_sandbox(&original);
        let mut all = Vec::new();
        pointers(&before, "", &mut all);
        for ptr in all.iter().filter(|p| !p.is_empty()) {
            for v in &odd {
                let mut after = before.clone();
                set(&mut after, ptr, v.clone());
                let mut req = original.clone();
                if write_sandbox(&mut req, &before, &after).is_ok() {
                    let config = req.config.clone().unwrap_or_default();
                    sandbox_pod(&config, &req.runtime_handler, &dirs)
                        .unwrap_or_else(|e| panic!("{ptr} = {v}: {e}"));
                }
            }
        }
    }
}
