//! grpc-go, dialling by socket path as the kubelet and crictl do, through the proxy.
//!
//! `tests/fixtures/clients/go` (`main.go`; its `cri.go` serves `tests/cri/clients.rs`) is
//! built once per run, offline, in GOPATH mode against Debian's grpc-go 1.33
//! (`golang-google-grpc-dev`). Its dial target is the bare
//! socket path, so every request carries that path as `:authority` — which an HTTP/2
//! stack that checks authorities (hyper/h2) refuses with `RST_STREAM PROTOCOL_ERROR`.
//!
//! Each test runs the client against containerd's own socket first (the control: the
//! client itself works and the expected answers are real) and then through the proxy,
//! checking the same answers: unary containerd and CRI calls, a server stream of events,
//! and Content/Write in client-streaming and bidi shapes with a ~15 MiB message.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::clients::grpc_go as client;
use crate::common::{self, ok, text, unique, World, IMAGE};

/// No webhook: these tests are about the wire, not admission.
const CONFIG: &str = "proxy: {}\n";

const MIB: usize = 1 << 20;

/// The sockets a test checks, the control first.
fn sockets(w: &World) -> [(&'static str, &Path); 2] {
    [
        ("containerd", &w.containerd.socket),
        ("proxy", &w.proxy.socket),
    ]
}

/// Runs the client on `socket`; asserts it succeeded and returns its JSON lines. On
/// failure the message carries the client's output and, through the proxy, its log's tail.
#[track_caller]
fn call(w: &World, via: &str, socket: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(client())
        .arg(socket)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running the grpc-go client: {e}"));
    if !out.status.success() {
        panic!("{}", failure(w, via, args, &out));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("client printed {l:?}: {e}")))
        .collect()
}

fn failure(w: &World, via: &str, args: &[&str], out: &Output) -> String {
    format!(
        "grpc-go client {args:?} via {via} failed ({}):\n{}{}",
        out.status,
        text(out),
        proxy_log_tail(w, via)
    )
}

/// The end of the proxy's log when the call went through it, for failure messages.
fn proxy_log_tail(w: &World, via: &str) -> String {
    if via != "proxy" {
        return String::new();
    }
    let log = w.proxy.log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    format!("\n--- proxy log (tail) ---\n{}", tail.join("\n"))
}

/// The single JSON line a unary subcommand prints.
#[track_caller]
fn one(lines: Vec<Value>) -> Value {
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.into_iter().next().unwrap_or_default()
}

/// `containerd --version`'s version and revision: "containerd URL VERSION REVISION".
fn containerd_version() -> (String, String) {
    let out = ok(Command::new("containerd")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("running containerd --version: {e}")));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(words.len() >= 4, "containerd --version: {out}");
    (words[2].to_owned(), words[3].to_owned())
}

#[test]
fn grpc_go_by_socket_path_unary_containerd_and_cri() {
    let w = World::with_cri(CONFIG);
    let (version, revision) = containerd_version();
    for (via, socket) in sockets(&w) {
        let v = one(call(&w, via, socket, &["version"]));
        assert_eq!(v["version"], version.as_str(), "via {via}: {v}");
        assert_eq!(v["revision"], revision.as_str(), "via {via}: {v}");
        // containerd 1.6 serves both CRI versions on its socket; each names itself.
        for api in ["v1", "v1alpha2"] {
            let v = one(call(&w, via, socket, &["cri-version", api]));
            assert_eq!(v["runtime_name"], "containerd", "via {via}: {v}");
            assert_eq!(v["runtime_version"], version.as_str(), "via {via}: {v}");
            assert_eq!(v["runtime_api_version"], api, "via {via}: {v}");
            assert_eq!(v["version"], "0.1.0", "via {via}: {v}");
        }
    }
}

