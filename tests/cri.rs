//! The CRI door's real components: containerd's own CRI plugin (with a pod network and
//! local images), driven by a Rust CRI client acting as the kubelet — over `runtime.v1` and
//! `runtime.v1alpha2` — directly and through `portcullis proxy` (harness:
//! `tests/common/cri.rs`).

#[path = "cri/clients.rs"]
mod clients;
mod common;
#[path = "cri/mutate.rs"]
mod mutate;
#[path = "cri/resize.rs"]
mod resize;
#[path = "cri/signatures.rs"]
mod signatures;

use std::time::{Duration, Instant};

use common::cri::{
    container_state, pod_config, sandbox_security, security, uid, CriApi, CriClient, CriWorld, Via,
    CONTAINER_EXITED, CONTAINER_RUNNING, PAUSE_IMAGE,
};
use common::IMAGE;
use tonic::Code;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "cni",
    "ip",
    "go",
    "grpc-go",
    "protobuf-go",
    "python3-grpcio",
    "grpcio-venv",
    "docker-registry",
    "skopeo",
    "openssl",
];

/// The proxy passing every CRI call on unchecked.
const RELAY: &str = "proxy:\n  cri: relay\n";

/// The CRI door under Pod Security baseline, with this harness's kubelet directories.
const ADMIT_BASELINE: &str = "proxy:
  cri: admit
  kubelet: {rootDir: '{dir}/kubelet', podLogsDir: '{dir}/pods'}
namespaces:
  \"*\": {labels: {pod-security.kubernetes.io/enforce: baseline}}
";

/// A pod whose one container prints a line and exits 3, run to its end and torn down as
/// the kubelet would, through `c`.
fn plain_pod_runs(w: &CriWorld, c: &CriClient, via: Via) {
    let at = format!("{:?} via {via:?}", c.api);
    let name = format!("plain-{:?}-{via:?}", c.api).to_lowercase();
    let pod = pod_config(w.dir.path(), &name, "default", &uid());
    let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));

    // The CNI plugin gave the pod an address on the instance's subnet.
    let status = w.expect(&format!("PodSandboxStatus {at}"), c.pod_status(&sandbox));
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let subnet = w.pod_subnet();
    assert!(
        ip.starts_with(subnet.trim_end_matches("0/24")),
        "{at}: pod IP {ip:?} is not in {subnet}\n{}",
        w.logs()
    );

    let command = ["sh", "-c", "echo hello-cri from $(hostname); exit 3"];
    let config = w.expect(
        &format!("the container's config {at}"),
        c.container_config(&pod, "main", IMAGE, &command),
    );
    let log = std::path::Path::new(&pod.log_directory).join(&config.log_path);
    let id = w.expect(
        &format!("CreateContainer {at}"),
        c.create_container(&sandbox, &pod, config),
    );
    w.expect(&format!("StartContainer {at}"), c.start(&id));
    let status = w.expect(
        &format!("ContainerStatus {at}"),
        c.wait_state(&id, CONTAINER_EXITED, Duration::from_secs(30)),
    );
    assert_eq!(
        (container_state(status.state), status.exit_code),
        (container_state(CONTAINER_EXITED), 3),
        "{at}: {status:?}\n{}",
        w.logs()
    );
    // CRI's log format: `TIME STREAM TAG LINE`.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.ends_with(&format!(" stdout F hello-cri from {name}"))),
        "{at}: {} holds {text:?}\n{}",
        log.display(),
        w.logs()
    );

    w.expect(
        &format!("Stop/RemovePodSandbox {at}"),
        c.stop_and_remove_pod(&sandbox),
    );
    let left = w.expect(&format!("ListPodSandbox {at}"), c.list_pods());
    assert!(left.iter().all(|p| p.id != sandbox), "{at}: {left:?}");
}

#[test]
fn a_plain_pod_runs_directly_and_through_the_proxy_with_cri_relay() {
    let w = CriWorld::new(RELAY);
    for via in [Via::Containerd, Via::Proxy] {
        for api in CriApi::ALL {
            let started = Instant::now();
            plain_pod_runs(&w, &w.client(via, api), via);
            eprintln!("{api:?} via {via:?}: {:?}", started.elapsed());
        }
    }
}

