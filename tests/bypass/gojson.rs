//! §2 Go-JSON: containerd reads the spec with Go's `encoding/json`, which matches keys
//! case-insensitively (with Unicode folding: `ſ` is `s`, `K` is `k`), lets the last of
//! duplicate keys win (merging into the struct decoded so far) and ignores nothing it can
//! match. A gate that reads the same bytes another way judges a different spec than the one
//! that runs. These specs are hand-written bytes: `ctr` re-marshals, so they go through
//! `Containers/Create` as they are.

use serde_json::{json, Value};

use super::kit::{all_caps, proc_status, with_members, written, Corpus, Gate};
use crate::common::unique;

const NS: &str = "default";

/// A process as `ctr run --privileged` has it, uid 0 (every capability the host has).
fn privileged_process(benign: &Value) -> Value {
    let mut p = benign.clone();
    p["user"] = json!({"uid": 0, "gid": 0});
    p["capabilities"] = all_caps();
    p["noNewPrivileges"] = json!(false);
    p
}

/// `spec` as text, with `key` removed and `members` appended in its place.
fn replaced(spec: &Value, key: &str, members: &[(&str, String)]) -> String {
    let mut s = spec.clone();
    s.as_object_mut().unwrap().remove(key);
    with_members(&s, members)
}

#[test]
fn go_json_process_keys_the_gate_reads_differently() {
    let g = Gate::new("");
    let mut c = Corpus::new("Go-JSON process");
    let cases: [(&str, &str); 4] = [
        ("benign process, then \"PROCESS\" privileged", "PROCESS"),
        (
            "benign process, then a duplicate \"process\" privileged",
            "process",
        ),
        ("benign process, then \"Process\" privileged", "Process"),
        (
            "benign process, then \"proce\u{17f}s\" (long s folds to s) privileged",
            "proce\u{17f}s",
        ),
    ];
    for (case, key) in cases {
        let id = unique("c");
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let evil = privileged_process(&spec["process"]).to_string();
        let text = with_members(&spec, &[(key, evil)]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        if let Some(pid) = g.task_pid(NS, &id) {
            let eff = proc_status(pid, "CapEff");
            let uid = proc_status(pid, "Uid");
            effects.push((
                format!("the task runs with CapEff {eff}, Uid {uid}"),
                eff == proc_status(std::process::id(), "CapBnd"),
            ));
        }
        c.refused(case, &result, &["process", "duplicate", "key"], effects);
    }
    // A privileged "process", then a benign duplicate without "capabilities": Go merges the
    // second into the first, so the first's capabilities stay; a reader that keeps the last
    // sees a process without capabilities (none, at runc).
    let id = unique("c");
    let spec = g.spec(NS, &id, &["sleep", "300"]);
    let evil = privileged_process(&spec["process"]).to_string();
    let mut benign = spec["process"].clone();
    benign.as_object_mut().unwrap().remove("capabilities");
    let text = replaced(
        &spec,
        "process",
        &[("process", evil), ("process", benign.to_string())],
    );
    let result = g.attempt(NS, &id, text.as_bytes());
    let mut effects = g.effects(NS, &id);
    if let Some(pid) = g.task_pid(NS, &id) {
        let eff = proc_status(pid, "CapEff");
        effects.push((
            format!("the task runs with CapEff {eff}"),
            eff == proc_status(std::process::id(), "CapBnd"),
        ));
    }
    c.refused(
        "privileged process, then a duplicate process without capabilities (Go merges)",
        &result,
        &["process", "duplicate", "key"],
        effects,
    );
    c.finish(&g.w);
}

#[test]
fn go_json_linux_and_mounts_keys_the_gate_reads_differently() {
    let g = Gate::new("");
    let mut c = Corpus::new("Go-JSON linux, mounts, hooks, root");
    let hostdir = g.host_dir("gojson-root");

    // "Namespaces" after "namespaces", without the network namespace: the host's network.
    {
        let id = unique("c");
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let without_net: Vec<Value> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect();
        let linux = with_members(
            &spec["linux"],
            &[("Namespaces", json!(without_net).to_string())],
        );
        let text = replaced(&spec, "linux", &[("linux", linux)]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        if let Some(pid) = g.task_pid(NS, &id) {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            let ours = std::fs::read_link("/proc/self/ns/net").ok();
            effects.push((
                "the task is in the host's network namespace".into(),
                theirs == ours,
            ));
        }
        c.refused(
            "linux.\"Namespaces\" without network after linux.namespaces",
            &result,
            &["namespaces", "duplicate", "key"],
            effects,
        );
    }

    // "Seccomp": null after the runtime-default profile: no seccomp at all.
    for key in ["Seccomp", "seccomp"] {
        let id = unique("c");
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let linux = with_members(&spec["linux"], &[(key, "null".into())]);
        let text = replaced(&spec, "linux", &[("linux", linux)]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        if let Some(pid) = g.task_pid(NS, &id) {
            let mode = proc_status(pid, "Seccomp");
            effects.push((
                format!("the task runs with Seccomp mode {mode}"),
                mode == "0",
            ));
        }
        c.refused(
            &format!("linux.\"{key}\": null after the runtime-default profile"),
            &result,
            &["seccomp", "duplicate", "key"],
            effects,
        );
    }

    // A second "mounts" (or "Mounts") that binds a host directory (standing for the host's
    // `/`, never bound itself in a test) at /host.
    let bind_src = g.host_dir("gojson-bind-src");
    for key in ["mounts", "Mounts"] {
        let id = unique("c");
        let marker = bind_src.join(format!("{id}.owned"));
        let spec = g.spec(
            NS,
            &id,
            &["sh", "-c", &format!("id -u > /host/{id}.owned; sleep 300")],
        );
        let mut mounts = spec["mounts"].clone();
        mounts
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/host", "type": "bind", "source": bind_src, "options": ["rbind", "rw"]}));
        let text = with_members(&spec, &[(key, mounts.to_string())]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(
            &format!("a second \"{key}\" binding a host directory at /host"),
            &result,
            &["mounts", "duplicate", "key", "hostPath"],
            effects,
        );
    }

    // "Hooks": a createRuntime hook the gate does not see.
    for key in ["Hooks", "HOOKS"] {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let hooks = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("id -u > {}", marker.display())]}]});
        let text = with_members(&spec, &[(key, hooks.to_string())]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(
            &format!("\"{key}\" with a createRuntime hook"),
            &result,
            &["hook", "key", "privileged"],
            effects,
        );
    }

    // "Root": a host directory as the container's root.
    {
        let id = unique("c");
        let spec = g.spec(NS, &id, &["sh", "-c", "id -u > /owned; sleep 300"]);
        let root = json!({"path": hostdir, "readonly": false});
        let text = with_members(&spec, &[("Root", root.to_string())]);
        let result = g.attempt(NS, &id, text.as_bytes());
        let mut effects = g.effects(NS, &id);
        effects.push(written(&hostdir.join("owned")));
        c.refused(
            "\"Root\" naming a host directory after root",
            &result,
            &["root", "key", "duplicate"],
            effects,
        );
    }
    c.finish(&g.w);
}
