//! §3 Calls: requests other than the container's spec that make something run on the host
//! as root or give a running container more: `Tasks/Create`'s rootfs, stdio URIs, runtime
//! and runc binaries, checkpoints; `Tasks/Update`; `Tasks/Exec`; the CRI; a `:path`
//! containerd routes but the gate may not recognise; the runc wrapper's other subcommands.

use std::path::Path;
use std::process::Command;

use containerd_client::services::v1::{Container, CreateContainerRequest, CreateTaskRequest};
use containerd_client::types::{Descriptor, Mount};
use serde_json::{json, Value};

use super::kit::{
    all_caps, outcome, proc_status, runc_options, written, Corpus, Gate, RuncOptions, SPEC_TYPE,
};
use super::raw::frame::{Outcome, Request};
use super::raw::grpc::{call, grpc_message, once, CRI_VERSION};
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
    // ctr run --log-uri binary://: the shim runs the program as root.
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
        let mut effects = g.effects(NS, &id);
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
        let mut effects = g.effects(NS, &id);
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

/// Protobuf by hand, for the CRI messages (no CRI types in this crate's dependencies).
mod pb {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn bytes(tag: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(tag) << 3 | 2, &mut out);
        varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }
    pub fn int(tag: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(tag) << 3, &mut out);
        varint(value, &mut out);
        out
    }
    pub fn msg(fields: &[Vec<u8>]) -> Vec<u8> {
        fields.concat()
    }
}

/// A unary gRPC call on the raw client: `path`, `body` (a message, framed here), headers.
fn raw_call(path: &str, body: &[u8], headers: &[(&str, &str)]) -> Request {
    let mut req = call(CRI_VERSION, Some("localhost")).set(":path", path);
    for (name, value) in headers {
        req = req.with(name, value);
    }
    let mut framed = vec![0];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    req.body = framed;
    req
}

/// `grpc-status` of an answer ("0" OK), or what happened instead.
fn status(o: &Outcome) -> String {
    match o {
        Outcome::Ended {
            headers, trailers, ..
        } => trailers
            .iter()
            .flatten()
            .chain(headers)
            .find(|(n, _)| n == b"grpc-status")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "no grpc-status".into()),
        other => format!("{other:?}"),
    }
}

#[test]
fn cri_calls_that_make_containers_are_refused_by_default() {
    let g = Gate::with_cri("");
    let mut c = Corpus::new("CRI");
    let meta = pb::msg(&[
        pb::bytes(1, b"evil"),
        pb::bytes(2, b"evil-uid"),
        pb::bytes(3, b"default"),
    ]);
    // PodSandboxConfig{metadata, linux{security_context{namespace_options{network: NODE,
    // pid: NODE}, privileged: true}}}
    let sandbox = pb::msg(&[
        pb::bytes(1, &meta),
        pb::bytes(
            8,
            &pb::bytes(
                2,
                &pb::msg(&[
                    pb::bytes(1, &pb::msg(&[pb::int(1, 2), pb::int(2, 2)])),
                    pb::int(6, 1),
                ]),
            ),
        ),
    ]);
    let container = pb::msg(&[
        pb::bytes(1, &pb::bytes(1, b"evil")),
        pb::bytes(2, &pb::bytes(1, IMAGE.as_bytes())),
    ]);
    let calls: Vec<(&str, Vec<u8>)> = vec![
        ("RunPodSandbox", pb::bytes(1, &sandbox)),
        (
            "CreateContainer",
            pb::msg(&[
                pb::bytes(1, b"no-such-sandbox"),
                pb::bytes(2, &container),
                pb::bytes(3, &sandbox),
            ]),
        ),
        (
            "ExecSync",
            pb::msg(&[pb::bytes(1, b"no-such-container"), pb::bytes(2, b"id")]),
        ),
        (
            "Exec",
            pb::msg(&[pb::bytes(1, b"no-such-container"), pb::bytes(2, b"id")]),
        ),
        (
            "UpdateContainerResources",
            pb::msg(&[pb::bytes(1, b"no-such-container")]),
        ),
    ];
    for version in ["v1", "v1alpha2"] {
        for (method, body) in &calls {
            let path = format!("/runtime.{version}.RuntimeService/{method}");
            let run = once(&g.w.proxy.socket, &raw_call(&path, body, &[]));
            let o = run.outcomes.first().cloned();
            let st = o.as_ref().map(status).unwrap_or_default();
            let msg = o.as_ref().map(grpc_message).unwrap_or_default();
            // The proxy's refusal is PERMISSION_DENIED (7); anything else came from
            // containerd's CRI plugin, which the proxy let the call reach.
            let result = if st == "7" { Err(msg.clone()) } else { Ok(()) };
            c.refused(
                &path,
                &result,
                &["cri"],
                vec![(
                    format!("relayed to containerd's CRI plugin (grpc-status {st}: {msg:?})"),
                    st != "7",
                )],
            );
        }
    }
    let sandboxes = g.w.containers("k8s.io");
    c.refused(
        "no sandbox or container exists in k8s.io",
        &Err("cri".into()),
        &["cri"],
        vec![(
            format!("k8s.io containers {sandboxes:?}"),
            !sandboxes.is_empty(),
        )],
    );
    // Reading calls still pass.
    for (path, body) in [
        (CRI_VERSION, pb::bytes(1, b"v1")),
        ("/runtime.v1.RuntimeService/ListPodSandbox", Vec::new()),
        ("/runtime.v1.ImageService/ListImages", Vec::new()),
    ] {
        let run = once(&g.w.proxy.socket, &raw_call(path, &body, &[]));
        let st = run.outcomes.first().map(status).unwrap_or_default();
        c.admitted(
            &format!("{path} still answers"),
            &Ok(()),
            vec![(format!("grpc-status {st}"), st == "0")],
        );
    }
    c.finish(&g.w);
}

