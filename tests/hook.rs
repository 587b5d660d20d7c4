//! The hook door end to end: the real `portcullis` binary as Podman's OCI hook (hooks.d
//! written by `portcullis install hooks --podman`) and as containerd's runc (`ctr run
//! --runc-binary` with the shim from `install hooks --docker --shim`), plus the daemon
//! contract against a small stand-in daemon.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "dockerd",
    "docker",
    "podman",
];

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::podman::Podman;
use common::{ctr, ok, text, unique, Containerd, IMAGE};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/runtime-specs/podman"
);

/// Pod Security `baseline` enforced in `namespace`.
fn baseline(namespace: &str) -> String {
    format!("namespaces:\n  {namespace}:\n    labels:\n      pod-security.kubernetes.io/enforce: baseline\n")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-hook-")
        .tempdir()
        .unwrap()
}

fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn install(args: &[&str]) -> String {
    ok(Command::new(BIN)
        .args(["install", "hooks"])
        .args(args)
        .output()
        .unwrap())
}

/// A plain `podman run` of the hooked Podman, with `extra` flags.
fn podman_run(podman: &Podman, extra: &[&str]) -> Output {
    podman.container(&unique("hooked"), extra, &["echo", "hello from podman"])
}

/// A plain container runs; privileged and host-PID ones are refused by Pod Security.
fn check_baseline(podman: &Podman) {
    let out = podman_run(podman, &[]);
    assert!(
        out.status.success(),
        "plain container refused: {}",
        text(&out)
    );
    assert!(text(&out).contains("hello from podman"), "{}", text(&out));

    let out = podman_run(podman, &["--privileged"]);
    assert!(!out.status.success(), "privileged admitted: {}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("portcullis: policy \"pod-security\" denied the request")
            && err.contains("privileged"),
        "{err}"
    );

    let out = podman_run(podman, &["--pid", "host"]);
    assert!(!out.status.success(), "host PID admitted: {}", text(&out));
    assert!(text(&out).contains("hostPID=true"), "{}", text(&out));
}

#[test]
fn podman_hook_admits_plain_and_refuses_privileged_and_host_pid() {
    let dir = tempdir();
    let config = write_config(dir.path(), &baseline("podman"));
    check_baseline(&Podman::new(dir.path(), &config));
}

#[test]
fn podman_hook_decides_in_process_when_the_daemon_is_down() {
    let dir = tempdir();
    let socket = dir.path().join("nobody-listens.sock");
    let yaml = format!(
        "{}hook:\n  daemonSocket: {}\n  timeout: 1s\n",
        baseline("podman"),
        socket.display()
    );
    let config = write_config(dir.path(), &yaml);
    let podman = Podman::new(dir.path(), &config);
    check_baseline(&podman);
    let out = podman_run(&podman, &["--privileged"]);
    assert!(text(&out).contains("deciding in-process"), "{}", text(&out));
}

#[test]
fn ctr_run_with_the_runc_wrapper() {
    let dir = tempdir();
    let containerd = Containerd::start(dir.path());
    let ns = "hooks";
    let decisions = dir.path().join("decisions.jsonl");
    let config = format!(
        "{}decisionLog: {{file: '{}'}}\n",
        baseline(ns),
        decisions.display()
    );
    let config = write_config(dir.path(), &config);
    // Under --root, so that the install's record stays in the temp dir too.
    let shim = dir.path().join("runc-shim");
    install(&[
        "--docker",
        "--root",
        dir.path().to_str().unwrap(),
        "--shim",
        "/runc-shim",
        "--config",
        config.to_str().unwrap(),
        "--binary",
        BIN,
    ]);
    let c = |args: &[&str]| {
        let mut all = vec!["-n", ns];
        all.extend(args);
        ctr(&containerd.socket, &all)
    };
    ok(c(&[
        "images",
        "import",
        common::image_tar().to_str().unwrap(),
    ]));
    let shim = shim.to_str().unwrap();

    let out = c(&[
        "run",
        "--rm",
        "--seccomp",
        "--runc-binary",
        shim,
        IMAGE,
        &unique("plain"),
        "echo",
        "hello from ctr",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), containerd.log());
    assert!(text(&out).contains("hello from ctr"), "{}", text(&out));

    let id = unique("priv");
    let out = c(&[
        "run",
        "--rm",
        "--privileged",
        "--runc-binary",
        shim,
        IMAGE,
        &id,
        "true",
    ]);
    assert!(!out.status.success(), "privileged admitted: {}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("portcullis: policy \"pod-security\" denied the request")
            && err.contains("privileged"),
        "{err}"
    );
    let _ = c(&["containers", "delete", &id]);

    // The wrapper's decisions are the runc door's in the log (and the metrics), not the
    // hook's.
    let log = std::fs::read_to_string(&decisions).unwrap();
    let doors: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["door"].to_string())
        .collect();
    assert!(
        !doors.is_empty() && doors.iter().all(|d| d == "\"runc\""),
        "{log}"
    );
}

