//! The containerd door end to end: a private containerd, the proxy binary, the real `ctr`
//! and `docker` clients, and a webhook server the test controls.

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
];

use std::time::{Duration, Instant};

use common::webhook::{allow, deny, patch};
use common::{ok, text, unique, Dockerd, WebhookServer, World, IMAGE, IMAGE_LATEST};
use serde_json::{json, Value};

/// A config with one webhook at `url` for pods and pods/exec.
fn config(name: &str, kind: &str, url: &str, failure_policy: &str, extra: &str) -> String {
    format!(
        r#"proxy:
  runtimeClasses: {{standard: io.containerd.runc.v2, alt: io.containerd.runc.v1}}
{extra}
webhooks:
  - name: {name}
    kind: {kind}
    clientConfig: {{url: "{url}"}}
    rules:
      - operations: [CREATE, UPDATE, CONNECT]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods, pods/exec]
    failurePolicy: {failure_policy}
    timeoutSeconds: 5
    admissionReviewVersions: [v1]
"#
    )
}

fn object(review: &Value) -> &Value {
    &review["request"]["object"]
}

#[test]
fn admitted_container_runs_and_the_webhook_sees_a_pod() {
    let hook = WebhookServer::tcp(allow);
    let w = World::new(&config("allow.test", "Validating", &hook.url, "Fail", ""));
    let id = unique("admitted");
    let out = ok(w.ctr(&["run", "--rm", IMAGE, &id, "echo", "hello-from-portcullis"]));
    assert!(out.contains("hello-from-portcullis"), "{out}\n{}", w.logs());

    let reviews = hook.requests();
    let create = reviews
        .iter()
        .find(|r| r["request"]["operation"] == "CREATE" && object(r)["kind"] == "Pod")
        .unwrap_or_else(|| panic!("no CREATE review: {reviews:?}"));
    let req = &create["request"];
    assert_eq!(create["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "pods"})
    );
    assert_eq!(req["namespace"], "default");
    assert_eq!(req["name"], id.as_str());
    assert_eq!(req["userInfo"]["username"], "root");
    assert_eq!(req["userInfo"]["uid"], "0");
    let container = &object(create)["spec"]["containers"][0];
    assert_eq!(container["image"], IMAGE);
    assert_eq!(
        container["command"],
        json!(["echo", "hello-from-portcullis"])
    );
    // ctr run also starts a task: Tasks/Create re-checks the stored container.
    assert!(
        reviews.len() >= 2,
        "Tasks/Create was not admitted: {reviews:?}"
    );
}

#[test]
fn denied_container_is_refused_with_the_webhook_message_and_never_exists() {
    let hook = WebhookServer::tcp(|r| deny(r, "busybox is not welcome here"));
    let w = World::new(&config("deny.test", "Validating", &hook.url, "Fail", ""));
    let out = w.ctr(&["run", "--rm", IMAGE, "denied", "true"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(
            r#"admission webhook "deny.test" denied the request: busybox is not welcome here"#
        ),
        "{msg}"
    );
    assert!(
        w.containers("default").is_empty(),
        "container exists after denial"
    );
}

#[test]
fn mutated_command_changes_what_the_container_prints() {
    let hook = WebhookServer::tcp(|r| {
        if object(r)["spec"]["containers"][0]["command"] == json!(["echo", "original"]) {
            patch(
                r,
                json!([{"op": "replace", "path": "/spec/containers/0/command", "value": ["echo", "mutated-by-webhook"]}]),
            )
        } else {
            allow(r)
        }
    });
    let w = World::new(&config("mutate.test", "Mutating", &hook.url, "Fail", ""));
    let out = ok(w.ctr(&["run", "--rm", IMAGE, &unique("mutated"), "echo", "original"]));
    assert!(
        out.contains("mutated-by-webhook") && !out.contains("original"),
        "{out}\n{}",
        w.logs()
    );
}

#[test]
fn a_mutating_admission_policy_sets_an_env_var_the_container_prints() {
    let w = World::new(&format!("policyDir: {}\n", common::GREETING_POLICY));
    let out = ok(w.ctr(&[
        "run",
        "--rm",
        IMAGE,
        &unique("greeting"),
        "sh",
        "-c",
        "echo greeting=$GREETING",
    ]));
    assert!(
        out.contains("greeting=hello-from-a-policy"),
        "{out}\n{}",
        w.logs()
    );
}

#[test]
fn mutated_runtime_class_changes_the_stored_runtime() {
    let hook = WebhookServer::tcp(|r| {
        if r["request"]["operation"] == "CREATE"
            && object(r)["spec"]["runtimeClassName"] == "standard"
        {
            patch(
                r,
                json!([{"op": "replace", "path": "/spec/runtimeClassName", "value": "alt"}]),
            )
        } else {
            allow(r)
        }
    });
    let w = World::new(&config("runtime.test", "Mutating", &hook.url, "Fail", ""));
    ok(w.ctr(&["containers", "create", IMAGE, "rc", "true"]));
    let info: Value =
        serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", "rc"]))).unwrap();
    assert_eq!(info["Runtime"]["Name"], "io.containerd.runc.v1", "{info}");
}

#[test]
fn update_to_a_privileged_spec_is_denied_and_the_stored_spec_is_kept() {
    let hook = WebhookServer::tcp(|r| {
        let privileged =
            object(r)["spec"]["containers"][0]["securityContext"]["privileged"] == true;
        if privileged {
            deny(r, "privileged containers are not allowed")
        } else {
            allow(r)
        }
    });
    let w = World::new(&config("priv.test", "Validating", &hook.url, "Fail", ""));
    ok(w.ctr(&["containers", "create", IMAGE, "upd", "sleep", "1"]));
    let privileged_spec = privileged_version(&w, "upd");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(update_spec(&w.proxy.socket, "upd", privileged_spec));
    let status = result.expect_err("privileged update was admitted");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(
        r#"admission webhook "priv.test" denied the request: privileged containers are not allowed"#
    ));

    let info: Value =
        serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", "upd"]))).unwrap();
    assert_ne!(
        info["Spec"]["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        41
    );
    let update = hook
        .requests()
        .into_iter()
        .find(|r| r["request"]["operation"] == "UPDATE")
        .expect("no UPDATE review");
    assert_eq!(
        update["request"]["oldObject"]["spec"]["containers"][0]["securityContext"]["privileged"],
        json!(false)
    );
}

/// The spec of container `id` as `ctr run --privileged` would make it: every capability,
/// no masked or read-only paths, all devices.
fn privileged_version(w: &World, id: &str) -> Value {
    let info: Value = serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", id]))).unwrap();
    let mut spec = info["Spec"].clone();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/runtime-specs/ctr/privileged.container.json"
        ))
        .unwrap(),
    )
    .unwrap();
    spec["process"]["capabilities"] = fixture["Spec"]["process"]["capabilities"].clone();
    spec["linux"]["maskedPaths"] = json!([]);
    spec["linux"]["readonlyPaths"] = json!([]);
    spec["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    spec
}

