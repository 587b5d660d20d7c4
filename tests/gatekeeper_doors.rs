//! OPA Gatekeeper policies at every kind of door, end to end, with the gatekeeper-library's
//! own templates and sample Constraints (tests/fixtures/gatekeeper-library, unchanged) in
//! `policyDir`: what the real clients print and what runs.
//!
//! - The proxy in front of a private containerd, driven by the real `ctr`: a violating
//!   `ctr run` is refused with Gatekeeper's words (`admission webhook "portcullis" denied
//!   the request: [constraint] message`) and leaves no container; a compliant one runs.
//! - The OCI hook under the real Podman: the same refusal in Podman's error output.
//! - `enforcementAction: warn`, `dryrun` and `scoped`: the violating container runs; the
//!   warning is in the proxy's decision log (ctr has no warning channel) and in
//!   `response.warnings` of `portcullis serve`; `dryrun` says nothing at admission.
//! - A `policyDir` holding a Gatekeeper kind that is not run, or a Constraint without its
//!   template: `portcullis proxy` does not start, and says where and what to do.
//! - A Namespace-level `requiredlabels` Constraint judged by `serve`.
//!
//! Why: Gatekeeper users bring the library's policies and expect Gatekeeper's behaviour
//! and messages; unit tests judge Pods, these prove that each door turns a real runtime
//! request into the Pod those policies see and carries their verdict back to the client.
//! The templates used carry both K8sNativeValidation (CEL) and Rego code: the proxy,
//! `warn`/`dryrun` and most `serve` tests name the CEL engine (their expected messages are
//! CEL's), the Podman test and one `serve` test run on the default engines (Rego first).
//! The audit half of `scoped` (`audit.gatekeeper.sh`) is a unit test of
//! `policy::gatekeeper`; `portcullis audit` itself is tests/audit.rs.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox", "podman"];

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::gatekeeper::{
    self, create_review, denial, library_object, line, policy_dir, LibraryPolicy, DRYRUN,
    SCOPED_WARN_AT_ADMISSION_DENY_IN_AUDIT, WARN,
};
use common::podman::Podman;
use common::{free_port, http, text, unique, Proxy, Serve, World, IMAGE};
use serde_json::Value;

const PRIVILEGED: LibraryPolicy =
    LibraryPolicy::new("privileged-containers", "psp-privileged-container");
const HOST_NAMESPACE: LibraryPolicy = LibraryPolicy::new("host-namespaces", "psp-host-namespace");
/// `hostNetwork: false`: no Pod on the host's network.
const HOST_NETWORK: LibraryPolicy = LibraryPolicy::new("host-network-ports", "block_host_network");
const OWNER_LABEL: LibraryPolicy = LibraryPolicy::new("requiredlabels", "all-must-have-owner");

/// The library's host-network-ports message for a Pod named `pod`.
fn host_network_message(pod: &str) -> String {
    format!("The specified hostNetwork and hostPort are not allowed, pod: {pod}")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-gk-")
        .tempdir()
        .unwrap()
}

/// A proxy world enforcing `policies` on the CEL engine, with a decision log; the world
/// comes after the directory, so that it drops (stops) first.
fn world(policies: &[LibraryPolicy]) -> (tempfile::TempDir, World, PathBuf) {
    let dir = tempdir();
    let log = dir.path().join("decisions.jsonl");
    let policies = policy_dir(dir.path(), policies);
    let extra = format!("decisionLog: {{file: '{}'}}\n", log.display());
    let w = World::new(&gatekeeper::config(
        &policies,
        &["K8sNativeValidation"],
        &extra,
    ));
    (dir, w, log)
}

/// The decision log's records about the object named `name`.
fn decisions(log: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["name"] == name)
        .collect()
}

