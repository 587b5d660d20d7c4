//! `portcullis audit` end to end: a private containerd with one compliant and one
//! violating running container, a private Podman with a violating one, a runtime that is
//! not there, and the proxy's periodic audit in its metrics. The policy is the Gatekeeper
//! library's privileged-containers template (its CEL code) with two constraints: one
//! denying, one in `dryrun`.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "podman",
    "dockerd",
    "docker",
];

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::podman::Podman;
use common::{ctr, ok, text, unique, Containerd, Portcullis, IMAGE};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/gatekeeper-library"
);
const PRIVILEGED: &str = "K8sPSPPrivilegedContainer/psp-privileged-container";
const DRYRUN: &str = "K8sPSPPrivilegedContainer/privileged-dryrun";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-audit-")
        .tempdir()
        .unwrap()
}

/// A policyDir with the library's privileged-containers template and two of its
/// constraints, one denying and one in `dryrun`, and a config naming it plus `extra`.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let copy = |from: &str, to: &str| {
        std::fs::copy(Path::new(LIBRARY).join(from), policies.join(to)).unwrap();
    };
    copy("privileged-containers/template.yaml", "priv-template.yaml");
    copy(
        "privileged-containers/samples/psp-privileged-container/constraint.yaml",
        "priv-constraint.yaml",
    );
    let constraint = std::fs::read_to_string(
        Path::new(LIBRARY)
            .join("privileged-containers/samples/psp-privileged-container/constraint.yaml"),
    )
    .unwrap()
    .replace("name: psp-privileged-container", "name: privileged-dryrun")
    .replace("\nspec:\n", "\nspec:\n  enforcementAction: dryrun\n");
    std::fs::write(policies.join("dryrun-constraint.yaml"), constraint).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("policyDir: {}\n{extra}", policies.display()),
    )
    .unwrap();
    config
}

fn audit(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("audit")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The JSON record of container `id` in an `--output json` report.
fn record<'a>(report: &'a Value, id: &str) -> &'a Value {
    report
        .as_array()
        .expect("the report is an array")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no record of {id} in {report:#}"))
}

/// A record's (policy, action) pairs, sorted.
fn actions(record: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = record["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("policy"), s("action"))
        })
        .collect();
    pairs.sort();
    pairs
}

/// A private containerd with the image, a compliant and a violating (privileged) container running in `default`: their ids.
fn containerd_world(dir: &Path) -> (Containerd, String, String) {
    let containerd = Containerd::start(dir);
    let socket = containerd.socket.clone();
    ok(ctr(
        &socket,
        &["images", "import", common::image_tar().to_str().unwrap()],
    ));
    let (good, bad) = (unique("good"), unique("bad"));
    ok(ctr(&socket, &["run", "-d", IMAGE, &good, "sleep", "600"]));
    let out = ctr(
        &socket,
        &["run", "-d", "--privileged", IMAGE, &bad, "sleep", "600"],
    );
    assert!(
        out.status.success(),
        "privileged container did not start: {}\n{}",
        text(&out),
        containerd.log()
    );
    (containerd, good, bad)
}