async fn update_spec(socket: &std::path::Path, id: &str, spec: Value) -> Result<(), tonic::Status> {
    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::{Container, UpdateContainerRequest};
    let channel = containerd_client::connect(socket).await.unwrap();
    let mut client = ContainersClient::new(channel);
    let container = Container {
        id: id.into(),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: serde_json::to_vec(&spec).unwrap(),
        }),
        ..Default::default()
    };
    let mut req = tonic::Request::new(UpdateContainerRequest {
        container: Some(container),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["spec".into()],
        }),
    });
    req.metadata_mut()
        .insert("containerd-namespace", "default".parse().unwrap());
    client.update(req).await.map(|_| ())
}

#[test]
fn exec_is_admitted_as_connect_on_pods_exec_with_the_process() {
    let hook = WebhookServer::tcp(|r| {
        if r["request"]["operation"] == "CONNECT" && object(r)["command"] == json!(["id", "-u"]) {
            deny(r, "no exec of id")
        } else {
            allow(r)
        }
    });
    let w = World::new(&config("exec.test", "Validating", &hook.url, "Fail", ""));
    let id = unique("execd");
    ok(w.ctr(&["run", "-d", IMAGE, &id, "sleep", "60"]));
    let out = ok(w.ctr(&["tasks", "exec", "--exec-id", "e1", &id, "echo", "exec-ok"]));
    assert!(out.contains("exec-ok"), "{out}");
    let denied = w.ctr(&["tasks", "exec", "--exec-id", "e2", &id, "id", "-u"]);
    assert!(!denied.status.success());
    assert!(
        text(&denied)
            .contains(r#"admission webhook "exec.test" denied the request: no exec of id"#),
        "{}",
        text(&denied)
    );

    let connect = hook
        .requests()
        .into_iter()
        .find(|r| r["request"]["operation"] == "CONNECT")
        .unwrap();
    let req = &connect["request"];
    assert_eq!(req["subResource"], "exec");
    assert_eq!(req["kind"]["kind"], "PodExecOptions");
    assert_eq!(req["object"]["process"]["user"]["uid"], 0);
    assert_eq!(req["object"]["pod"]["metadata"]["name"], id.as_str());
}

#[test]
fn task_create_exposes_the_runc_binary_to_policies() {
    let hook = WebhookServer::tcp(|r| {
        let annotations = &object(r)["metadata"]["annotations"];
        if annotations["portcullis.dev/runc-binary"] == "/usr/local/bin/not-runc" {
            deny(r, "unapproved runc binary")
        } else {
            allow(r)
        }
    });
    // Runc binaries a caller may name are allow-listed (the default allows none); past the
    // allow-list, policies see the binary.
    let tasks = "  tasks: {runcBinaries: [/usr/sbin/runc, /usr/local/bin/not-runc]}";
    let w = World::new(&config("runc.test", "Validating", &hook.url, "Fail", tasks));
    ok(w.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        "/usr/sbin/runc",
        IMAGE,
        "rb1",
        "true",
    ]));
    let out = w.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        "/usr/local/bin/not-runc",
        IMAGE,
        "rb2",
        "true",
    ]);
    assert!(
        text(&out).contains("unapproved runc binary"),
        "{}",
        text(&out)
    );
}