#[test]
fn ctr_run_privileged_is_refused_with_the_library_message_and_a_plain_container_runs() {
    let (_dir, w, _log) = world(&[PRIVILEGED]);
    let plain = unique("plain");
    let out = w.ctr(&[
        "run",
        "--rm",
        IMAGE,
        &plain,
        "echo",
        "hello-from-gatekeeper",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), w.logs());
    assert!(
        text(&out).contains("hello-from-gatekeeper"),
        "{}",
        text(&out)
    );

    let id = unique("privileged");
    let out = w.ctr(&["run", "--rm", "--privileged", IMAGE, &id, "true"]);
    assert!(!out.status.success(), "privileged admitted: {}", text(&out));
    let expected = denial(
        "psp-privileged-container",
        &format!("Privileged container is not allowed: {id}, securityContext.privileged: true"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&expected), "{stderr}\nwanted: {expected}");
    assert!(
        w.containers("default").is_empty(),
        "a container exists after the denial: {:?}",
        w.containers("default")
    );
}

#[test]
fn podman_run_pid_host_is_refused_by_the_hook_with_the_library_message_and_a_plain_one_runs() {
    let dir = tempdir();
    let policies = policy_dir(dir.path(), &[HOST_NAMESPACE]);
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, gatekeeper::config(&policies, &[], "")).unwrap();
    let podman = Podman::new(dir.path(), &config);

    let out = podman.container(&unique("plain"), &[], &["echo", "hello from podman"]);
    assert!(out.status.success(), "plain refused: {}", text(&out));
    assert!(text(&out).contains("hello from podman"), "{}", text(&out));

    let name = unique("pid-host");
    let out = podman.container(&name, &["--pid", "host"], &["true"]);
    assert!(!out.status.success(), "host PID admitted: {}", text(&out));
    // Podman's spec carries no Pod name: the view names the Pod by the container id.
    let err = text(&out);
    let expected = denial(
        "psp-host-namespace",
        "Sharing the host namespace is not allowed: ",
    );
    let said = format!("portcullis: {expected}");
    let id = err.split_once(&said).map(|(_, rest)| rest.trim_end());
    assert!(
        id.is_some_and(|id| id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())),
        "{err}\nwanted: {said}<container id>"
    );
    let containers = podman.containers();
    assert!(!containers.contains(&name), "{containers:?}");
}

/// Under `spec` (`warn`, `dryrun`), a host-network `ctr run` through the proxy runs and
/// prints `word`; every decision about it in the log admitted it with `warnings`
/// (built from the container id). Returns ctr's output.
fn host_network_runs(spec: &str, word: &str, warnings: impl Fn(&str) -> Value) -> String {
    let (_dir, w, log) = world(&[HOST_NETWORK.with_spec(spec)]);
    let id = unique(word);
    let out = w.ctr(&["run", "--rm", "--net-host", IMAGE, &id, "echo", word]);
    assert!(out.status.success(), "{}\n{}", text(&out), w.logs());
    assert!(text(&out).contains(word), "{}", text(&out));

    let records = decisions(&log, &id);
    assert!(!records.is_empty(), "no decision about {id} in the log");
    for r in &records {
        assert_eq!(r["allowed"], true, "{r}");
        assert_eq!(r["warnings"], warnings(&id), "{r}");
    }
    text(&out)
}

#[test]
fn warn_admits_the_violating_ctr_run_and_the_decision_log_carries_the_warning() {
    host_network_runs(WARN, "ran-anyway", |id| {
        serde_json::json!([line("psp-host-network", &host_network_message(id))])
    });
}

#[test]
fn dryrun_admits_the_violating_ctr_run_and_says_nothing_at_admission() {
    let out = host_network_runs(DRYRUN, "ran-silently", |_| serde_json::json!([]));
    assert!(!out.contains("psp-host-network"), "{out}");
}

/// `portcullis serve` on TCP with `policies` in its policyDir on `engines`, answering
/// `review` at `/validate`: the AdmissionReview's `response`.
fn serve_response(policies: &[LibraryPolicy], engines: &[&str], review: &Value) -> Value {
    let dir = tempdir();
    let policies = policy_dir(dir.path(), policies);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::serve(
        dir.path(),
        &gatekeeper::config(&policies, engines, ""),
        &["--listen", &listen],
    );
    let (head, body) = http(
        port,
        "POST",
        "/validate",
        &serde_json::to_vec(review).unwrap(),
    );
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{head}\n{body}\n{}",
        serve.log()
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    answer["response"].clone()
}