#[test]
fn a_path_containerd_routes_but_the_gate_does_not_match() {
    let g = Gate::new("");
    let mut c = Corpus::new(":path");
    for (case, path) in [
        (
            "control: /containerd.services.containers.v1.Containers/Create",
            "/containerd.services.containers.v1.Containers/Create",
        ),
        (
            "no leading slash: containerd.services.containers.v1.Containers/Create",
            "containerd.services.containers.v1.Containers/Create",
        ),
    ] {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        spec["process"]["capabilities"] = all_caps();
        let req = CreateContainerRequest {
            container: Some(Container {
                id: id.clone(),
                image: IMAGE.into(),
                runtime: Some(containerd_client::services::v1::container::Runtime {
                    name: "io.containerd.runc.v2".into(),
                    options: None,
                }),
                spec: Some(prost_types::Any {
                    type_url: SPEC_TYPE.into(),
                    value: serde_json::to_vec(&spec).unwrap(),
                }),
                ..Default::default()
            }),
        };
        let body = prost::Message::encode_to_vec(&req);
        let run = once(
            &g.w.proxy.socket,
            &raw_call(path, &body, &[("containerd-namespace", NS)]),
        );
        let o = run.outcomes.first().cloned();
        let st = o.as_ref().map(status).unwrap_or_default();
        let msg = o.as_ref().map(grpc_message).unwrap_or_default();
        let result = if st == "0" { Ok(()) } else { Err(msg) };
        c.refused(
            case,
            &result,
            &["path", "privileged", "capabilities"],
            g.effects(NS, &id),
        );
    }
    c.finish(&g.w);
}

/// A bundle whose config.json is `spec`, for the runc wrapper.
fn bundle(dir: &Path, name: &str, spec: &Value) -> std::path::PathBuf {
    let b = dir.join(name);
    std::fs::create_dir_all(b.join("rootfs")).unwrap();
    std::fs::write(b.join("config.json"), serde_json::to_vec(spec).unwrap()).unwrap();
    b
}

#[test]
fn runc_wrapper_subcommands_other_than_create_and_run() {
    let g = Gate::new("");
    let mut c = Corpus::new("runc wrapper");
    let config = g.host("wrapper.yaml");
    std::fs::write(&config, super::kit::BASELINE).unwrap();
    let mut privileged = g.spec(NS, "wrapped", &["sh"]);
    privileged["process"]["capabilities"] = all_caps();
    privileged["linux"]["seccomp"] = Value::Null;
    let b = bundle(g.dir(), "privileged-bundle", &privileged);
    let process = g.host("process.json");
    std::fs::write(&process, privileged["process"].to_string()).unwrap();
    let root = g.host("runc-root/default");
    let cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        (
            "control: create of a privileged bundle",
            vec![
                "create".into(),
                "--bundle".into(),
                b.display().to_string(),
                "w-create".into(),
            ],
            &["privileged", "capabilit"],
        ),
        (
            "restore of a privileged bundle from a checkpoint",
            vec![
                "restore".into(),
                "--image-path".into(),
                g.host("checkpoint").display().to_string(),
                "--bundle".into(),
                b.display().to_string(),
                "w-restore".into(),
            ],
            &["restore", "checkpoint"],
        ),
        (
            "exec --process with every capability",
            vec![
                "exec".into(),
                "--process".into(),
                process.display().to_string(),
                "some-container".into(),
            ],
            &["exec", "capabilit", "privileged"],
        ),
        (
            "exec --cap CAP_SYS_ADMIN",
            vec![
                "exec".into(),
                "--cap".into(),
                "CAP_SYS_ADMIN".into(),
                "some-container".into(),
                "sh".into(),
            ],
            &["exec", "capabilit", "SYS_ADMIN"],
        ),
    ];
    for (n, (case, args, words)) in cases.into_iter().enumerate() {
        // The "real runc" is a script recording that the wrapper handed the call on.
        let marker = g.host(&format!("runc-{n}.marker"));
        let runc = g.evil_script(&format!("runc-{n}.sh"), &marker);
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["runc", "--config"])
            .arg(&config)
            .arg("--runc")
            .arg(&runc)
            .arg("--")
            .arg("--root")
            .arg(&root)
            .args(&args)
            .output()
            .unwrap();
        c.refused(
            case,
            &outcome(out),
            words,
            vec![("the wrapper ran runc with it".to_owned(), marker.exists())],
        );
    }
    c.finish(&g.w);
}

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
