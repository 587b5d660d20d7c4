//! The CRI door (`proxy.cri: admit`) against kubelets we did not write: grpc-go 1.33
//! dialling by socket path (`tests/fixtures/clients/go/cri.go`, runtime.v1 and v1alpha2)
//! and Python grpcio, Debian's 1.51 and the registry's (`client.py`), each hand-encoding
//! the kubelet's requests. Our Rust client (`tests/common/cri`) proves the door with
//! bytes prost made; these prove it with bytes other stacks put on the wire, and that a
//! refusal reaches them as a gRPC status they read: `PermissionDenied` (7) and
//! kube-apiserver's message.
//!
//! Each client, under Pod Security `baseline` with `images.disallowLatest`: the kubelet's
//! plain `RunPodSandbox` is admitted (our client sees the sandbox, the third-party one stops
//! and removes it), a host-network one is refused naming `hostNetwork`, `PullImage` of
//! `:latest` is refused by the image rule and a tagged pull goes on to containerd.
//! grpc-go also creates containers: a plain busybox one runs, a privileged one is refused.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use k8s_cri::v1::PodSandboxConfig;
use serde_json::Value;
use tonic::{Code, Status};

use crate::common::clients::{grpc_go, Python};
use crate::common::cri::{pod_config, uid, CriApi, CriWorld, Via};
use crate::common::{text, IMAGE, IMAGE_LATEST};

/// Pod Security's refusal, as kube-apiserver words it.
const BASELINE: &str = r#"violates PodSecurity "baseline:latest""#;

/// The CRI door under Pod Security baseline, refusing `:latest` images.
fn config() -> String {
    format!(
        "{}images: {{disallowLatest: true}}\n",
        crate::ADMIT_BASELINE
    )
}

/// Which program acts as the kubelet.
enum Program {
    Go,
    Python(Python),
}

/// A third-party client speaking one CRI version, run once per call on the proxy's socket.
struct Kubelet {
    program: Program,
    api: &'static str,
}

impl fmt::Display for Kubelet {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.program {
            Program::Go => write!(f, "grpc-go {}", self.api),
            Program::Python(py) => write!(f, "grpcio {} {}", py.grpcio, self.api),
        }
    }
}

impl Kubelet {
    fn new(program: Program, api: &'static str) -> Self {
        Self { program, api }
    }

    /// A name part for this client's pods: `go-v1`, `py-1-51-2-v1alpha2`.
    fn slug(&self) -> String {
        let who = match &self.program {
            Program::Go => "go".to_owned(),
            Program::Python(py) => format!("py-{}", py.grpcio.replace('.', "-")),
        };
        format!("{who}-{}", self.api)
    }

    /// `COMMAND API ARGS…` on the proxy's socket: the client's one JSON answer, or the
    /// gRPC status it printed (`{"error": {"code": N, "message": …}}`). Anything else —
    /// a crash, a usage error, an unreadable answer — is a panic with the client's output.
    fn call(&self, w: &CriWorld, command: &str, args: &[&str]) -> Result<Value, Status> {
        let mut all = vec![command, self.api];
        all.extend(args);
        let socket = w.socket(Via::Proxy);
        let mut cmd = match &self.program {
            Program::Go => {
                // The client's own deadline is 60 s.
                let mut cmd = Command::new(grpc_go());
                cmd.arg(socket);
                cmd
            }
            Program::Python(py) => py.client(socket, &[]),
        };
        let out = cmd.args(&all).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last: Option<Value> = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok());
        let unexpected = || {
            let (status, said, logs) = (out.status, text(&out), w.logs());
            format!(
                "{self} `{}` failed ({status}):\n{said}\n{logs}",
                all.join(" ")
            )
        };
        let Some(answer) = last else {
            panic!("{}", unexpected())
        };
        match answer["error"]["code"].as_i64() {
            Some(code) => {
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                Err(Status::new(Code::from(code as i32), message))
            }
            None if out.status.success() && answer.get("error").is_none() => Ok(answer),
            None => panic!("{}", unexpected()),
        }
    }
}