/// A stand-in for the daemon's `/admit` and `/events`: answers every review with
/// `allowed`/`message`, and keeps what it was sent.
struct FakeDaemon {
    socket: PathBuf,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeDaemon {
    fn start(dir: &Path, allowed: bool, message: &'static str) -> Self {
        let socket = dir.join("daemon.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let answer = if path.starts_with("/admit") {
                    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": body["request"]["uid"], "allowed": allowed,
                            "status": {"code": 403, "message": message}}})
                } else {
                    json!({})
                };
                log.lock().unwrap().push((path, body));
                let answer = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Self { socket, seen }
    }
}

/// A bundle with the Podman fixture's `config.json`, and its state with `status`.
fn bundle(dir: &Path, fixture: &str, status: &str) -> String {
    let bundle = dir.join(format!("bundle-{fixture}"));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(
        format!("{FIXTURES}/{fixture}.config.json"),
        bundle.join("config.json"),
    )
    .unwrap();
    let mut state: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/{fixture}.state.json")).unwrap(),
    )
    .unwrap();
    state["bundle"] = json!(bundle);
    state["status"] = json!(status);
    state["pid"] = json!(std::process::id());
    state.to_string()
}

fn hook(config: &Path, stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(["hook", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hook_asks_the_daemon_and_sends_lifecycle_events() {
    let dir = tempdir();
    let daemon = FakeDaemon::start(dir.path(), false, "refused by the daemon");
    let config = write_config(
        dir.path(),
        &format!("hook:\n  daemonSocket: {}\n", daemon.socket.display()),
    );
    let out = hook(&config, &bundle(dir.path(), "plain", "creating"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("portcullis: refused by the daemon"),
        "{}",
        text(&out)
    );

    let out = hook(&config, &bundle(dir.path(), "plain", "stopped"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let seen = daemon.seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/admit?door=hook", "/events", "/events"]);
    let review = &seen[0].1;
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["request"]["namespace"], "podman");
    assert_eq!(review["request"]["object"]["kind"], "Pod");
    let created = &seen[1].1;
    assert_eq!(created["stage"], "createRuntime");
    assert_eq!(
        created["verdict"],
        json!({"allowed": false, "message": "refused by the daemon"})
    );
    assert!(
        created["namespaces"]["pid"]
            .as_str()
            .unwrap()
            .starts_with("pid:["),
        "{created}"
    );
    assert_eq!(created["annotations"]["io.container.manager"], "libpod");
    assert_eq!(seen[2].1["stage"], "poststop");
}

#[test]
fn hook_fails_closed_on_bad_input() {
    let dir = tempdir();
    let config = write_config(dir.path(), "");
    let out = hook(&config, "this is not a state");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("portcullis: the OCI state on stdin is not valid JSON"),
        "{}",
        text(&out)
    );

    // poststop never fails the runtime.
    let mut child = Command::new(BIN)
        .args(["hook", "--stage", "poststop", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"garbage").unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));

    // A bundle without config.json.
    let state = json!({"ociVersion": "1.0.2", "id": "x", "status": "creating", "pid": 1,
        "bundle": dir.path().join("nowhere")});
    let out = hook(&config, &state.to_string());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot read"), "{}", text(&out));

    // An admitted bundle, no daemon configured.
    let out = hook(&config, &bundle(dir.path(), "privileged", "creating"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn dockerd_with_the_wrapper_as_a_runtime() {
    let dir = tempdir();
    let containerd = Containerd::start(dir.path());
    // dockerd's containers live in containerd namespace `moby`. Its prestart hook is
    // `/proc/<dockerd pid>/exe`, trusted through the dockerd binary; its data root is a
    // temporary directory, listed so the container's overlay root is its own.
    let dockerd_bin = ok(Command::new("sh")
        .args(["-c", "command -v dockerd"])
        .output()
        .unwrap());
    let dockerd_bin = std::fs::canonicalize(dockerd_bin.trim()).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "{}spec:\n  allowedHooks: [{}]\n  storageRoots: [{}]\n",
            baseline("moby"),
            dockerd_bin.display(),
            dir.path().join("docker/data").display()
        ),
    );
    let shim = dir.path().join("portcullis-runc");
    let entry = install(&[
        "--docker",
        "--root",
        dir.path().to_str().unwrap(),
        "--shim",
        "/portcullis-runc",
        "--config",
        config.to_str().unwrap(),
        "--binary",
        BIN,
    ]);
    let entry: Value = serde_json::from_str(&entry).unwrap();
    // The entry names the shim as the host (here: the --root) sees it.
    assert_eq!(
        entry["runtimes"]["portcullis"]["path"],
        json!("/portcullis-runc")
    );
    let runtime = format!("portcullis={}", shim.display());
    let dockerd =
        common::Dockerd::start_with(dir.path(), &containerd.socket, &["--add-runtime", &runtime]);
    ok(dockerd.docker(&["load", "-i", common::image_tar().to_str().unwrap()]));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            "portcullis",
        ];
        args.extend(extra);
        args.extend(["busybox:1.36", "echo", "hello from docker"]);
        dockerd.docker(&args)
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}\n{}", text(&out), dockerd.log());
    assert!(text(&out).contains("hello from docker"), "{}", text(&out));

    let out = run(&["--pid", "host"]);
    assert!(!out.status.success(), "host PID admitted: {}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("portcullis: policy \"pod-security\" denied the request")
            && err.contains("hostPID=true"),
        "{err}"
    );
}

#[test]
fn podman_through_the_serve_daemon_with_lifecycle_events_on_the_stream() {
    let dir = tempdir();
    let events = dir.path().join("events.sock");
    let decisions = dir.path().join("decisions.jsonl");
    let serve = common::Serve::serve(
        dir.path(),
        &format!(
            "{}events: {{socket: '{}'}}\ndecisionLog: {{file: '{}'}}\n",
            baseline("podman"),
            events.display(),
            decisions.display()
        ),
        &[],
    );
    // A subscriber, connected before anything happens.
    let stream = std::os::unix::net::UnixStream::connect(&events).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    // The hook's own config has no policy: every verdict comes from the daemon.
    let config = write_config(
        dir.path(),
        &format!("hook:\n  daemonSocket: '{}'\n", serve.socket.display()),
    );
    let podman = Podman::new(dir.path(), &config);

    let out = podman_run(&podman, &[]);
    assert!(out.status.success(), "{}\n{}", text(&out), serve.log());
    let out = podman_run(&podman, &["--privileged"]);
    assert!(
        text(&out).contains("portcullis: policy \"pod-security\" denied the request"),
        "{}",
        text(&out)
    );

    let mut stages = Vec::new();
    while stages.len() < 3 {
        let line = lines
            .next()
            .expect("the event stream ended")
            .unwrap_or_else(|e| panic!("no event ({e}); so far {stages:?}\n{}", serve.log()));
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["type"], "lifecycle", "{event}");
        stages.push((
            event["stage"].as_str().unwrap_or_default().to_owned(),
            event["verdict"]["allowed"].as_bool(),
        ));
    }
    assert_eq!(
        stages,
        [
            ("createRuntime".to_owned(), Some(true)),
            // poststop is not decided: it reports.
            ("poststop".to_owned(), None),
            ("createRuntime".to_owned(), Some(false)),
        ]
    );
    let log = std::fs::read_to_string(&decisions).unwrap();
    let doors: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        doors
            .iter()
            .any(|r| r["door"] == "hook" && r["allowed"] == false),
        "{log}"
    );
}