/// The positive controls of what an admitting proxy will refuse: `ExecSync` into a running
/// container and a privileged container both work when CRI calls are relayed.
#[test]
fn exec_sync_and_a_privileged_container_pass_with_cri_relay() {
    let w = CriWorld::new(RELAY);
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} via the proxy");
        let name = format!("exec-{api:?}").to_lowercase();
        let mut pod = pod_config(w.dir.path(), &name, "default", &uid());
        sandbox_security(&mut pod).privileged = true;
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        let config = c.container_config(&pod, "sleeper", IMAGE, &["sleep", "3600"]);
        let mut config = w.expect(&format!("the container's config {at}"), config);
        security(&mut config).privileged = true;
        let id = w.expect(
            &format!("CreateContainer {at}"),
            c.create_container(&sandbox, &pod, config),
        );
        w.expect(&format!("StartContainer {at}"), c.start(&id));
        let status = c.wait_state(&id, CONTAINER_RUNNING, Duration::from_secs(30));
        let status = w.expect(&format!("ContainerStatus {at}"), status);
        assert_eq!(status.state, CONTAINER_RUNNING, "{at}: {status:?}");

        // Privileged: every capability the host's bounding set allows (this test's own).
        let exec = c.exec_sync(&id, &["sh", "-c", "grep CapEff /proc/self/status"], 10);
        let out = w.expect(&format!("ExecSync {at}"), exec);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.exit_code, 0, "{at}: {out:?}");
        let host = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let bounding = host.lines().find_map(|l| l.strip_prefix("CapBnd:"));
        let bounding = bounding.unwrap_or_default().trim();
        assert_eq!(stdout.trim(), format!("CapEff:\t{bounding}"), "{at}");

        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}

/// `proxy.cri: refuse`: reads pass; the calls that make or enter containers are refused by
/// the proxy itself, naming the setting.
#[test]
fn cri_calls_that_create_are_refused_with_cri_refuse() {
    let w = CriWorld::new("proxy:\n  cri: refuse\n");
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} via the proxy");

        // Reads pass through, and containerd answers them.
        let v = w.expect(&format!("Version {at}"), c.version());
        assert_eq!(v.runtime_name, "containerd", "{at}: {v:?}");
        assert_eq!(
            v.runtime_api_version,
            format!("{api:?}").to_lowercase(),
            "{at}"
        );
        let pods = w.expect(&format!("ListPodSandbox {at}"), c.list_pods());
        assert!(pods.is_empty(), "{at}: {pods:?}");
        let image = w.expect(&format!("ImageStatus {at}"), c.image_status(IMAGE));
        assert!(
            image.is_some_and(|i| i.repo_tags.iter().any(|t| t == IMAGE)),
            "{at}"
        );
        let images = w.expect(&format!("ListImages {at}"), c.list_images());
        let tags: Vec<&String> = images.iter().flat_map(|i| &i.repo_tags).collect();
        for want in [IMAGE, PAUSE_IMAGE] {
            assert!(tags.iter().any(|t| *t == want), "{at}: {tags:?}");
        }

        // RunPodSandbox is refused by the proxy itself, naming the setting that would
        // let it through; containerd never sees it.
        let pod = pod_config(w.dir.path(), "refused", "default", &uid());
        w.refused(
            &format!("RunPodSandbox {at}"),
            c.run_pod(&pod),
            Code::PermissionDenied,
            &["portcullis", "RunPodSandbox", "proxy.cri"],
        );
        let direct = w.client(Via::Containerd, CriApi::V1);
        let pods = w.expect("ListPodSandbox direct", direct.list_pods());
        assert!(pods.is_empty(), "{at}: {pods:?}");

        // So are the other calls that make or enter containers, whatever they name.
        let denied = Code::PermissionDenied;
        let start = c.start("no-such-container");
        w.refused(
            &format!("StartContainer {at}"),
            start,
            denied,
            &["proxy.cri"],
        );
        let exec = c.exec_sync("no-such-container", &["true"], 5);
        w.refused(&format!("ExecSync {at}"), exec, denied, &["proxy.cri"]);
    }
}

/// With no `proxy.cri` at all (only the harness's kubelet directories) the CRI door admits: a plain sandbox is admitted, a
/// host-network one refused by Pod Security.
#[test]
fn the_cri_door_is_the_default() {
    let config = ADMIT_BASELINE.replace("  cri: admit\n", "");
    assert!(!config.contains("cri:"), "{config}");
    let w = CriWorld::new(&config);
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the proxy's default config");
        let name = format!("default-{api:?}").to_lowercase();
        let pod = pod_config(w.dir.path(), &name, "default", &uid());
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );

        let mut host = pod_config(w.dir.path(), &format!("{name}-host"), "default", &uid());
        sandbox_security(&mut host)
            .namespace_options
            .get_or_insert_with(Default::default)
            .network = k8s_cri::v1::NamespaceMode::Node as i32;
        w.refused(
            &format!("a hostNetwork RunPodSandbox {at}"),
            c.run_pod(&host),
            Code::PermissionDenied,
            &[
                r#"violates PodSecurity "baseline:latest""#,
                "host namespaces",
            ],
        );
    }
}