/// The four arguments naming a pod: NAME NAMESPACE UID LOG_DIRECTORY.
fn pod_args(pod: &PodSandboxConfig) -> Vec<String> {
    let meta = pod.metadata.clone().unwrap_or_default();
    vec![
        meta.name,
        meta.namespace,
        meta.uid,
        pod.log_directory.clone(),
    ]
}

/// `fixed` then `pod`'s arguments then `more`, as the `&str`s a call takes.
fn args<'a>(fixed: &[&'a str], pod: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    let mut all = fixed.to_vec();
    all.extend(pod.iter().map(String::as_str));
    all.extend(more);
    all
}

/// `answer[key]` as a string, which must be there and not empty.
#[track_caller]
fn field(answer: &Value, key: &str) -> String {
    let value = answer[key].as_str().unwrap_or_default();
    assert!(!value.is_empty(), "no {key} in {answer}");
    value.to_owned()
}

/// The sandboxes containerd has (asked of it directly, with our client) named `name`.
fn sandboxes_named(w: &CriWorld, name: &str) -> Vec<k8s_cri::v1::PodSandbox> {
    let ours = w.client(Via::Containerd, CriApi::V1);
    let pods = w.expect("ListPodSandbox on containerd", ours.list_pods());
    pods.into_iter()
        .filter(|p| p.metadata.as_ref().is_some_and(|m| m.name == name))
        .collect()
}

/// The kubelet's plain pod by `k` through the door: admitted, then torn down by `k`.
fn plain_pod_is_admitted(w: &CriWorld, k: &Kubelet) {
    let (name, uid) = (format!("plain-{}", k.slug()), uid());
    let pod = pod_config(w.dir.path(), &name, "default", &uid);
    let who = pod_args(&pod);
    let answer = k.call(w, "run-pod", &args(&[], &who, &["plain"]));
    let id = field(
        &w.expect(&format!("RunPodSandbox by {k}"), answer),
        "pod_sandbox_id",
    );

    // containerd made it from what the client sent: the name, namespace and uid are those.
    let found = sandboxes_named(w, &name);
    assert_eq!(found.len(), 1, "{k}: {found:?}");
    let meta = found[0].metadata.clone().unwrap_or_default();
    assert_eq!(
        (
            found[0].id.as_str(),
            meta.namespace.as_str(),
            meta.uid.as_str()
        ),
        (id.as_str(), "default", uid.as_str()),
        "{k}: {found:?}"
    );
    let ready = k8s_cri::v1::PodSandboxState::SandboxReady as i32;
    assert_eq!(found[0].state, ready, "{k}: {found:?}");

    let removed = k.call(w, "remove-pod", &[&id]);
    w.expect(&format!("Stop/RemovePodSandbox by {k}"), removed);
    assert!(sandboxes_named(w, &name).is_empty(), "{k}: {id} is left");
}

/// A pod on the host's network by `k`: refused with Pod Security's message, and containerd
/// never made it.
fn host_network_pod_is_refused(w: &CriWorld, k: &Kubelet) {
    let name = format!("host-{}", k.slug());
    let pod = pod_config(w.dir.path(), &name, "default", &uid());
    let who = pod_args(&pod);
    w.refused(
        &format!("a hostNetwork RunPodSandbox by {k}"),
        k.call(w, "run-pod", &args(&[], &who, &["host-network"])),
        Code::PermissionDenied,
        &[BASELINE, "host namespaces (hostNetwork=true)"],
    );
    assert!(sandboxes_named(w, &name).is_empty(), "{k}: {name} exists");
}

/// `PullImage` of `:latest` by `k` is refused by the image rule; a tagged image goes on to
/// containerd, which finds no registry at a loopback port nothing listens on: its own
/// error, not ours (and no lookup leaves the machine).
fn latest_pull_is_refused(w: &CriWorld, k: &Kubelet) {
    let pod = pod_config(
        w.dir.path(),
        &format!("puller-{}", k.slug()),
        "team",
        &uid(),
    );
    let who = pod_args(&pod);
    w.refused(
        &format!("PullImage of :latest by {k}"),
        k.call(w, "pull-image", &args(&[IMAGE_LATEST], &who, &[])),
        Code::PermissionDenied,
        &["images.disallowLatest"],
    );
    let tagged = "127.0.0.1:1/busybox:1.36";
    let status = w.refused(
        &format!("PullImage of {tagged} by {k}"),
        k.call(w, "pull-image", &args(&[tagged], &who, &[])),
        Code::Unknown,
        &["failed to pull and unpack image", "connection refused"],
    );
    assert!(
        !status.message().contains("denied the request"),
        "{k}: {status:?}"
    );
}