#[test]
fn containerd_compliant_and_violating_running_containers() {
    let dir = tempdir();
    let (containerd, good, bad) = containerd_world(dir.path());
    let config = write_config(dir.path(), "");
    let sock = containerd.socket.to_str().unwrap();

    let out = audit(&config, &["--containerd", sock]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with(&bad)).collect();
    assert!(
        rows.iter()
            .any(|r| r.contains(PRIVILEGED) && r.contains(" deny ")),
        "{stdout}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(DRYRUN) && r.contains(" dryrun ")),
        "{stdout}"
    );
    assert!(
        rows.iter().all(|r| r.contains("containerd/default")),
        "{stdout}"
    );
    assert!(!stdout.contains(&good), "{stdout}");
    assert!(
        stdout.contains("2 containers audited, 1 with violations"),
        "{stdout}"
    );

    let out = audit(&config, &["--containerd", sock, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--output json parses");
    let g = record(&report, &good);
    assert_eq!(g["violations"], serde_json::json!([]));
    assert_eq!(
        (g["state"].as_str(), g["runtime"].as_str()),
        (Some("running"), Some("containerd"))
    );
    assert_eq!(g["image"], IMAGE);
    let b = record(&report, &bad);
    assert_eq!(
        actions(b),
        [
            (DRYRUN.to_owned(), "dryrun".to_owned()),
            (PRIVILEGED.to_owned(), "deny".to_owned())
        ]
    );
    assert_eq!(
        (b["namespace"].as_str(), b["podName"].as_str()),
        (Some("default"), Some(bad.as_str()))
    );
}

#[test]
fn an_unreachable_runtime_is_exit_2_naming_its_socket() {
    let dir = tempdir();
    let config = write_config(dir.path(), "");
    let missing = dir.path().join("no-containerd.sock");
    let out = audit(&config, &["--containerd", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "containerd at {} is unreachable",
            missing.display()
        )) && err.contains("--containerd"),
        "{err}"
    );
    let missing = dir.path().join("no-docker.sock");
    let out = audit(&config, &["--docker", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("dockerd at {}", missing.display())),
        "{err}"
    );
}

/// dockerd's running containers are read from its containerd's `moby` namespace (the
/// record the proxy door judges, the image asked of dockerd), its stopped ones listed as
/// skipped, and `moby` is not listed twice when that containerd is audited too. (dockerd's
/// `--privileged` cannot start here, lacking capabilities: this one complies.)
#[test]
fn dockerd_containers_are_audited_from_their_containerd_record() {
    let dir = tempdir();
    let containerd = Containerd::start(dir.path());
    let dockerd = common::Dockerd::start(dir.path(), &containerd.socket);
    ok(dockerd.docker(&["load", "-i", common::image_tar().to_str().unwrap()]));
    let (running, stopped) = (unique("drunning"), unique("dstopped"));
    ok(dockerd.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &running,
        "busybox:1.36",
        "sleep",
        "600",
    ]));
    ok(dockerd.docker(&["create", "--name", &stopped, "busybox:1.36"]));
    // dockerd's `/proc/<pid>/exe libnetwork-setkey` prestart hook makes the view privileged
    // unless its binary is trusted, at the proxy door and so here (docs/deploy.md).
    let which = ok(Command::new("which").arg("dockerd").output().unwrap());
    let dockerd_bin = std::fs::canonicalize(which.trim()).unwrap();
    let trusted = format!("spec:\n  allowedHooks: [{}]\n", dockerd_bin.display());
    let config = write_config(dir.path(), &trusted);
    let out = audit(
        &config,
        &[
            "--docker",
            dockerd.socket.to_str().unwrap(),
            "--containerd",
            containerd.socket.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    println!("{}", text(&out));
    let _ = dockerd.docker(&["rm", "-f", &running, &stopped]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--output json parses");
    let records = report.as_array().unwrap();
    let by_name =
        |name: &str| -> Vec<&Value> { records.iter().filter(|r| r["name"] == name).collect() };
    let r = by_name(&running);
    assert_eq!(r.len(), 1, "reported once: {report:#}");
    assert_eq!(
        (r[0]["runtime"].as_str(), r[0]["namespace"].as_str()),
        (Some("docker"), Some("moby"))
    );
    assert_eq!(r[0]["podName"].as_str(), r[0]["id"].as_str(), "{report:#}");
    assert!(
        r[0]["image"]
            .as_str()
            .unwrap_or_default()
            .contains("busybox"),
        "{report:#}"
    );
    assert!(r[0].get("skipped").is_none(), "{report:#}");
    let s = by_name(&stopped);
    assert!(
        s[0]["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("not running"),
        "{report:#}"
    );
    assert!(
        !records.iter().any(|r| r["runtime"] == "containerd"),
        "moby listed twice: {report:#}"
    );
}

#[test]
fn podman_containers_are_audited_from_the_spec_the_hook_sees() {
    let dir = tempdir();
    let podman = Podman::without_hook(&dir.path().join("podman"));
    let (good, bad) = (unique("pgood"), unique("pbad"));
    podman.start(&good, &[]);
    podman.start(&bad, &["--privileged"]);
    let config = write_config(dir.path(), "");
    let mut args: Vec<String> = podman
        .flags()
        .iter()
        .map(|f| format!("--podman-flag={f}"))
        .collect();
    args.extend(["--output".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = audit(&config, &args);
    println!("{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--output json parses");
    let by_name = |name: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no record of {name} in {report:#}"))
            .clone()
    };
    let g = by_name(&good);
    assert_eq!(g["violations"], serde_json::json!([]), "{g:#}");
    assert_eq!(
        (g["runtime"].as_str(), g["namespace"].as_str()),
        (Some("podman"), Some("podman"))
    );
    let b = by_name(&bad);
    assert_eq!(
        actions(&b),
        [
            (DRYRUN.to_owned(), "dryrun".to_owned()),
            (PRIVILEGED.to_owned(), "deny".to_owned())
        ]
    );
    assert_eq!(b["state"], "running");
}

/// `gatekeeper.auditInterval` on the proxy: its upstream containerd is audited and the
/// gauges say what was found.
#[test]
fn the_proxy_audits_its_containerd_periodically_into_metrics() {
    let dir = tempdir();
    let (containerd, _good, _bad) = containerd_world(dir.path());
    let port = common::free_port();
    let extra =
        format!("gatekeeper: {{auditInterval: 1s}}\nmetrics: {{listen: '127.0.0.1:{port}'}}\n");
    let config = write_config(dir.path(), &extra);
    let yaml = std::fs::read_to_string(&config).unwrap();
    let proxy = Portcullis::start(dir.path(), &containerd.socket, &yaml);
    let want = [
        format!("portcullis_audit_violations{{policy=\"{PRIVILEGED}\",action=\"deny\"}} 1"),
        format!("portcullis_audit_violations{{policy=\"{DRYRUN}\",action=\"dryrun\"}} 1"),
        "portcullis_audit_containers 2".to_owned(),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = common::http(port, "GET", "/metrics", b"");
        if want.iter().all(|w| body.contains(w.as_str())) {
            assert!(
                body.contains("portcullis_audit_last_run_timestamp_seconds "),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {want:?}:\n{body}\n--- proxy log ---\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