#[test]
fn events_stream_through_the_proxy() {
    let hook = WebhookServer::tcp(allow);
    let w = World::new(&config("allow.test", "Validating", &hook.url, "Fail", ""));
    let log = w.dir.path().join("events.log");
    let mut events = std::process::Command::new("ctr")
        .arg("--address")
        .arg(&w.proxy.socket)
        .arg("events")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    ok(w.ctr(&["run", "--rm", IMAGE, &unique("ev"), "true"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains("/tasks/exit") {
        std::thread::sleep(Duration::from_millis(100));
        seen = std::fs::read_to_string(&log).unwrap();
    }
    let _ = events.kill();
    let _ = events.wait();
    for topic in ["/containers/create", "/tasks/start", "/tasks/exit"] {
        assert!(
            seen.contains(topic),
            "{topic} missing from the event stream:\n{seen}"
        );
    }
}

#[test]
fn proxy_keeps_serving_across_a_containerd_restart() {
    let hook = WebhookServer::tcp(allow);
    let mut w = World::new(&config("allow.test", "Validating", &hook.url, "Fail", ""));
    ok(w.ctr(&["version"]));
    w.containerd.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = w.ctr(&[
            "run",
            "--rm",
            IMAGE,
            &unique("after-restart"),
            "echo",
            "still-here",
        ]);
        if out.status.success() {
            assert!(text(&out).contains("still-here"));
            return;
        }
        last = text(&out);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "proxy did not recover after containerd restarted: {last}\n{}",
        w.logs()
    );
}

#[test]
fn unreachable_webhook_fails_closed_under_fail() {
    let mut hook = WebhookServer::tcp(allow);
    let url = hook.url.clone();
    hook.stop();
    let w = World::new(&config("down.test", "Validating", &url, "Fail", ""));
    let out = w.ctr(&["run", "--rm", IMAGE, "down", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(r#"failed calling webhook "down.test""#),
        "{}",
        text(&out)
    );
    assert!(w.containers("default").is_empty());
}

#[test]
fn unreachable_webhook_is_skipped_under_ignore() {
    let mut hook = WebhookServer::tcp(allow);
    let url = hook.url.clone();
    hook.stop();
    let w = World::new(&config("down.test", "Validating", &url, "Ignore", ""));
    let out = ok(w.ctr(&["run", "--rm", IMAGE, &unique("ignored"), "echo", "through"]));
    assert!(out.contains("through"));
}

#[test]
fn webhook_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookServer::unix(dir.path().join("hook.sock"), |r| deny(r, "via unix socket"));
    let config = format!(
        r#"webhooks:
  - name: unix.test
    clientConfig: {{socket: "{}", path: /validate}}
    rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}}]
    admissionReviewVersions: [v1beta1]
"#,
        hook.socket.as_ref().unwrap().display()
    );
    let w = World::new(&config);
    let out = w.ctr(&["run", "--rm", IMAGE, "u", "true"]);
    assert!(text(&out).contains("via unix socket"), "{}", text(&out));
    assert_eq!(hook.requests()[0]["apiVersion"], "admission.k8s.io/v1beta1");
}

