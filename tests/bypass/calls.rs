//! §3 Task calls: requests other than the container's spec that make something run on the
//! host as root or give a running container more: `Tasks/Create`'s rootfs, stdio URIs,
//! runtime and runc binaries, checkpoints; `Tasks/Update`; `Tasks/Exec`. The CRI and
//! `:path`: wire.rs; the runc wrapper: wrapper.rs; `Containers/Update` and the restart
//! monitor: containers.rs.

use containerd_client::services::v1::CreateTaskRequest;
use containerd_client::types::{Descriptor, Mount};
use serde_json::{json, Value};

use super::kit::{
    all_caps, outcome, proc_status, runc_options, written, Corpus, Gate, RuncOptions,
};
use crate::common::{ok, text, unique, IMAGE};

const NS: &str = "default";

/// A baseline-clean container (the spec `ctr` writes with `--seccomp`) created through the
/// proxy, running `args`.
fn benign(g: &Gate, id: &str, args: &[&str]) {
    let spec = g.spec(NS, id, args);
    g.create(NS, id, &serde_json::to_vec(&spec).unwrap())
        .unwrap_or_else(|e| panic!("the baseline-clean container: {e}"));
}

/// `Tasks/Create`'s rootfs mounts are the caller's: containerd mounts them in the host's
/// mount namespace at the bundle's `rootfs`. The host directory bound here stands for `/`
/// (a bind of the host's `/` at the bundle would make any recursive removal of the bundle
/// a removal of the host: never bind `/` in a test).
#[test]
fn task_create_rootfs_mounts_a_host_directory() {
    let g = Gate::new("");
    let mut c = Corpus::new("Tasks/Create rootfs");
    let cases = [
        ("bind HOSTDIR rbind,rw", "bind"),
        ("type none, rbind HOSTDIR rw", "none"),
    ];
    for (case, typ) in cases {
        let id = unique("c");
        let hostdir = g.host_dir(&format!("{id}-hostdir"));
        benign(&g, &id, &["sh", "-c", "id -u > /owned; sleep 300"]);
        let result = g.task_create(
            NS,
            CreateTaskRequest {
                container_id: id.clone(),
                rootfs: vec![Mount {
                    r#type: typ.into(),
                    source: hostdir.display().to_string(),
                    options: vec!["rbind".into(), "rw".into()],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let effects = vec![
            ("task runs".to_owned(), g.task_pid(NS, &id).is_some()),
            written(&hostdir.join("owned")),
        ];
        c.refused(
            &format!("rootfs: {case} on a baseline-clean container"),
            &result,
            &["rootfs"],
            effects,
        );
    }
    c.finish(&g.w);
}

#[test]
fn task_stdio_uris_run_or_write_as_root() {
    let g = Gate::new("");
    let mut c = Corpus::new("stdio URIs");
    // ctr run --log-uri binary://: the shim runs the program as root. `ctr run` creates
    // the container first (a plain, admitted one); what must never happen is the task.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        let uri = format!("binary://{}", evil.display());
        let result = outcome(g.w.ctr(&[
            "run",
            "-d",
            "--seccomp",
            "--log-uri",
            &uri,
            IMAGE,
            &id,
            "sleep",
            "300",
        ]));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut effects = g.task_effects(NS, &id);
        effects.push(written(&marker));
        c.refused(
            "ctr run --log-uri binary:///evil.sh",
            &result,
            &["stdio", "binary"],
            effects,
        );
    }
    // ctr run --log-uri file://: the shim creates and writes the file as root.
    {
        let id = unique("c");
        let target = g.host(&format!("{id}.cron"));
        let uri = format!("file://{}", target.display());
        let result = outcome(g.w.ctr(&[
            "run",
            "-d",
            "--seccomp",
            "--log-uri",
            &uri,
            IMAGE,
            &id,
            "echo",
            "* * * * * root x",
        ]));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut effects = g.task_effects(NS, &id);
        effects.push(written(&target));
        c.refused(
            "ctr run --log-uri file:///etc/cron.d/x-like",
            &result,
            &["stdio", "file"],
            effects,
        );
    }
    // Tasks/Exec with a binary:// stdout.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        ok(g.w.ctr(&[
            "run",
            "-d",
            "--null-io",
            "--seccomp",
            IMAGE,
            &id,
            "sleep",
            "300",
        ]));
        let spec: Value =
            serde_json::from_str(&ok(g.w.ctr_direct(&["containers", "info", &id]))).unwrap();
        let mut process = spec["Spec"]["process"].clone();
        process["args"] = json!(["true"]);
        let result = g.exec_stdio(
            NS,
            &id,
            "e1",
            &serde_json::to_vec(&process).unwrap(),
            &format!("binary://{}", evil.display()),
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        c.refused(
            "Tasks/Exec stdout binary:///evil.sh",
            &result,
            &["stdio", "binary"],
            vec![written(&marker)],
        );
    }
    c.finish(&g.w);
}

