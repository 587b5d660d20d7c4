//! The corpus' tools: a gate (the harness' [`World`] with Pod Security `baseline` enforced in
//! containerd namespace `default`), a baseline-clean spec to bend, containerd's own API
//! through the proxy with hand-written spec bytes, the host-side evidence of a bypass, and a
//! collector that runs every case of a class before failing once with a table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, ExecProcessRequest, StartRequest,
    UpdateTaskRequest,
};
use containerd_client::types::Mount;
use serde_json::{json, Value};

use crate::common::{ok, text, World, IMAGE};

/// Pod Security `baseline` enforced in containerd namespace `default`; `elsewhere` has no
/// Pod Security label (anything goes there); `strict` enforces `restricted`.
pub const BASELINE: &str = "namespaces:\n  \
    default: {labels: {pod-security.kubernetes.io/enforce: baseline}}\n  \
    elsewhere: {labels: {tier: open}}\n  \
    strict: {labels: {pod-security.kubernetes.io/enforce: restricted}}\n  \
    \"*\": {labels: {pod-security.kubernetes.io/enforce: baseline}}\n";

pub const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
pub const PROCESS_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
pub const RESOURCES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Every capability Linux defines (`ctr run --privileged` grants these 41).
pub use portcullis::convert::caps::ALL as ALL_CAPS;

/// The capability sets of a process with every capability this host can grant (the test
/// process' bounding set: a machine without e.g. CAP_SYS_RESOURCE cannot give it to runc).
pub fn all_caps() -> Value {
    let bnd = u64::from_str_radix(&proc_status(std::process::id(), "CapBnd"), 16).unwrap();
    let caps: Vec<&str> = ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bnd & (1 << bit) != 0)
        .map(|(_, cap)| *cap)
        .collect();
    let caps = json!(caps);
    json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps})
}

/// runc's `Options` (containerd.runc.v1.Options), the fields the corpus sets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
}

pub fn runc_options(options: RuncOptions) -> prost_types::Any {
    use prost::Message as _;
    prost_types::Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: options.encode_to_vec(),
    }
}

/// A gate under attack: the harness' world (private containerd, the proxy in front, the
/// busybox image) plus a baseline-clean spec to bend.
pub struct Gate {
    pub w: World,
    pub rt: tokio::runtime::Runtime,
    template: Value,
    chain: String,
}

impl Gate {
    /// [`BASELINE`] plus `extra` config.
    pub fn new(extra: &str) -> Self {
        Self::from_world(World::new(&format!("{BASELINE}{extra}")))
    }

    pub fn with_cri(extra: &str) -> Self {
        Self::from_world(World::with_cri(&format!("{BASELINE}{extra}")))
    }