/// Every check, with each of `kubelets` in turn, through one world's door.
fn admitted_and_refused(kubelets: &[Kubelet]) {
    let w = CriWorld::new(&config());
    for k in kubelets {
        let started = Instant::now();
        plain_pod_is_admitted(&w, k);
        host_network_pod_is_refused(&w, k);
        latest_pull_is_refused(&w, k);
        eprintln!("{k}: {:?}", started.elapsed());
    }
}

#[test]
fn grpc_go_kubelet_is_admitted_and_refused_by_the_cri_door() {
    admitted_and_refused(&[
        Kubelet::new(Program::Go, "v1"),
        Kubelet::new(Program::Go, "v1alpha2"),
    ]);
}

#[test]
fn debian_grpcio_kubelet_is_admitted_and_refused_by_the_cri_door() {
    admitted_and_refused(&[
        Kubelet::new(Program::Python(Python::debian()), "v1"),
        Kubelet::new(Program::Python(Python::debian()), "v1alpha2"),
    ]);
}

#[test]
fn registry_grpcio_kubelet_is_admitted_and_refused_by_the_cri_door() {
    admitted_and_refused(&[
        Kubelet::new(Program::Python(Python::registry()), "v1"),
        Kubelet::new(Program::Python(Python::registry()), "v1alpha2"),
    ]);
}

/// grpc-go creates containers in an admitted sandbox as the kubelet does: a plain busybox
/// container runs to its end (its exit code and its log line are real); a privileged one
/// is refused with Pod Security's message and containerd never has it.
#[test]
fn grpc_go_kubelet_runs_a_plain_container_and_is_refused_a_privileged_one() {
    let w = CriWorld::new(&config());
    for api in ["v1", "v1alpha2"] {
        let k = Kubelet::new(Program::Go, api);
        let name = format!("containers-{}", k.slug());
        let pod = pod_config(w.dir.path(), &name, "default", &uid());
        let who = pod_args(&pod);
        let answer = k.call(&w, "run-pod", &args(&[], &who, &["plain"]));
        let sandbox = field(
            &w.expect(&format!("RunPodSandbox by {k}"), answer),
            "pod_sandbox_id",
        );

        let script = "echo hello-grpc-go from $(hostname); exit 3";
        let plain = ["main", IMAGE, "plain", "sh", "-c", script];
        let answer = k.call(&w, "run-container", &args(&[&sandbox], &who, &plain));
        let answer = w.expect(&format!("a plain container by {k}"), answer);
        assert_eq!(
            (answer["state"].as_str(), answer["exit_code"].as_i64()),
            (Some("CONTAINER_EXITED"), Some(3)),
            "{k}: {answer}"
        );
        let log = Path::new(&pod.log_directory).join("main/0.log");
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let line = format!(" stdout F hello-grpc-go from {name}");
        assert!(
            logged.lines().any(|l| l.ends_with(&line)),
            "{k}: {logged:?}"
        );

        let privileged = ["root", IMAGE, "privileged", "true"];
        w.refused(
            &format!("a privileged CreateContainer by {k}"),
            k.call(&w, "run-container", &args(&[&sandbox], &who, &privileged)),
            Code::PermissionDenied,
            &[BASELINE, "privileged"],
        );
        let ours = w.client(Via::Containerd, CriApi::V1);
        let containers = w.expect("ListContainers on containerd", ours.list_containers());
        let names: Vec<String> = containers
            .into_iter()
            .filter(|c| c.pod_sandbox_id == sandbox)
            .filter_map(|c| c.metadata.map(|m| m.name))
            .collect();
        assert_eq!(names, ["main"], "{k}");
        w.expect(
            &format!("Stop/RemovePodSandbox by {k}"),
            k.call(&w, "remove-pod", &[&sandbox]),
        );
    }
}