#[test]
fn task_runtime_and_runc_binaries_run_a_host_program() {
    let g = Gate::new("");
    let mut c = Corpus::new("runtime and runc binaries");
    // ctr run --runc-binary: the container's runc Options.binary_name.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        let result = outcome(g.w.ctr(&[
            "run",
            "-d",
            "--null-io",
            "--seccomp",
            "--runc-binary",
            evil.to_str().unwrap(),
            IMAGE,
            &id,
            "sleep",
            "300",
        ]));
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(
            "ctr run --runc-binary /evil.sh",
            &result,
            &["runc", "binary"],
            effects,
        );
    }
    // Tasks/Create options: runc Options.binary_name on a baseline-clean container.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        benign(&g, &id, &["sleep", "300"]);
        let result = g.task_create(
            NS,
            CreateTaskRequest {
                container_id: id.clone(),
                rootfs: g.rootfs(NS, &id),
                options: Some(runc_options(RuncOptions {
                    binary_name: evil.display().to_string(),
                    ..Default::default()
                })),
                ..Default::default()
            },
        );
        c.refused(
            "Tasks/Create options.binary_name /evil.sh",
            &result,
            &["runc", "binary"],
            vec![written(&marker)],
        );
    }
    // Tasks/Create runtime_path: containerd starts it as the shim.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        benign(&g, &id, &["sleep", "300"]);
        let result = g.task_create(
            NS,
            CreateTaskRequest {
                container_id: id.clone(),
                rootfs: g.rootfs(NS, &id),
                runtime_path: evil.display().to_string(),
                ..Default::default()
            },
        );
        c.refused(
            "Tasks/Create runtime_path /evil.sh",
            &result,
            &["runtime"],
            vec![written(&marker)],
        );
    }
    // Containers/Create with the runtime named by an absolute path.
    {
        let id = unique("c");
        let marker = g.host(&format!("{id}.marker"));
        let evil = g.evil_script(&format!("{id}.sh"), &marker);
        let spec = g.spec(NS, &id, &["sleep", "300"]);
        let result = g
            .create_runtime(
                NS,
                &id,
                &serde_json::to_vec(&spec).unwrap(),
                evil.to_str().unwrap(),
            )
            .and_then(|()| g.start(NS, &id));
        let mut effects = g.effects(NS, &id);
        effects.push(written(&marker));
        c.refused(
            "Containers/Create runtime.name /evil.sh",
            &result,
            &["runtime"],
            effects,
        );
    }
    c.finish(&g.w);
}

#[test]
fn task_create_from_a_checkpoint_is_refused() {
    let g = Gate::new("");
    let mut c = Corpus::new("checkpoints");
    let id = unique("c");
    benign(&g, &id, &["sleep", "300"]);
    let result = g.task_create(
        NS,
        CreateTaskRequest {
            container_id: id.clone(),
            rootfs: g.rootfs(NS, &id),
            checkpoint: Some(Descriptor {
                media_type: "application/vnd.containerd.container.criu.checkpoint.criu.tar".into(),
                digest: format!("sha256:{}", "0".repeat(64)),
                size: 1,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    c.refused(
        "Tasks/Create with a checkpoint (restores a process image the gate never judged)",
        &result,
        &["checkpoint"],
        vec![("task runs".into(), g.task_pid(NS, &id).is_some())],
    );
    c.finish(&g.w);
}

/// A ValidatingAdmissionPolicy capping memory at 128Mi.
const MEMORY_POLICY: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: memory-cap}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
  - expression: >
      object.spec.containers.all(c, !has(c.resources) || !has(c.resources.limits) ||
        !('memory' in c.resources.limits) ||
        quantity(c.resources.limits['memory']).compareTo(quantity('128Mi')) <= 0)
    message: memory limit above 128Mi
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: memory-cap}
spec: {policyName: memory-cap, validationActions: [Deny]}
"#;

#[test]
fn task_update_raises_limits_past_the_policy() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("memory.yaml"), MEMORY_POLICY).unwrap();
    let g = Gate::new(&format!("policyDir: {}\n", policies.path().display()));
    let mut c = Corpus::new("Tasks/Update");
    // Control: the policy refuses 8Gi at the create.
    let big = unique("c");
    let result = outcome(g.w.ctr(&[
        "run",
        "-d",
        "--null-io",
        "--seccomp",
        "--memory-limit",
        "8589934592",
        IMAGE,
        &big,
        "sleep",
        "300",
    ]));
    c.refused(
        "control: ctr run --memory-limit 8Gi",
        &result,
        &["memory"],
        g.effects(NS, &big),
    );

    let id = unique("c");
    ok(g.w.ctr(&[
        "run",
        "-d",
        "--null-io",
        "--seccomp",
        "--memory-limit",
        "67108864",
        IMAGE,
        &id,
        "sleep",
        "300",
    ]));
    let cgroup = |controller: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/{NS}/{id}/{file}"))
            .unwrap_or_default()
    };
    let before = cgroup("memory", "memory.limit_in_bytes");
    let result = g.update_task(NS, &id, br#"{"memory": {"limit": 8589934592}}"#);
    let after = cgroup("memory", "memory.limit_in_bytes");
    c.refused(
        "Tasks/Update memory 64Mi -> 8Gi",
        &result,
        &["memory"],
        vec![(
            format!(
                "memory.limit_in_bytes {} -> {}",
                before.trim(),
                after.trim()
            ),
            after.trim() == "8589934592",
        )],
    );
    let result = g.update_task(
        NS,
        &id,
        br#"{"devices": [{"allow": true, "access": "rwm"}]}"#,
    );
    let devices = cgroup("devices", "devices.list");
    c.refused(
        "Tasks/Update devices allow all rwm",
        &result,
        &["device", "resources"],
        vec![(
            format!("devices.list now {:?}", devices.trim()),
            devices.contains("a *:* rwm"),
        )],
    );
    c.finish(&g.w);
}