#[test]
fn grpc_go_by_socket_path_cri_lists_pods_and_images() {
    let w = World::with_cri(CONFIG);
    // CRI's images live in namespace k8s.io; the world imported busybox into "default".
    ok(w.ctr_direct(&[
        "-n",
        "k8s.io",
        "images",
        "import",
        common::image_tar().to_str().unwrap_or_default(),
    ]));
    for (via, socket) in sockets(&w) {
        // CRI learns of the import from containerd's events: allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let v = loop {
            let v = one(call(&w, via, socket, &["cri-lists"]));
            let listed = v["repo_tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == IMAGE));
            if listed || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(v["pods"], 0, "via {via}: {v}");
        assert_eq!(v["images"], 1, "via {via}: {v}");
        let tags = v["repo_tags"].as_array().cloned().unwrap_or_default();
        assert!(tags.iter().any(|t| t == IMAGE), "via {via}: {v}");
    }
}

/// A running client, killed and reaped when dropped (a test that panics leaves no
/// subscriber behind).
struct Running(Child);

impl Running {
    /// Stops the client and returns what it wrote on stderr (its gRPC error, if any).
    fn stop(&mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut err = String::new();
        if let Some(mut pipe) = self.0.stderr.take() {
            let _ = pipe.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn grpc_go_by_socket_path_events_subscribe_streams() {
    let w = World::with_cri(CONFIG);
    for (via, socket) in sockets(&w) {
        let mut child = Command::new(client())
            .arg(socket)
            .args(["subscribe", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running the grpc-go client: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut child = Running(child);
        let (tx, rx) = mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        // Everything the client printed, for failure messages.
        let mut seen = Vec::new();
        let explain = |seen: &[Value], child: &mut Running| {
            let err = child.stop();
            let log = proxy_log_tail(&w, via);
            format!("subscriber via {via} printed {seen:?}, stderr: {err}{log}")
        };

        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(v) if v["subscribed"] == true => seen.push(v),
            other => {
                seen.extend(other.ok());
                panic!("{}", explain(&seen, &mut child));
            }
        }
        // Nothing tells the client when containerd has registered it as a subscriber,
        // so an event published too early is missed: publish again until one arrives.
        let mut arrived = None;
        'attempts: for _ in 0..5 {
            let name = unique("grpc-go-events");
            ok(common::ctr(socket, &["namespaces", "create", &name]));
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(v) => {
                        let hit = v["topic"] == "/namespaces/create" && v["name"] == name.as_str();
                        seen.push(v.clone());
                        if hit {
                            arrived = Some(v);
                            break 'attempts;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    // The client ended: its stream failed.
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        panic!("{}", explain(&seen, &mut child))
                    }
                }
            }
        }
        let Some(v) = arrived else {
            panic!(
                "no /namespaces/create event: {}",
                explain(&seen, &mut child)
            );
        };
        assert_eq!(
            v["type_url"], "containerd.events.NamespaceCreate",
            "via {via}: {v}"
        );
        // ctr created it from its namespace, "default".
        assert_eq!(v["namespace"], "default", "via {via}: {v}");
    }
}

#[test]
fn grpc_go_by_socket_path_content_write_and_read_16_mib() {
    let w = World::with_cri(CONFIG);
    // containerd's server takes messages up to 16 MiB: one 15 MiB data message (plus its
    // other fields) is the largest a client can send, in a single committing request.
    // Then several 1 MiB messages, so the bidi shape really alternates sends and receives.
    let cases = [
        ("stream", 15 * MIB, 15 * MIB),
        ("bidi", 15 * MIB, 15 * MIB),
        ("stream", 5 * MIB + 7, MIB),
        ("bidi", 5 * MIB + 7, MIB),
    ];
    for (via, socket) in sockets(&w) {
        let ns = unique("grpc-go-content");
        let mut digests = Vec::new();
        for (shape, size, chunk) in cases {
            let (size_arg, chunk_arg) = (size.to_string(), chunk.to_string());
            let args = ["content", &ns, shape, &size_arg, &chunk_arg];
            let v = one(call(&w, via, socket, &args));
            assert_eq!(v["shape"], shape, "via {via}: {v}");
            assert_eq!(v["size"], size, "via {via}: {v}");
            assert_eq!(v["write_requests"], size.div_ceil(chunk), "via {via}: {v}");
            let digest = v["digest"].as_str().unwrap_or_default().to_owned();
            assert!(digest.starts_with("sha256:"), "via {via}: {v}");
            digests.push((digest, size));
        }
        // The client read each blob back and checked it; ctr, asked of containerd
        // directly, must find the same bytes.
        for (digest, size) in &digests {
            let out = w.ctr_direct(&["-n", &ns, "content", "get", digest]);
            assert!(
                out.status.success(),
                "ctr content get {digest}: {}",
                text(&out)
            );
            let got = format!("sha256:{:x}", Sha256::digest(&out.stdout));
            assert_eq!((&got, out.stdout.len()), (digest, *size), "via {via}");
        }
    }
}
