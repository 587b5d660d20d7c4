//! Unit tests of `write_back` on small hand-made specs.

use super::pod::to_pod_value;
use super::writeback::{write_back, WriteBackError};
use super::{ContainerRecord, PodOptions};
use serde_json::json;
use serde_json::Value;

fn record(spec: Value) -> ContainerRecord {
    ContainerRecord {
        namespace: "default".into(),
        id: "c1".into(),
        spec,
        ..Default::default()
    }
}

fn mutate(
    r: &mut ContainerRecord,
    f: impl FnOnce(&mut Value),
) -> Result<Vec<String>, WriteBackError> {
    let opts = PodOptions::default();
    let before = to_pod_value(r, &opts).unwrap();
    let mut after = before.clone();
    f(&mut after);
    write_back(r, &before, &after, &opts)
}

/// A spec without `process.capabilities` runs with none (runc 1.1.5: CapBnd 0). This test
/// used to expect every capability but NET_RAW (40) written into it: the view then claimed
/// "no capabilities = all of them". Now the view is `drop: [ALL]`, and no drop list, however
/// rewritten, grants what the container did not have.
#[test]
fn spec_without_capabilities_gains_none_from_a_drop() {
    for drop in [json!(["NET_RAW"]), json!(["ALL", "NET_RAW"]), json!([])] {
        let mut r = record(json!({"process": {"args": ["sh"]}}));
        mutate(&mut r, |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = drop.clone();
        })
        .unwrap();
        let caps = &r.spec["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(caps[set], json!([]), "{drop} {set}");
        }
        assert!(caps.get("inheritable").is_none());
    }
    // Granting takes `add`.
    let mut r = record(json!({"process": {"args": ["sh"]}}));
    mutate(&mut r, |p| {
        p["spec"]["containers"][0]["securityContext"]["capabilities"] =
            json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]});
    })
    .unwrap();
    assert_eq!(
        r.spec["process"]["capabilities"]["bounding"],
        json!(["CAP_NET_BIND_SERVICE"])
    );
}

#[test]
fn dropped_capabilities_leave_every_set() {
    let mut r = record(json!({"process": {"capabilities": {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_FOWNER",
                     "CAP_FSETID", "CAP_MKNOD", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                     "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_DAC_OVERRIDE"],
        "ambient": ["CAP_NET_RAW", "CAP_KILL"]}}}));
    mutate(&mut r, |p| {
        p["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = json!(["NET_RAW"]);
    })
    .unwrap();
    assert_eq!(
        r.spec["process"]["capabilities"]["ambient"],
        json!(["CAP_KILL"])
    );
}

#[test]
fn cpu_keeps_the_period() {
    let mut r = record(json!({"linux": {"resources": {"cpu": {"period": 50000, "shares": 2}}}}));
    mutate(&mut r, |p| {
        p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}})
    })
    .unwrap();
    assert_eq!(
        r.spec["linux"]["resources"]["cpu"],
        json!({"period": 50000, "shares": 2, "quota": 50000})
    );
    mutate(&mut r, |p| {
        p["spec"]["containers"][0]["resources"]["limits"]
            .as_object_mut()
            .unwrap()
            .remove("cpu");
    })
    .unwrap();
    assert_eq!(
        r.spec["linux"]["resources"]["cpu"],
        json!({"period": 50000, "shares": 2})
    );
}

#[test]
fn args_without_command_are_refused() {
    let mut r = record(json!({"process": {"args": ["sleep", "1"]}}));
    let e = mutate(&mut r, |p| {
        p["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("command");
        p["spec"]["containers"][0]["args"] = json!(["5"]);
    })
    .unwrap_err();
    assert_eq!(e.field, "/spec/containers/0/command");
    assert!(e.to_string().contains("entrypoint"), "{e}");
    assert_eq!(r.spec["process"]["args"], json!(["sleep", "1"]));
}

#[test]
fn label_and_annotation_must_agree() {
    let mut r = record(json!({}));
    let e = mutate(&mut r, |p| {
        p["metadata"]["labels"] = json!({"team": "a"});
        p["metadata"]["annotations"]["team"] = json!("b");
    })
    .unwrap_err();
    assert_eq!(e.field, "/metadata/annotations/team");
    let written = mutate(&mut r, |p| {
        p["metadata"]["labels"] = json!({"team": "a"});
        p["metadata"]["annotations"]["team"] = json!("a");
    })
    .unwrap();
    assert_eq!(
        written,
        ["/metadata/labels/team", "/metadata/annotations/team"]
    );
    assert_eq!(r.labels["team"], "a");
}

#[test]
fn hostile_mutations_are_errors_not_panics() {
    let muts: Vec<fn(&mut Value)> = vec![
        |p| *p = json!([]),
        |p| p["spec"] = json!("x"),
        |p| p["spec"]["containers"] = json!({"0": {}}),
        |p| p["spec"]["containers"][0] = json!(7),
        |p| p["spec"]["containers"][0]["env"] = json!([1, {"name": 2}, {"value": "x"}]),
        |p| p["spec"]["containers"][0]["env"] = json!([{"name": "A=B", "value": "x"}]),
        |p| p["spec"]["containers"][0]["command"] = json!("sh"),
        |p| p["spec"]["containers"][0]["command"] = json!([1]),
        |p| p["spec"]["containers"][0]["workingDir"] = json!("relative"),
        |p| p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(-1),
        |p| p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(1e3),
        |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!(["NET ADMIN"])
        },
        |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!("NET_ADMIN")
        },
        |p| p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!("no"),
        |p| p["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "-5Mi"}}),
        |p| p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "9e40"}}),
        |p| p["spec"]["securityContext"] = json!({"supplementalGroups": [-1]}),
        |p| p["metadata"]["labels"] = json!("x"),
        |p| p["metadata"]["annotations"]["k"] = json!(1),
        |p| p["spec"]["runtimeClassName"] = json!(5),
    ];
    for (i, m) in muts.into_iter().enumerate() {
        let mut r = record(
            json!({"process": {"args": ["sh"], "user": {"uid": 0, "gid": 0}}, "root": {"path": "rootfs"}}),
        );
        let original = r.clone();
        assert!(mutate(&mut r, m).is_err(), "mutation {i} should be refused");
        assert_eq!(r, original, "mutation {i}");
    }
}

#[test]
fn read_only_root_needs_a_root() {
    let mut r = record(json!({}));
    let e = mutate(&mut r, |p| {
        p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(true);
    })
    .unwrap_err();
    assert!(e.to_string().contains("`root`"), "{e}");
}