/// A case: its name, the words its refusal must name, how it bends the process.
type Case = (&'static str, &'static [&'static str], fn(&mut Value));

/// The pids of task `id`'s processes other than its init, asked of containerd directly.
fn exec_pids(g: &Gate, ns: &str, id: &str) -> Vec<u32> {
    let init = g.task_pid(ns, id);
    text(&g.w.ctr_direct(&["-n", ns, "tasks", "ps", id]))
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .filter(|p| Some(*p) != init)
        .collect()
}

#[test]
fn exec_gains_power_the_container_does_not_have() {
    let g = Gate::new("");
    let mut c = Corpus::new("Tasks/Exec");
    let host_caps = proc_status(std::process::id(), "CapBnd");

    // A baseline-clean container in `default`.
    let id = unique("c");
    let spec = g.spec(NS, &id, &["sleep", "300"]);
    g.attempt(NS, &id, &serde_json::to_vec(&spec).unwrap())
        .unwrap_or_else(|e| panic!("the baseline-clean container: {e}"));
    let cases: [Case; 2] = [
        (
            "exec with every capability (ctr task exec --privileged-like)",
            &["capabilit", "privileged"],
            |p| p["capabilities"] = all_caps(),
        ),
        (
            "exec adding CAP_SYS_ADMIN to every set",
            &["capabilit", "SYS_ADMIN"],
            |p| {
                for set in [
                    "bounding",
                    "effective",
                    "permitted",
                    "inheritable",
                    "ambient",
                ] {
                    super::spec::push(&mut p["capabilities"][set], json!("CAP_SYS_ADMIN"));
                }
            },
        ),
    ];
    for (n, (case, words, bend)) in cases.into_iter().enumerate() {
        let mut process = spec["process"].clone();
        process["args"] = json!(["sleep", "60"]);
        bend(&mut process);
        let before = exec_pids(&g, NS, &id);
        let result = g.exec(
            NS,
            &id,
            &format!("caps{n}"),
            &serde_json::to_vec(&process).unwrap(),
        );
        let new: Vec<u32> = exec_pids(&g, NS, &id)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        let effects = new
            .iter()
            .map(|p| {
                let eff = proc_status(*p, "CapEff");
                (
                    format!("an exec runs with CapEff {eff} (the host's: {host_caps})"),
                    true,
                )
            })
            .collect();
        c.refused(case, &result, words, effects);
    }

    // A restricted-clean container in `strict` (uid 1000, no capabilities, no new
    // privileges): an exec as uid 0, or one allowing privilege escalation, is more than it.
    ok(g.w.ctr(&[
        "-n",
        "strict",
        "images",
        "import",
        crate::common::image_tar().to_str().unwrap(),
    ]));
    let id = unique("c");
    let mut spec = g.spec("strict", &id, &["sleep", "300"]);
    spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    spec["process"]["capabilities"] =
        json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []});
    spec["process"]["noNewPrivileges"] = json!(true);
    g.attempt("strict", &id, &serde_json::to_vec(&spec).unwrap())
        .unwrap_or_else(|e| panic!("the restricted-clean container: {e}"));
    let cases: [Case; 2] = [
        (
            "exec as uid 0 in a uid-1000 container (restricted)",
            &["runAsNonRoot", "runAsUser", "root", "uid"],
            |p| p["user"] = json!({"uid": 0, "gid": 0}),
        ),
        (
            "exec with noNewPrivileges false (restricted)",
            &["allowPrivilegeEscalation", "noNewPrivileges"],
            |p| p["noNewPrivileges"] = json!(false),
        ),
    ];
    for (n, (case, words, bend)) in cases.into_iter().enumerate() {
        let mut process = spec["process"].clone();
        process["args"] = json!(["sleep", "60"]);
        bend(&mut process);
        let before = exec_pids(&g, "strict", &id);
        let result = g.exec(
            "strict",
            &id,
            &format!("r{n}"),
            &serde_json::to_vec(&process).unwrap(),
        );
        let new: Vec<u32> = exec_pids(&g, "strict", &id)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        let effects = new
            .iter()
            .map(|p| {
                (
                    format!(
                        "an exec runs with Uid {:?}, NoNewPrivs {}",
                        proc_status(*p, "Uid"),
                        proc_status(*p, "NoNewPrivs")
                    ),
                    true,
                )
            })
            .collect();
        c.refused(case, &result, words, effects);
    }
    c.finish(&g.w);
}