/// `proxy.cri: admit` under Pod Security `baseline`: the kubelet's plain pod is admitted
/// and runs; a privileged container, a host-network sandbox, an added `SYS_ADMIN` and a
/// hostPath mount of `/` are refused with Pod Security's message and never reach
/// containerd; an exec into a container containerd does not know is not found.
#[test]
fn the_cri_door_admits_plain_pods_and_refuses_what_baseline_forbids() {
    let w = CriWorld::new(ADMIT_BASELINE);
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        plain_pod_runs(&w, &c, Via::Proxy);
        let at = format!("{api:?} through the admitting proxy");
        let refused = |what: &str, result: Result<String, tonic::Status>, check: &str| {
            let baseline = r#"violates PodSecurity "baseline:latest""#;
            let what = format!("{what} {at}");
            w.refused(&what, result, Code::PermissionDenied, &[baseline, check]);
        };

        // A sandbox on the host's network.
        let mut host = pod_config(
            w.dir.path(),
            &format!("host-{api:?}").to_lowercase(),
            "default",
            &uid(),
        );
        sandbox_security(&mut host)
            .namespace_options
            .get_or_insert_with(Default::default)
            .network = k8s_cri::v1::NamespaceMode::Node as i32;
        refused(
            "a hostNetwork RunPodSandbox",
            c.run_pod(&host),
            "host namespaces",
        );

        // Containers of a plain sandbox.
        let name = format!("bad-{api:?}").to_lowercase();
        let pod = pod_config(w.dir.path(), &name, "default", &uid());
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        let container = |name: &str| {
            let config = c.container_config(&pod, name, IMAGE, &["true"]);
            w.expect(&format!("the container's config {at}"), config)
        };
        let mut privileged = container("privileged");
        security(&mut privileged).privileged = true;
        refused(
            "a privileged CreateContainer",
            c.create_container(&sandbox, &pod, privileged),
            "privileged",
        );
        let mut admin = container("admin");
        security(&mut admin)
            .capabilities
            .get_or_insert_with(Default::default)
            .add_capabilities = vec!["SYS_ADMIN".into()];
        refused(
            "a CreateContainer adding SYS_ADMIN",
            c.create_container(&sandbox, &pod, admin),
            "SYS_ADMIN",
        );
        let mut root = container("root");
        root.mounts.push(k8s_cri::v1::Mount {
            container_path: "/host".into(),
            host_path: "/".into(),
            readonly: true,
            ..Default::default()
        });
        refused(
            "a CreateContainer mounting the host's /",
            c.create_container(&sandbox, &pod, root),
            "hostPath",
        );
        let ids: Vec<String> = w
            .expect("ListContainers", c.list_containers())
            .into_iter()
            .filter(|c| c.pod_sandbox_id == sandbox)
            .map(|c| c.id)
            .collect();
        assert!(ids.is_empty(), "{at}: refused containers exist: {ids:?}");

        // An exec names a container the door looks up; one containerd does not know is
        // not found, before containerd is asked to run anything.
        let exec = c.exec_sync("no-such-container", &["true"], 5);
        w.refused(
            &format!("ExecSync into nothing {at}"),
            exec,
            Code::NotFound,
            &[],
        );
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}

/// `PullImage` through the CRI door is judged by the image rules, in the namespace of the
/// sandbox it is pulled for: `:latest` is refused before containerd looks for it; a tagged
/// image goes on to containerd (which, offline, cannot fetch it: its own error, not ours).
#[test]
fn the_cri_door_judges_image_pulls_by_the_image_rules() {
    let w = CriWorld::new("proxy:\n  cri: admit\nimages: {disallowLatest: true}\n");
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let pod = pod_config(w.dir.path(), "puller", "team", &uid());
        w.refused(
            &format!("PullImage of :latest {at}"),
            c.pull_image("docker.io/library/busybox:latest", Some(&pod)),
            Code::PermissionDenied,
            &["images.disallowLatest"],
        );
        // A tagged image goes on to containerd, whose pull from a closed loopback port
        // fails with its own error (and no traffic leaves the machine).
        let tagged = c.pull_image("127.0.0.1:1/busybox:1.36", Some(&pod));
        let status = tagged.expect_err("nothing listens on 127.0.0.1:1");
        assert!(
            !status.message().contains("portcullis")
                && !status.message().contains("policy")
                && status.message().contains("connection refused"),
            "{at}: not containerd's own pull error: {status:?}"
        );
    }
}