/// The library's Pod on the host network, as an AdmissionReview in `default`.
fn host_network_pod_review() -> Value {
    let pod = library_object(
        "host-network-ports",
        "samples/psp-host-network-ports/example_allowed_no_ports_host_network_true.yaml",
    );
    create_review(&pod, "default")
}

/// The `warnings` of a response (absent: none).
fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn serve_denies_warns_or_stays_silent_as_the_enforcement_action_says() {
    let review = host_network_pod_review();
    let message = host_network_message("nginx-host-network-true");

    let denied = serve_response(&[HOST_NETWORK], &["K8sNativeValidation"], &review);
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(
        denied["status"]["message"],
        denial("psp-host-network", &message),
        "{denied}"
    );

    let warned = serve_response(
        &[HOST_NETWORK.with_spec(WARN)],
        &["K8sNativeValidation"],
        &review,
    );
    assert_eq!(warned["allowed"], true, "{warned}");
    assert_eq!(warnings(&warned), [line("psp-host-network", &message)]);

    let silent = serve_response(
        &[HOST_NETWORK.with_spec(DRYRUN)],
        &["K8sNativeValidation"],
        &review,
    );
    assert_eq!(silent["allowed"], true, "{silent}");
    assert!(warnings(&silent).is_empty(), "{silent}");
    assert!(silent["status"].is_null(), "{silent}");
}

#[test]
fn scoped_warn_at_validation_and_deny_in_audit_warns_at_admission() {
    let policy = HOST_NETWORK.with_spec(SCOPED_WARN_AT_ADMISSION_DENY_IN_AUDIT);
    let response = serve_response(
        &[policy],
        &["K8sNativeValidation"],
        &host_network_pod_review(),
    );
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(
        warnings(&response),
        [line(
            "psp-host-network",
            &host_network_message("nginx-host-network-true")
        )]
    );
}

/// The library's three Namespaces judged by `all-must-have-owner` on `engines`:
/// (allowed, denied without the label, denied for the label's value) responses.
fn namespace_responses(engines: &[&str]) -> [Value; 3] {
    let samples = [
        "example_allowed.yaml",
        "example_disallowed.yaml",
        "example_disallowed_label_value.yaml",
    ];
    samples.map(|file| {
        let object = library_object(
            "requiredlabels",
            &format!("samples/all-must-have-owner/{file}"),
        );
        serve_response(&[OWNER_LABEL], engines, &create_review(&object, ""))
    })
}

#[test]
fn serve_denies_a_namespace_without_the_required_label_with_the_library_message() {
    let [allowed, unlabelled, mislabelled] = namespace_responses(&["K8sNativeValidation"]);
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert!(warnings(&allowed).is_empty(), "{allowed}");
    assert_eq!(unlabelled["allowed"], false, "{unlabelled}");
    // Both of the template's CEL validations fail, each a violation of its own line.
    let expected = format!(
        "{}\n{}",
        denial(
            "all-must-have-owner",
            "missing required label, requires all of: owner"
        ),
        line("all-must-have-owner", "regex mismatch")
    );
    assert_eq!(unlabelled["status"]["message"], expected, "{unlabelled}");
    assert_eq!(mislabelled["allowed"], false, "{mislabelled}");
    assert_eq!(
        mislabelled["status"]["message"],
        denial("all-must-have-owner", "regex mismatch"),
        "{mislabelled}"
    );
}

