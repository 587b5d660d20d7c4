//! Python `grpcio` (gRPC C-core) against containerd and its CRI plugin, directly and
//! through `portcullis proxy`, with `tests/fixtures/clients/python/client.py`.
//!
//! Two interpreters, because C-core changed what it sends as `:authority` for a
//! `unix:/abs/path.sock` target: the registry's grpcio (>= 1.57, from the venv
//! `scripts/setup.sh` makes in `target/clients-venv`) sends the path percent-encoded
//! without its leading `/`, Debian's python3-grpcio 1.51 (`/usr/bin/python3`) sends
//! `localhost`. The direct runs are the control: they show the client itself works, so a
//! failure through the proxy is the proxy's. Each run checks real answers: containerd's
//! version as `ctr` reads it, the CRI runtime name, an event the test caused, and a ~15 MiB
//! blob's digest after a write and a read.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::clients::Python;
use crate::common::{self, World};

/// No webhook: the proxy relays everything, which is all these tests look at.
const CONFIG: &str = "proxy: {}\n";
/// What the script's content command writes: 15 MiB and change (see client.py).
const BLOB_SIZE: u64 = (15 << 20) + 4321;

/// containerd's version and revision as `ctr` reads them, straight from containerd.
fn containerd_version(w: &World) -> (String, String) {
    let out = common::ok(w.ctr_direct(&["version"]));
    let server = out.split("Server:").nth(1).expect(&out);
    let field = |name: &str| {
        server
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .expect(&out)
    };
    (field("Version:"), field("Revision:"))
}

/// Prints the end of the proxy's log when a test fails, beside the client's own words.
struct ProxyLogOnFailure<'a>(&'a World);

impl Drop for ProxyLogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.0.proxy.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- proxy log (last 40 lines) ---\n{tail}");
        }
    }
}

/// Every check, with `py` on `socket` (containerd's own, or the proxy's in front of it).
fn check(py: &Python, w: &World, socket: &Path) {
    let _log = ProxyLogOnFailure(w);
    let (version, revision) = containerd_version(w);

    let answer = &py.run(socket, &["version"])[0];
    assert_eq!(answer["version"], version.as_str(), "{answer}");
    assert_eq!(answer["revision"], revision.as_str(), "{answer}");

    let answers = py.run(socket, &["cri-version"]);
    for (answer, api) in answers.iter().zip(["v1", "v1alpha2"]) {
        assert_eq!(answer["runtime_name"], "containerd", "{answer}");
        assert_eq!(answer["runtime_version"], version.as_str(), "{answer}");
        assert_eq!(answer["runtime_api_version"], api, "{answer}");
    }
    assert_eq!(answers.len(), 2, "{answers:?}");

    // A fresh containerd has no pod sandbox: an empty, well-formed answer.
    assert_eq!(py.run(socket, &["list-pods"])[0]["items"], 0);

    subscribe(py, socket);

    for shape in ["stream", "bidi"] {
        let answer = &py.run(socket, &["content", "default", shape])[0];
        let sent = &answer["sent_digest"];
        assert_eq!(&answer["committed_digest"], sent, "{answer}");
        assert_eq!(&answer["read_digest"], sent, "{answer}");
        assert_eq!(answer["read_size"], BLOB_SIZE, "{answer}");
        assert_eq!(answer["read_in_order"], true, "{answer}");
        // One answer per request (small write, big write, commit), then containerd repeats
        // the last one when the client half-closes.
        let offsets = serde_json::json!([1024, BLOB_SIZE, BLOB_SIZE, BLOB_SIZE]);
        assert_eq!(answer["write_offsets"], offsets, "{answer}");
    }
}

/// Events/Subscribe, server streaming: namespaces created on the same socket must arrive.
/// Nothing tells the client when containerd has registered its subscription, so the test
/// keeps creating namespaces until the script has seen one.
fn subscribe(py: &Python, socket: &Path) {
    let mut child = py
        .client(socket, &["events", "/namespaces/create", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut created = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let name = common::unique("python-events");
        common::ok(common::ctr(socket, &["namespaces", "create", &name]));
        created.push(name);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let args = ["events", "/namespaces/create"];
    let answers = py.answers(&args, &out);
    let last = answers.last().expect("no event arrived");
    assert_eq!(last["topic"], "/namespaces/create", "{answers:?}");
    assert_eq!(
        last["type_url"], "containerd.events.NamespaceCreate",
        "{last}"
    );
    let name = last["name"].as_str().unwrap_or_default();
    assert!(
        created.iter().any(|c| c == name),
        "{last} not in {created:?}"
    );
}

#[test]
fn registry_grpcio_direct_to_containerd() {
    let py = Python::registry();
    let w = World::with_cri(CONFIG);
    check(&py, &w, &w.containerd.socket);
}

#[test]
fn registry_grpcio_through_the_proxy() {
    let py = Python::registry();
    let w = World::with_cri(CONFIG);
    check(&py, &w, &w.proxy.socket);
}

#[test]
fn debian_grpcio_direct_to_containerd() {
    let py = Python::debian();
    let w = World::with_cri(CONFIG);
    check(&py, &w, &w.containerd.socket);
}

#[test]
fn debian_grpcio_through_the_proxy() {
    let py = Python::debian();
    let w = World::with_cri(CONFIG);
    check(&py, &w, &w.proxy.socket);
}
