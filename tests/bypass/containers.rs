//! §3 Containers: the other ways a stored container changes — `Containers/Update` of its
//! spec or labels — and containerd's restart monitor, which starts tasks by itself.

use containerd_client::services::v1::Container;
use serde_json::{json, Value};

use super::kit::{all_caps, proc_status, written, Corpus, Gate};
use crate::common::unique;

const NS: &str = "default";

/// `Containers/Update` is the second way to a spec: what `Containers/Create` must refuse, an
/// update of a baseline-clean container must refuse too, and the task must not start.
#[test]
fn containers_update_brings_what_create_refuses() {
    let g = Gate::new("");
    let mut c = Corpus::new("Containers/Update");
    let hostdir = g.host_dir("update-root");
    type Bend = Box<dyn Fn(&Value, &std::path::Path) -> String>;
    let cases: Vec<(&str, &[&str], Bend)> = vec![
        (
            "hooks.createRuntime added",
            &["hook", "privileged"],
            Box::new(|s: &Value, marker: &std::path::Path| {
                let mut s = s.clone();
                s["hooks"] = json!({"createRuntime": [{"path": "/bin/sh",
                    "args": ["sh", "-c", format!("id -u > {}", marker.display())]}]});
                s.to_string()
            }),
        ),
        (
            "\"PROCESS\" with every capability appended",
            &["process", "duplicate", "key"],
            Box::new(|s: &Value, _: &std::path::Path| {
                let mut p = s["process"].clone();
                p["capabilities"] = all_caps();
                super::kit::with_members(s, &[("PROCESS", p.to_string())])
            }),
        ),
        (
            "root.path a host directory",
            &["root", "hostPath"],
            Box::new(|s: &Value, marker: &std::path::Path| {
                let mut s = s.clone();
                let dir = marker.parent().unwrap().join("update-root");
                s["root"] = json!({"path": dir, "readonly": false});
                s["process"]["args"] = json!(["sh", "-c", "id -u > /owned; sleep 300"]);
                s.to_string()
            }),
        ),
    ];
    for (case, words, bend) in cases {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        g.create(NS, &id, &serde_json::to_vec(&spec).unwrap())
            .unwrap_or_else(|e| panic!("the baseline-clean container: {e}"));
        let result = g
            .update_spec(NS, &id, bend(&spec, &marker).as_bytes())
            .and_then(|()| g.start(NS, &id));
        let mut effects = vec![("task runs".to_owned(), g.task_pid(NS, &id).is_some())];
        effects.push(written(&marker));
        if case.starts_with("root.path") {
            effects.push(written(&hostdir.join("owned")));
        }
        if let Some(pid) = g.task_pid(NS, &id) {
            let eff = proc_status(pid, "CapEff");
            effects.push((
                format!("the task runs with CapEff {eff}"),
                eff == proc_status(std::process::id(), "CapBnd"),
            ));
        }
        c.refused(case, &result, words, effects);
    }
    c.finish(&g.w);
}

/// containerd's restart monitor (`io.containerd.internal.v1.restart`, on by default) starts
/// the task of a container labelled `containerd.io/restart.status=running` by itself, with
/// the log URI of `containerd.io/restart.loguri`: no `Tasks/Create` ever reaches the proxy,
/// and the shim runs a `binary://` URI as root.
#[test]
fn restart_labels_make_containerd_start_a_task_itself() {
    let g = Gate::new("");
    let mut c = Corpus::new("restart monitor labels");
    for (case, uri_label) in [
        (
            "restart.status=running + restart.loguri binary://",
            "containerd.io/restart.loguri",
        ),
        (
            "restart.status=running + restart.logpath (file)",
            "containerd.io/restart.logpath",
        ),
    ] {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        let value = if uri_label.ends_with("loguri") {
            format!("binary://{}", evil.display())
        } else {
            marker.display().to_string()
        };
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let labels = [
            (
                "containerd.io/restart.status".to_owned(),
                "running".to_owned(),
            ),
            (uri_label.to_owned(), value),
        ]
        .into_iter()
        .collect();
        let result = g.create_with(NS, &id, &serde_json::to_vec(&spec).unwrap(), labels, None);
        // The monitor looks every 10 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
        while std::time::Instant::now() < deadline
            && !(marker.exists() && g.task_pid(NS, &id).is_some())
        {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(case, &result, &["restart", "label"], effects);
    }
    // The same labels added later by Containers/Update (update_mask `labels`).
    let id = unique("c");
    let marker = g.host(&format!("{id}.marker"));
    let evil = g.evil_script(&format!("{id}.sh"), &marker);
    let spec = g.spec(NS, &id, &["sleep", "300"]);
    g.create(NS, &id, &serde_json::to_vec(&spec).unwrap())
        .unwrap_or_else(|e| panic!("the baseline-clean container: {e}"));
    let labels = [
        (
            "containerd.io/restart.status".to_owned(),
            "running".to_owned(),
        ),
        (
            "containerd.io/restart.loguri".to_owned(),
            format!("binary://{}", evil.display()),
        ),
    ]
    .into_iter()
    .collect();
    let result = g.update_container(
        NS,
        Container {
            id: id.clone(),
            labels,
            ..Default::default()
        },
        &["labels"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    while std::time::Instant::now() < deadline
        && !(marker.exists() && g.task_pid(NS, &id).is_some())
    {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let effects = vec![
        ("task runs".to_owned(), g.task_pid(NS, &id).is_some()),
        written(&marker),
    ];
    c.refused(
        "Containers/Update adding restart.status=running + restart.loguri binary://",
        &result,
        &["restart", "label"],
        effects,
    );
    c.finish(&g.w);
}