/// On Rego the library's requiredlabels template answers with the Constraint's
/// `parameters.message`.
#[test]
fn serve_denies_a_namespace_without_the_required_label_on_the_rego_engine() {
    let [allowed, unlabelled, mislabelled] = namespace_responses(&["Rego"]);
    assert_eq!(allowed["allowed"], true, "{allowed}");
    let expected = denial(
        "all-must-have-owner",
        "All namespaces must have an `owner` label that points to your company username",
    );
    for denied in [unlabelled, mislabelled] {
        assert_eq!(denied["allowed"], false, "{denied}");
        assert_eq!(denied["status"]["message"], expected, "{denied}");
    }
}

/// `portcullis proxy` with `config`, expected to exit on its own: (exit code, output).
fn proxy_that_does_not_start(dir: &Path, config: &str) -> (Option<i32>, String) {
    let config_path = dir.join("refused.yaml");
    std::fs::write(&config_path, config).unwrap();
    let output = dir.join("refused.log");
    let file = std::fs::File::create(&output).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["proxy", "--config"])
        .arg(&config_path)
        .arg("--containerd")
        .arg(dir.join("no-containerd.sock"))
        .arg("--listen")
        .arg(dir.join("refused.sock"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the proxy started: {}",
                std::fs::read_to_string(&output).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&output).unwrap())
}

/// A Gatekeeper mutation, as kept in a cluster's policy repository.
const ASSIGN: &str = "apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata:
  name: drop-privilege-escalation
spec:
  applyTo: [{groups: [''], kinds: [Pod], versions: [v1]}]
  location: spec.containers[name:*].securityContext.allowPrivilegeEscalation
  parameters: {assign: {value: false}}
";

#[test]
fn a_gatekeeper_kind_that_is_not_run_stops_the_proxy_naming_file_line_kind_and_the_fix() {
    let dir = tempdir();
    let policies = policy_dir(dir.path(), &[HOST_NAMESPACE]);
    // The second document of the Constraint's file.
    let file = policies.join("host-namespaces.psp-host-namespace.yaml");
    let constraint = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{constraint}---\n{ASSIGN}")).unwrap();
    let assign_line = constraint.lines().count() + 2;

    let (code, output) =
        proxy_that_does_not_start(dir.path(), &gatekeeper::config(&policies, &[], ""));
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {output}");
    let at = format!(
        "{}:{assign_line}: Assign \"drop-privilege-escalation\"",
        file.display()
    );
    assert!(output.contains(&at), "{output}\nwanted: {at}");
    for words in [
        "apiVersion mutations.gatekeeper.sh/v1 kind Assign is not run",
        "MutatingAdmissionPolicy",
        "policyDirIgnore",
        "{apiVersion: mutations.gatekeeper.sh/v1, kind: Assign}",
    ] {
        assert!(output.contains(words), "{output}\nwanted: {words}");
    }

    // The fix the message names: with the kind ignored, the proxy starts (listens).
    let ignore = "policyDirIgnore:\n- {apiVersion: mutations.gatekeeper.sh/v1, kind: Assign}\n";
    let started = Proxy::start(
        dir.path(),
        &dir.path().join("no-containerd.sock"),
        &gatekeeper::config(&policies, &[], ignore),
    );
    assert!(!started.log().contains("ERROR"), "{}", started.log());
}

#[test]
fn a_constraint_without_its_template_stops_the_proxy_naming_file_line_and_kind() {
    let dir = tempdir();
    let policies = policy_dir(dir.path(), &[HOST_NAMESPACE]);
    std::fs::remove_file(policies.join("host-namespaces.template.yaml")).unwrap();
    let constraint = policies.join("host-namespaces.psp-host-namespace.yaml");

    let (code, output) =
        proxy_that_does_not_start(dir.path(), &gatekeeper::config(&policies, &[], ""));
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {output}");
    let at = format!(
        "{}:1: K8sPSPHostNamespace \"psp-host-namespace\"",
        constraint.display()
    );
    assert!(output.contains(&at), "{output}\nwanted: {at}");
    assert!(
        output.contains("no ConstraintTemplate in policyDir defines it"),
        "{output}"
    );
    assert!(output.contains("add the template"), "{output}");
}