#[test]
fn docker_run_through_the_proxy_is_admitted_and_denied_with_the_message() {
    let hook = WebhookServer::tcp(|r| {
        if object(r)["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .contains(":latest")
        {
            deny(r, "the :latest tag is not allowed")
        } else {
            allow(r)
        }
    });
    let dir = tempfile::Builder::new()
        .prefix("portcullis-docker-")
        .tempdir()
        .unwrap();
    let docker_socket = dir.path().join("docker/docker.sock");
    // dockerd names its runc state root (`<exec-root>/runtime-runc`) in the container's
    // runtime options; a private exec root must be allow-listed.
    let extra = format!(
        "  docker: {}\n  tasks: {{runcRoots: [{}]}}",
        docker_socket.display(),
        dir.path().join("docker/exec/runtime-runc").display()
    );
    let w = World::new(&config(
        "latest.test",
        "Validating",
        &hook.url,
        "Fail",
        &extra,
    ));
    let docker = Dockerd::start(dir.path(), &w.proxy.socket);
    ok(docker.docker(&["load", "-i", common::image_tar().to_str().unwrap()]));

    let out = docker.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:1.36",
        "echo",
        "docker-admitted",
    ]);
    assert!(
        text(&out).contains("docker-admitted"),
        "{}\n{}\n{}",
        text(&out),
        w.logs(),
        docker.log()
    );
    let out = docker.docker(&["run", "--rm", "--network", "none", "busybox:latest", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            r#"admission webhook "latest.test" denied the request: the :latest tag is not allowed"#
        ),
        "{}",
        text(&out)
    );
    let images: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r["request"]["namespace"] == "moby")
        .map(|r| {
            object(r)["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        images.iter().any(|i| i == "busybox:1.36"),
        "dockerd's image was not resolved: {images:?}"
    );
    let _ = IMAGE_LATEST;
}

#[test]
fn raw_conversion_shows_the_request_and_applies_patches_to_it() {
    let hook = WebhookServer::tcp(|r| {
        let spec = &object(r)["container"]["spec"];
        if spec["process"]["args"] == json!(["echo", "raw-original"]) {
            patch(
                r,
                json!([{"op": "replace", "path": "/container/spec/process/args/1", "value": "raw-patched"}]),
            )
        } else {
            allow(r)
        }
    });
    let w = World::new(&config(
        "raw.test",
        "Mutating",
        &hook.url,
        "Fail",
        "  conversion: raw",
    ));
    let id = unique("raw");
    let out = ok(w.ctr(&["run", "--rm", IMAGE, &id, "echo", "raw-original"]));
    assert!(out.contains("raw-patched"), "{out}\n{}", w.logs());
    let create = hook.requests().into_iter().next().unwrap();
    let container = &object(&create)["container"];
    assert_eq!(container["id"], id.as_str());
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["runtime"]["name"], "io.containerd.runc.v2");
    assert!(
        container["spec"]["ociVersion"].is_string(),
        "spec not decoded: {container}"
    );
}