/// The kubelet names a container's image by its ID; the door judges it by a name the
/// image carries: the one the Pod asked for (`user_specified_image`, v1) or, without it,
/// its digest reference. `:latest` asked for is refused; `:1.36` of the same image runs.
#[test]
fn the_cri_door_judges_a_containers_image_by_a_name_it_carries() {
    let w = CriWorld::new(&format!(
        "{ADMIT_BASELINE}images: {{disallowLatest: true}}\n"
    ));
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        plain_pod_runs(&w, &c, Via::Proxy);
        if api != CriApi::V1 {
            continue; // v1alpha2 has no user_specified_image: nothing asked for `:latest`.
        }
        let at = format!("{api:?} through the admitting proxy");
        let pod = pod_config(w.dir.path(), "latest", "default", &uid());
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        let config = c.container_config(&pod, "latest", common::IMAGE_LATEST, &["true"]);
        let config = w.expect(&format!("the container's config {at}"), config);
        assert!(
            config
                .image
                .as_ref()
                .is_some_and(|i| i.image.starts_with("sha256:")),
            "{at}: the harness names images by ID, as the kubelet: {config:?}"
        );
        w.refused(
            &format!("CreateContainer of :latest {at}"),
            c.create_container(&sandbox, &pod, config),
            Code::PermissionDenied,
            &["images.disallowLatest"],
        );
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}

/// `ExecSync` is a CONNECT on `pods/exec` with the command, in the namespace and under
/// the name the sandbox was admitted with: a ValidatingAdmissionPolicy refusing `cat`
/// refuses that exec (kube-apiserver's wording) and lets `echo` run.
#[test]
fn the_cri_door_admits_execs_as_connect_on_pods_exec() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("no-cat.yaml"),
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-cat}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CONNECT], resources: [pods/exec]}]
  validations:
  - expression: "!object.command.exists(c, c == 'cat') && request.namespace == 'team' && request.name == 'execs'"
    message: no cat here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-cat}
spec: {policyName: no-cat, validationActions: [Deny]}
"#,
    )
    .unwrap();
    let w = CriWorld::new(&format!(
        "{ADMIT_BASELINE}policyDir: {}\n",
        policies.path().display()
    ));
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let (sandbox, id) = w.running_container(&c, "execs", "team", &at);

        let echo = w.expect(
            &format!("ExecSync echo {at}"),
            c.exec_sync(&id, &["echo", "hello-exec"], 10),
        );
        assert_eq!(
            (echo.exit_code, String::from_utf8_lossy(&echo.stdout).trim()),
            (0, "hello-exec"),
            "{at}: {echo:?}"
        );
        w.refused(
            &format!("ExecSync cat {at}"),
            c.exec_sync(&id, &["cat", "/etc/hostname"], 10),
            Code::PermissionDenied,
            &["no cat here", "ValidatingAdmissionPolicy 'no-cat'"],
        );
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}

/// A CRI call names its pod's namespace, which chooses the Pod Security level and the
/// exemptions: only the kubelet's uids (`proxy.criTrustedUids`, root by default) may make
/// the admitted calls. Here root is not listed, and its RunPodSandbox is refused.
#[test]
fn the_cri_door_refuses_callers_it_does_not_trust_to_name_a_namespace() {
    let w = CriWorld::new("proxy:\n  cri: admit\n  criTrustedUids: [4242]\n");
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let pod = pod_config(w.dir.path(), "untrusted", "kube-system", &uid());
        w.refused(
            &format!("an untrusted caller's RunPodSandbox {at}"),
            c.run_pod(&pod),
            Code::PermissionDenied,
            &["proxy.criTrustedUids"],
        );
        // Reads are not admitted calls: they pass.
        w.expect(&format!("ListPodSandbox {at}"), c.list_pods());
    }
}

/// A MutatingAdmissionPolicy's change to the Pod is written back into `CreateContainer`:
/// the env var it adds is in the running container.
#[test]
fn the_cri_door_writes_a_mutating_policys_change_into_the_container() {
    let w = CriWorld::new(&format!(
        "{ADMIT_BASELINE}policyDir: {}\n",
        common::GREETING_POLICY
    ));
    for api in CriApi::ALL {
        let c = w.client(Via::Proxy, api);
        let at = format!("{api:?} through the admitting proxy");
        let name = format!("greeting-{api:?}").to_lowercase();
        let pod = pod_config(w.dir.path(), &name, "default", &uid());
        let sandbox = w.expect(&format!("RunPodSandbox {at}"), c.run_pod(&pod));
        let command = ["sh", "-c", "echo greeting=$GREETING"];
        let config = c.container_config(&pod, "main", IMAGE, &command);
        let config = w.expect(&format!("the container's config {at}"), config);
        let log = std::path::Path::new(&pod.log_directory).join(&config.log_path);
        let id = w.expect(
            &format!("CreateContainer {at}"),
            c.create_container(&sandbox, &pod, config),
        );
        w.expect(&format!("StartContainer {at}"), c.start(&id));
        let done = c.wait_state(&id, common::cri::CONTAINER_EXITED, Duration::from_secs(30));
        w.expect(&format!("ContainerStatus {at}"), done);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("greeting=hello-from-a-policy"),
            "{at}: {text:?}\n{}",
            w.logs()
        );
        w.expect(
            &format!("Stop/RemovePodSandbox {at}"),
            c.stop_and_remove_pod(&sandbox),
        );
    }
}