    fn from_world(w: World) -> Self {
        // The spec `ctr` writes for a container baseline admits (the runtime-default seccomp
        // profile), created through the proxy: the control every case bends one field of.
        let id = crate::common::unique("template");
        ok(w.ctr(&[
            "containers",
            "create",
            "--seccomp",
            IMAGE,
            &id,
            "sleep",
            "300",
        ]));
        let info: Value =
            serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", &id]))).unwrap();
        ok(w.ctr_direct(&["containers", "rm", &id]));
        // The image's one layer: its committed snapshot is the parent of every case's.
        let snaps = ok(w.ctr_direct(&["snapshots", "ls"]));
        let chain = snaps
            .lines()
            .filter(|l| l.contains("Committed"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .next()
            .unwrap_or_else(|| panic!("no committed snapshot: {snaps}"));
        Self {
            w,
            rt: tokio::runtime::Runtime::new().unwrap(),
            template: info["Spec"].clone(),
            chain,
        }
    }

    pub fn dir(&self) -> &Path {
        self.w.dir.path()
    }

    /// A host path in the test's directory (where markers land).
    pub fn host(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// The baseline-clean spec for container `id` in namespace `ns`, running `args`.
    pub fn spec(&self, ns: &str, id: &str, args: &[&str]) -> Value {
        let mut s = self.template.clone();
        s["process"]["args"] = json!(args);
        s["linux"]["cgroupsPath"] = json!(format!("/{ns}/{id}"));
        s
    }

    /// A directory on the host with a static busybox in it (`sh`, `sleep`, `id`): what a
    /// host directory named as a container's root looks like.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let dir = self.host(name);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let busybox = ok(std::process::Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .unwrap());
        std::fs::copy(busybox.trim(), dir.join("bin/busybox")).unwrap();
        for app in ["sh", "sleep", "id"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(app)).unwrap();
        }
        dir
    }

    /// A shell script on the host that records it ran (as whom) in `marker` and exits 0.
    pub fn evil_script(&self, name: &str, marker: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.host(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nid -u > {}\nexit 0\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// `Containers/Create` through the proxy with `spec` as the exact bytes of the spec
    /// `Any` (`ctr` re-marshals specs; this does not), on a fresh snapshot of the image
    /// (prepared through the proxy, as `ctr` would).
    pub fn create(&self, ns: &str, id: &str, spec: &[u8]) -> Result<(), String> {
        self.create_with(ns, id, spec, HashMap::new(), None)
    }

    pub fn create_with(
        &self,
        ns: &str,
        id: &str,
        spec: &[u8],
        labels: HashMap<String, String>,
        runtime_options: Option<prost_types::Any>,
    ) -> Result<(), String> {
        self.create_at(false, ns, id, spec, labels, runtime_options)
    }

    /// [`Gate::create`] at containerd's own socket, not the proxy's (controls: what
    /// containerd and runc make of a spec).
    pub fn create_direct(&self, ns: &str, id: &str, spec: &[u8]) -> Result<(), String> {
        self.create_at(true, ns, id, spec, HashMap::new(), None)
    }

    fn create_at(
        &self,
        direct: bool,
        ns: &str,
        id: &str,
        spec: &[u8],
        labels: HashMap<String, String>,
        runtime_options: Option<prost_types::Any>,
    ) -> Result<(), String> {
        ok(self
            .w
            .ctr(&["-n", ns, "snapshots", "prepare", id, &self.chain]));
        let container = Container {
            id: id.into(),
            labels,
            image: IMAGE.into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: runtime_options,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE.into(),
                value: spec.to_vec(),
            }),
            snapshotter: "overlayfs".into(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        let socket = if direct {
            self.w.containerd.socket.clone()
        } else {
            self.w.proxy.socket.clone()
        };
        let ns = ns.to_owned();
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                let mut client = ContainersClient::new(channel);
                client
                    .create(with_ns(
                        &ns,
                        CreateContainerRequest {
                            container: Some(container),
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// `ctr tasks start -d` through the proxy: `Tasks/Create` (re-check) and `Tasks/Start`.
    pub fn start(&self, ns: &str, id: &str) -> Result<(), String> {
        outcome(
            self.w
                .ctr(&["-n", ns, "tasks", "start", "-d", "--null-io", id]),
        )
    }

    /// Create then start: the first refusal, or `Ok` when both went through.
    pub fn attempt(&self, ns: &str, id: &str, spec: &[u8]) -> Result<(), String> {
        self.create(ns, id, spec)?;
        self.start(ns, id)
    }

    /// `Tasks/Create` through the proxy with the request as given, then `Tasks/Start`.
    pub fn task_create(&self, ns: &str, req: CreateTaskRequest) -> Result<(), String> {
        let socket = self.w.proxy.socket.clone();
        let ns = ns.to_owned();
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                let mut client = TasksClient::new(channel);
                let id = req.container_id.clone();
                client.create(with_ns(&ns, req)).await?;
                client
                    .start(with_ns(
                        &ns,
                        StartRequest {
                            container_id: id,
                            exec_id: String::new(),
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// The mounts of snapshot `key`, asked through the proxy (what `ctr` passes as the
    /// task's rootfs).
    pub fn rootfs(&self, ns: &str, key: &str) -> Vec<Mount> {
        let out = ok(self.w.ctr(&["-n", ns, "snapshots", "mounts", "/mnt", key]));
        // `mount -t overlay overlay /mnt -o index=off,workdir=...,upperdir=...,lowerdir=...`
        let words: Vec<&str> = out.split_whitespace().collect();
        let after = |flag: &str| {
            let i = words
                .iter()
                .position(|w| *w == flag)
                .unwrap_or_else(|| panic!("{out}"));
            words[i + 1].to_owned()
        };
        vec![Mount {
            r#type: after("-t"),
            source: words[3].to_owned(),
            options: after("-o").split(',').map(str::to_owned).collect(),
            ..Default::default()
        }]
    }

    /// `Containers/Create` through the proxy with the runtime named `runtime`.
    pub fn create_runtime(
        &self,
        ns: &str,
        id: &str,
        spec: &[u8],
        runtime: &str,
    ) -> Result<(), String> {
        ok(self
            .w
            .ctr(&["-n", ns, "snapshots", "prepare", id, &self.chain]));
        let container = Container {
            id: id.into(),
            image: IMAGE.into(),
            runtime: Some(Runtime {
                name: runtime.into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE.into(),
                value: spec.to_vec(),
            }),
            snapshotter: "overlayfs".into(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        let socket = self.w.proxy.socket.clone();
        let ns = ns.to_owned();
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                ContainersClient::new(channel)
                    .create(with_ns(
                        &ns,
                        CreateContainerRequest {
                            container: Some(container),
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// `Tasks/Exec` of `process` (raw JSON bytes) through the proxy, then its start.
    pub fn exec(&self, ns: &str, id: &str, exec_id: &str, process: &[u8]) -> Result<(), String> {
        self.exec_stdio(ns, id, exec_id, process, "")
    }

    /// [`Gate::exec`] with `stdout` as the exec's stdout URI or path.
    pub fn exec_stdio(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        process: &[u8],
        stdout: &str,
    ) -> Result<(), String> {
        let stdout = stdout.to_owned();
        let socket = self.w.proxy.socket.clone();
        let (ns, id, exec_id) = (ns.to_owned(), id.to_owned(), exec_id.to_owned());
        let spec = prost_types::Any {
            type_url: PROCESS_TYPE.into(),
            value: process.to_vec(),
        };
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                let mut client = TasksClient::new(channel);
                client
                    .exec(with_ns(
                        &ns,
                        ExecProcessRequest {
                            container_id: id.clone(),
                            exec_id: exec_id.clone(),
                            spec: Some(spec),
                            stdout,
                            ..Default::default()
                        },
                    ))
                    .await?;
                client
                    .start(with_ns(
                        &ns,
                        StartRequest {
                            container_id: id,
                            exec_id,
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// `Containers/Update` of container `id`'s spec (exact bytes) through the proxy.
    pub fn update_spec(&self, ns: &str, id: &str, spec: &[u8]) -> Result<(), String> {
        let container = Container {
            id: id.into(),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE.into(),
                value: spec.to_vec(),
            }),
            ..Default::default()
        };
        self.update_container(ns, container, &["spec"])
    }

    /// `Containers/Update` of `container` with `paths` as the update mask, through the proxy.
    pub fn update_container(
        &self,
        ns: &str,
        container: Container,
        paths: &[&str],
    ) -> Result<(), String> {
        use containerd_client::services::v1::UpdateContainerRequest;
        let socket = self.w.proxy.socket.clone();
        let ns = ns.to_owned();
        let paths = paths.iter().map(|p| (*p).to_owned()).collect();
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                ContainersClient::new(channel)
                    .update(with_ns(
                        &ns,
                        UpdateContainerRequest {
                            container: Some(container),
                            update_mask: Some(prost_types::FieldMask { paths }),
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// `Tasks/Update` of a task's resources (raw JSON bytes) through the proxy.
    pub fn update_task(&self, ns: &str, id: &str, resources: &[u8]) -> Result<(), String> {
        let socket = self.w.proxy.socket.clone();
        let (ns, id) = (ns.to_owned(), id.to_owned());
        let resources = prost_types::Any {
            type_url: RESOURCES_TYPE.into(),
            value: resources.to_vec(),
        };
        self.rt
            .block_on(async move {
                let channel = containerd_client::connect(&socket).await.unwrap();
                let mut client = TasksClient::new(channel);
                client
                    .update(with_ns(
                        &ns,
                        UpdateTaskRequest {
                            container_id: id,
                            resources: Some(resources),
                            ..Default::default()
                        },
                    ))
                    .await
                    .map(|_| ())
            })
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }

    /// Whether container `id` exists in `ns`, asked of containerd directly.
    pub fn exists(&self, ns: &str, id: &str) -> bool {
        self.w.containers(ns).iter().any(|c| c == id)
    }

    /// The pid of task `id` in `ns` when it runs, asked of containerd directly.
    pub fn task_pid(&self, ns: &str, id: &str) -> Option<u32> {
        let out = ok(self.w.ctr_direct(&["-n", ns, "tasks", "ls"]));
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id) && f.get(2) == Some(&"RUNNING"))
                .then(|| f[1].parse().ok())
                .flatten()
        })
    }

    /// The task's bundle (its rootfs is mounted at `rootfs` while the task exists).
    pub fn bundle(&self, ns: &str, id: &str) -> PathBuf {
        self.w
            .containerd
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(ns)
            .join(id)
    }

    /// For a call refused at `Tasks/Create` (the container itself was admitted, as `ctr
    /// run` creates it first): whether a task of container `id` exists or ran.
    pub fn task_effects(&self, ns: &str, id: &str) -> Vec<(String, bool)> {
        vec![(
            "task runs".into(),
            self.task_pid(ns, id).is_some() || self.bundle(ns, id).exists(),
        )]
    }

    /// The host-side record of container `id`: exists at containerd, task running.
    pub fn effects(&self, ns: &str, id: &str) -> Vec<(String, bool)> {
        vec![
            ("container exists at containerd".into(), self.exists(ns, id)),
            (
                "task runs".into(),
                self.task_pid(ns, id).is_some() || self.bundle(ns, id).exists(),
            ),
        ]
    }
}

impl Drop for Gate {
    /// Kills and deletes every task (the shims unmount their rootfs), then detaches whatever
    /// is still mounted under the test's directory before the directory is removed: a
    /// removal must never follow a mount out of it. Should a mount stay, the directory is
    /// left on disk rather than removed.
    fn drop(&mut self) {
        self.w.containerd.clean_up();
        let dir = self.dir().to_path_buf();
        let mounted = || -> Vec<String> {
            let prefix = format!("{}/", dir.display());
            let mut points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
                .filter(|p| p.starts_with(&prefix))
                .collect();
            // Deepest first.
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            points
        };
        for point in mounted() {
            let _ = std::process::Command::new("umount")
                .args(["-l", &point])
                .status();
        }
        let left = mounted();
        if !left.is_empty() {
            eprintln!(
                "mounts remain under {}: {left:?}; leaving the directory in place",
                dir.display()
            );
            let keep = std::mem::replace(&mut self.w.dir, tempfile::tempdir().unwrap());
            std::mem::forget(keep);
        }
    }
}

pub fn with_ns<T>(ns: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("containerd-namespace", ns.parse().unwrap());
    req
}

/// A command's outcome: `Err(its output)` when it failed.
pub fn outcome(out: Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

/// Whether `path` exists (a marker a hook or a shim would write).
/// The markers' scripts write `id -u`: the description says who wrote it.
pub fn written(path: &Path) -> (String, bool) {
    let by = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| format!(" (by uid {})", l.trim())))
        .unwrap_or_default();
    (format!("{} written{by}", path.display()), path.exists())
}

/// A process's status lines from the host's `/proc` (`CapEff`, `Uid`, `Seccomp`, ...).
pub fn proc_status(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .map(|l| l[field.len() + 1..].trim().to_owned())
        .unwrap_or_default()
}

/// The JSON text of `obj` (an object) with `extra` raw `"key": value` members appended,
/// duplicates and all, as `encoding/json` in containerd will read them.
pub fn with_members(obj: &Value, extra: &[(&str, String)]) -> String {
    let mut s = serde_json::to_string(obj).unwrap();
    assert!(s.ends_with('}'));
    s.pop();
    for (k, v) in extra {
        if !s.ends_with('{') {
            s.push(',');
        }
        s.push_str(&format!("{}:{v}", serde_json::to_string(k).unwrap()));
    }
    s.push('}');
    s
}

/// Every case of a class, then one failure listing each case that was not refused at the
/// proxy with a message naming it, or that left an effect on the host.
pub struct Corpus {
    class: String,
    rows: Vec<String>,
    failures: Vec<String>,
}

impl Corpus {
    pub fn new(class: &str) -> Self {
        Self {
            class: class.into(),
            rows: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// `outcome` must be a refusal whose message names one of `words` (ASCII
    /// case-insensitive), and none of `effects` (what happened on the host) may be true.
    /// Container ids are neutral (`c-PID-N`) so a message naming the container never
    /// names a word by accident.
    pub fn refused(
        &mut self,
        case: &str,
        outcome: &Result<(), String>,
        words: &[&str],
        effects: Vec<(String, bool)>,
    ) {
        let happened: Vec<&str> = effects
            .iter()
            .filter(|(_, yes)| *yes)
            .map(|(what, _)| what.as_str())
            .collect();
        let verdict = match outcome {
            Ok(()) => "ADMITTED".to_owned(),
            Err(m) => format!("refused: {}", m.trim()),
        };
        // A runtime's failure after the proxy let the call through is no refusal. (Matched
        // on runc's and the shim's own phrases: the gate's messages may say "OCI runtime
        // spec".)
        let runtime_failed = |m: &str| {
            [
                "failed to create shim",
                "OCI runtime create failed",
                "OCI runtime exec failed",
                "OCI runtime start failed",
            ]
            .iter()
            .any(|p| m.contains(p))
        };
        let named = match outcome {
            Err(m) if runtime_failed(m) => false,
            Err(m) => {
                let m = m.to_ascii_lowercase();
                words.iter().any(|w| m.contains(&w.to_ascii_lowercase()))
            }
            Ok(()) => false,
        };
        let bypass = !happened.is_empty();
        self.rows.push(format!(
            "{} | {case} | {} | {verdict} | on the host: {}",
            if bypass { "BYPASS" } else { "held" },
            if named { "named" } else { "unnamed" },
            if happened.is_empty() {
                "nothing".to_owned()
            } else {
                happened.join(", ")
            }
        ));
        if !named || bypass {
            self.failures.push(format!(
                "{case}: {verdict}\n  expected a refusal naming one of {words:?}\n  on the host: {}",
                if happened.is_empty() {
                    "nothing".to_owned()
                } else {
                    happened.join(", ")
                }
            ));
        }
    }

    /// A case that must go through (the gate must not refuse what is harmless).
    pub fn admitted(
        &mut self,
        case: &str,
        outcome: &Result<(), String>,
        checks: Vec<(String, bool)>,
    ) {
        let bad: Vec<&str> = checks
            .iter()
            .filter(|(_, good)| !*good)
            .map(|(what, _)| what.as_str())
            .collect();
        self.rows.push(format!(
            "{} | {case} | {:?} | failed checks: {bad:?}",
            if outcome.is_ok() && bad.is_empty() {
                "ok"
            } else {
                "WRONG"
            },
            outcome
        ));
        if outcome.is_err() || !bad.is_empty() {
            self.failures
                .push(format!("{case}: {outcome:?}; failed checks: {bad:?}"));
        }
    }

    pub fn finish(self, w: &World) {
        eprintln!(
            "=== {} ===\nresult | case | message | verdict | host\n{}",
            self.class,
            self.rows.join("\n")
        );
        if self.failures.is_empty() {
            return;
        }
        let tail = |log: String| {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        panic!(
            "{}: {} of {} cases not held:\n\n{}\n\n--- proxy log, last lines ---\n{}",
            self.class,
            self.failures.len(),
            self.rows.len(),
            self.failures.join("\n\n"),
            tail(w.proxy.log())
        );
    }
}