#[test]
fn a_mutation_that_cannot_be_written_back_refuses_the_container_naming_the_field() {
    let hook = WebhookServer::tcp(|r| {
        if r["request"]["operation"] == "CREATE" {
            patch(
                r,
                json!([{"op": "replace", "path": "/spec/hostNetwork", "value": true}]),
            )
        } else {
            allow(r)
        }
    });
    let w = World::new(&config("hostnet.test", "Mutating", &hook.url, "Fail", ""));
    let out = w.ctr(&["run", "--rm", IMAGE, &unique("unwritable"), "true"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("/spec/hostNetwork"), "{msg}");
    assert!(w.containers("default").is_empty());
}

#[test]
fn every_decision_is_a_line_in_the_decision_log() {
    let hook = WebhookServer::tcp(|r| {
        if object(r)["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("refused")
        {
            deny(r, "not this one")
        } else {
            allow(r)
        }
    });
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("decisions.jsonl");
    let config = format!(
        "{}decisionLog: {{file: {}}}\n",
        config("log.test", "Validating", &hook.url, "Fail", ""),
        log.display()
    );
    let w = World::new(&config);
    ok(w.ctr(&["run", "--rm", IMAGE, &unique("logged"), "true"]));
    assert!(!w
        .ctr(&["run", "--rm", IMAGE, &unique("refused"), "true"])
        .status
        .success());
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let denied: Vec<&Value> = records.iter().filter(|r| r["allowed"] == false).collect();
    assert_eq!(denied.len(), 1, "{records:?}");
    let d = denied[0];
    assert_eq!(d["door"], "proxy");
    assert_eq!(d["operation"], "CREATE");
    assert_eq!(d["namespace"], "default");
    assert_eq!(d["images"], json!([IMAGE]));
    assert_eq!(d["caller"]["username"], "root");
    assert_eq!(d["policies"][0]["policy"], "log.test");
    assert_eq!(d["policies"][0]["outcome"], "denied");
    assert!(d["message"].as_str().unwrap().contains("not this one"));
    assert!(d["latencyMicros"].as_u64().is_some());
    // The admitted container: Create and the Tasks/Create re-check.
    assert!(
        records.iter().filter(|r| r["allowed"] == true).count() >= 2,
        "{records:?}"
    );
}

#[test]
fn pod_security_labels_on_the_namespace_are_enforced() {
    let config = "namespaces:\n  default: {labels: {pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/warn: restricted}}\n";
    let w = World::new(config);
    // ctr applies no seccomp profile unless asked: that container is Unconfined, which
    // baseline forbids. With the runtime default profile it is admitted.
    let out = w.ctr(&["run", "--rm", IMAGE, &unique("unconfined"), "true"]);
    assert!(text(&out).contains("seccompProfile"), "{}", text(&out));
    let out = ok(w.ctr(&[
        "run",
        "--rm",
        "--seccomp",
        IMAGE,
        &unique("baseline-ok"),
        "echo",
        "baseline-admits-this",
    ]));
    assert!(out.contains("baseline-admits-this"), "{out}");
    let out = w.ctr(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        &unique("privileged"),
        "true",
    ]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(r#"violates PodSecurity "baseline:latest""#) && msg.contains("privileged"),
        "{msg}"
    );
    let out = w.ctr(&[
        "run",
        "--rm",
        "--net-host",
        IMAGE,
        &unique("hostnet"),
        "true",
    ]);
    assert!(
        text(&out).contains("host namespaces (hostNetwork=true)"),
        "{}",
        text(&out)
    );
    assert!(w.containers("default").is_empty());
}

#[test]
fn the_runtime_class_rule_rewrites_a_reserved_runtime_in_containerd() {
    let config =
        "proxy:\n  runtimeClasses: {standard: io.containerd.runc.v2, alt: io.containerd.runc.v1}\n\
                  runtimeClass: {reservedRuntimes: [standard], fallbackRuntime: alt}\n";
    let w = World::new(config);
    let id = unique("reserved");
    ok(w.ctr(&["containers", "create", IMAGE, &id, "true"]));
    let info: Value =
        serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", &id]))).unwrap();
    assert_eq!(info["Runtime"]["Name"], "io.containerd.runc.v1", "{info}");
    // And the rewritten container runs.
    let out = ok(w.ctr(&[
        "run",
        "--rm",
        IMAGE,
        &unique("rewritten"),
        "echo",
        "on-the-fallback",
    ]));
    assert!(out.contains("on-the-fallback"), "{out}");
}

#[test]
fn a_cel_policy_and_a_restricted_namespace_deny_a_bind_mount() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("no-hostpath.yaml"),
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-hostpath}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
    - expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"
      messageExpression: "'hostPath volumes are not allowed: ' + object.spec.volumes.filter(v, has(v.hostPath)).map(v, v.hostPath.path).join(', ')"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-hostpath-everywhere}
spec:
  policyName: no-hostpath
  validationActions: [Deny]
"#,
    )
    .unwrap();
    let config = format!(
        "policyDir: {}\nnamespaces:\n  default: {{labels: {{pod-security.kubernetes.io/enforce: restricted}}}}\n",
        policies.path().display()
    );
    let w = World::new(&config);
    let host_dir = w.dir.path().join("shared-data");
    std::fs::create_dir_all(&host_dir).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        host_dir.display()
    );

    // The restricted namespace refuses it (and much else about a root busybox).
    let out = w.ctr(&[
        "run",
        "--rm",
        "--mount",
        &mount,
        IMAGE,
        &unique("restricted"),
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(r#"violates PodSecurity "restricted:latest""#),
        "{}",
        text(&out)
    );

    // In a namespace without Pod Security labels, the CEL policy alone refuses the mount
    // and admits the same container without it.
    ok(w.ctr(&[
        "-n",
        "team",
        "images",
        "import",
        common::image_tar().to_str().unwrap(),
    ]));
    let out = w.ctr(&[
        "-n",
        "team",
        "run",
        "--rm",
        "--mount",
        &mount,
        IMAGE,
        &unique("bind"),
        "true",
    ]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("ValidatingAdmissionPolicy 'no-hostpath' with binding 'no-hostpath-everywhere' denied request")
            && msg.contains(&format!("hostPath volumes are not allowed: {}", host_dir.display())),
        "{msg}"
    );
    let out = ok(w.ctr(&[
        "-n",
        "team",
        "run",
        "--rm",
        IMAGE,
        &unique("nobind"),
        "echo",
        "no-mount-ok",
    ]));
    assert!(out.contains("no-mount-ok"));
    assert!(w.containers("team").is_empty());
}
