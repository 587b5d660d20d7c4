//! The fuzz targets' seed corpora, made from tests/fixtures: real container records and
//! OCI specs (runtime-specs, gojson), Kubernetes' Pod Security fixtures, the
//! gatekeeper-library templates and constraints, the example configs; the protobuf and
//! HTTP/2 seeds are encoded here from the same records. Small on purpose (the repository
//! keeps them): a sample of each family, not every fixture.

use std::path::{Path, PathBuf};

use base64::Engine;
use containerd_client::services::v1::{
    container::Runtime, Container, CreateContainerRequest, CreateImageRequest, CreateTaskRequest,
    ExecProcessRequest, Image, UpdateContainerRequest, UpdateImageRequest, UpdateTaskRequest,
};
use containerd_client::types::Descriptor;
use k8s_cri::v1 as cri;
use prost::Message;
use serde_json::{json, Value};

/// (target, file name, bytes).
pub type Seed = (&'static str, String, Vec<u8>);

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn stem(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .unwrap_or_default();
    format!(
        "{}-{}",
        parent.to_string_lossy(),
        name.split('.').next().unwrap_or("x")
    )
}

pub fn all(root: &Path) -> Vec<Seed> {
    let fixtures = root.join("tests/fixtures");
    let specs = fixtures.join("runtime-specs");
    let mut records = Vec::new();
    for tool in ["ctr", "docker"] {
        records.extend(json_files(&specs.join(tool), ".container.json"));
    }
    let mut out = Vec::new();
    for path in &records {
        let info: Value = serde_json::from_slice(&read(path)).expect("record JSON");
        out.extend(containerd(&stem(path), &info));
        out.push(("oci_spec", stem(path), read(path)));
    }
    let mut configs = json_files(&specs.join("podman"), ".config.json");
    configs.extend(json_files(&fixtures.join("gojson"), ".config.json"));
    for path in &configs {
        out.push(("oci_spec", stem(path), read(path)));
    }
    for state in json_files(&specs.join("podman"), ".state.json") {
        let config = PathBuf::from(state.to_string_lossy().replace(".state.", ".config."));
        let mut bytes = read(&state);
        bytes.push(0);
        bytes.extend(read(&config));
        out.push(("hook", stem(&state), bytes));
    }
    if let Some(first) = out.iter().find(|s| s.0 == "containerd_request").cloned() {
        out.extend(frames(&first.2[1..]));
    }
    out.extend(cri_requests());
    out.extend(reviews(&fixtures.join("pod-security")));
    out.extend(image_reviews());
    out.extend(webhook_responses());
    out.extend(configs_and_policies(root));
    out
}

/// The seven admitted containerd requests for one recorded container.
fn containerd(name: &str, info: &Value) -> Vec<Seed> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let spec = serde_json::to_vec(&info["Spec"]).expect("spec");
    let container = Container {
        id: s(&info["ID"]),
        image: s(&info["Image"]),
        labels: serde_json::from_value(info["Labels"].clone()).unwrap_or_default(),
        runtime: Some(Runtime {
            name: s(&info["Runtime"]["Name"]),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: spec,
        }),
        snapshotter: s(&info["Snapshotter"]),
        snapshot_key: s(&info["SnapshotKey"]),
        ..Default::default()
    };
    let any = |url: &str, v: &Value| prost_types::Any {
        type_url: format!("types.containerd.io/opencontainers/runtime-spec/1/{url}"),
        value: serde_json::to_vec(v).expect("json"),
    };
    let image = Image {
        name: container.image.clone(),
        target: Some(Descriptor {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 1234,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mask = |paths: &[&str]| prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    };
    let messages: [Vec<u8>; 7] = [
        CreateContainerRequest {
            container: Some(container.clone()),
        }
        .encode_to_vec(),
        UpdateContainerRequest {
            container: Some(container.clone()),
            update_mask: Some(mask(&["labels", "spec"])),
        }
        .encode_to_vec(),
        CreateTaskRequest {
            container_id: container.id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        UpdateTaskRequest {
            container_id: container.id.clone(),
            resources: Some(any("LinuxResources", &info["Spec"]["linux"]["resources"])),
            ..Default::default()
        }
        .encode_to_vec(),
        ExecProcessRequest {
            container_id: container.id.clone(),
            exec_id: "exec1".into(),
            spec: Some(any("Process", &info["Spec"]["process"])),
            ..Default::default()
        }
        .encode_to_vec(),
        CreateImageRequest {
            image: Some(image.clone()),
            ..Default::default()
        }
        .encode_to_vec(),
        UpdateImageRequest {
            image: Some(image.clone()),
            update_mask: Some(mask(&["target"])),
            ..Default::default()
        }
        .encode_to_vec(),
    ];
    let mut seeds = super::lookups::containerd(name, &container, &image, &messages);
    seeds.extend(by_method("containerd_request", name, messages));
    seeds
}

/// A client's HTTP/2 bytes after the preface: SETTINGS, then one admitted call per
/// stream (headers, then the gRPC-framed `message`), split and padded differently.
fn frames(message: &[u8]) -> Vec<Seed> {
    use bytes::BytesMut;
    use portcullis::net::h2;
    let calls = [
        "/containerd.services.containers.v1.Containers/Create",
        "/containerd.services.tasks.v1.Tasks/Exec",
        "/runtime.v1.RuntimeService/RunPodSandbox",
        "/containerd.services.version.v1.Version/Version",
    ];
    let mut out = Vec::new();
    for (i, max_frame) in [16_384usize, 7].into_iter().enumerate() {
        let mut buf = BytesMut::new();
        h2::write_settings(&mut buf, false);
        for (n, path) in calls.iter().enumerate() {
            let mut block = Vec::new();
            for (k, v) in [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("containerd-namespace", "default"),
            ] {
                h2::hpack::encode_field(&mut block, k.as_bytes(), v.as_bytes());
            }
            let stream = 1 + 2 * n as u32;
            h2::write_headers(&mut buf, stream, &block, false, max_frame);
            let framed = portcullis::proxy::grpc::frame(message);
            h2::write_data(&mut buf, stream, &framed, true, max_frame.max(64));
        }
        out.push(("grpc_frames", format!("calls-{i}"), buf.to_vec()));
    }
    out
}

fn cri_requests() -> Vec<Seed> {
    let sandbox = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        labels: [("app".to_string(), "web".to_string())].into(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                seccomp: Some(cri::SecurityProfile {
                    profile_type: 0,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "docker.io/library/busybox:1.36".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), "sleep 1".into()],
        envs: vec![cri::KeyValue {
            key: "A".into(),
            value: "b".into(),
        }],
        mounts: vec![cri::Mount {
            container_path: "/data".into(),
            host_path: "/var/lib/kubelet/pods/uid-1/volumes/x".into(),
            ..Default::default()
        }],
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                cpu_quota: 50_000,
                cpu_period: 100_000,
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    drop_capabilities: vec!["ALL".into()],
                    ..Default::default()
                }),
                no_new_privs: true,
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let messages: [Vec<u8>; 8] = [
        cri::RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: String::new(),
        }
        .encode_to_vec(),
        cri::CreateContainerRequest {
            pod_sandbox_id: "sandbox1".into(),
            config: Some(container.clone()),
            sandbox_config: Some(sandbox.clone()),
        }
        .encode_to_vec(),
        cri::UpdateContainerResourcesRequest {
            container_id: "c1".into(),
            linux: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 128 << 20,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
        cri::ExecRequest {
            container_id: "c1".into(),
            cmd: vec!["sh".into()],
            tty: true,
            stdin: true,
            ..Default::default()
        }
        .encode_to_vec(),
        cri::ExecSyncRequest {
            container_id: "c1".into(),
            cmd: vec!["id".into()],
            timeout: 5,
        }
        .encode_to_vec(),
        cri::AttachRequest {
            container_id: "c1".into(),
            stdin: true,
            ..Default::default()
        }
        .encode_to_vec(),
        cri::PortForwardRequest {
            pod_sandbox_id: "sandbox1".into(),
            port: vec![80],
        }
        .encode_to_vec(),
        cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: "docker.io/library/busybox:latest".into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: Some(sandbox.clone()),
        }
        .encode_to_vec(),
    ];
    let mut seeds = super::lookups::cri(&sandbox, &container, &messages);
    seeds.extend(by_method("cri_request", "cri", messages));
    seeds
}

/// One seed per message for `target`, whose first byte picks the method: the index of the
/// message in `messages`, which lists them in the target's method order.
fn by_method(
    target: &'static str,
    name: &str,
    messages: impl IntoIterator<Item = Vec<u8>>,
) -> Vec<Seed> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut bytes = vec![i as u8];
            bytes.extend(m);
            (target, format!("{name}-{i}"), bytes)
        })
        .collect()
}

fn yaml(path: &Path) -> Value {
    let text = String::from_utf8(read(path)).expect("UTF-8 fixture");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// AdmissionReviews of a sample of the Pod Security fixtures (the newest version's pass
/// and fail Pods of both levels), at /validate and /mutate; a few raw Pods.
fn reviews(pss: &Path) -> Vec<Seed> {
    let mut out = Vec::new();
    for level in ["restricted", "baseline"] {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(pss.join(level))
            .expect("pod-security")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        versions.sort_by_key(|p| {
            let v = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            v.trim_start_matches("v1.").parse::<u32>().unwrap_or(0)
        });
        let newest = versions.last().expect("a version").clone();
        for verdict in ["pass", "fail"] {
            for (i, path) in json_files(&newest.join(verdict), ".yaml")
                .iter()
                .enumerate()
            {
                if i % 5 != 0 {
                    continue;
                }
                let pod = yaml(path);
                let review = json!({
                    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "request": {
                        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                        "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "name": pod["metadata"]["name"], "namespace": "default",
                        "operation": "CREATE",
                        "userInfo": {"username": "admin", "groups": ["system:masters"]},
                        "object": pod, "dryRun": false
                    }
                });
                let name = format!("{level}-{verdict}-{}", stem(path));
                let pick = (i / 5 % 2) as u8;
                let mut bytes = vec![pick];
                bytes.extend(serde_json::to_vec(&review).expect("json"));
                out.push(("admission_review", name.clone(), bytes));
                if i % 20 == 0 {
                    let mut raw = vec![2u8];
                    raw.extend(serde_json::to_vec(&review["request"]["object"]).expect("json"));
                    out.push(("admission_review", format!("{name}-raw"), raw));
                }
            }
        }
    }
    out
}

fn image_reviews() -> Vec<Seed> {
    let review = |images: &[&str], ns: &str| {
        let containers: Vec<Value> = images.iter().map(|i| json!({"image": i})).collect();
        json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
            "spec": {"containers": containers, "namespace": ns,
                     "annotations": {"alpha.image-policy.k8s.io/break-glass": "false"}}
        })
    };
    [
        review(&["docker.io/library/busybox:1.36"], "default"),
        review(&["busybox", "docker.io/x/miner:1"], "kube-system"),
        review(
            &[&format!(
                "registry.example.com/team/app@sha256:{}",
                "cd".repeat(32)
            )],
            "",
        ),
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| {
        (
            "image_review",
            format!("review-{i}"),
            serde_json::to_vec(v).expect("json"),
        )
    })
    .collect()
}

fn webhook_responses() -> Vec<Seed> {
    let patch = json!([
        {"op": "add", "path": "/metadata/labels/team", "value": "a"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "docker.io/library/busybox:1.37"},
        {"op": "remove", "path": "/metadata/labels/app"}
    ]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    let v1 = |response: Value| json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    [
        v1(json!({"uid": "fuzz-uid", "allowed": true})),
        v1(json!({"uid": "fuzz-uid", "allowed": false,
                  "status": {"code": 403, "message": "no", "reason": "Forbidden"},
                  "warnings": ["w"], "auditAnnotations": {"a": "b"}})),
        v1(json!({"uid": "fuzz-uid", "allowed": true, "patchType": "JSONPatch", "patch": b64})),
        json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
               "response": {"allowed": true, "patch": b64}}),
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| {
        (
            "webhook_response",
            format!("response-{i}"),
            serde_json::to_vec(v).expect("json"),
        )
    })
    .collect()
}

/// The example configs; every gatekeeper-library template with its sample constraint,
/// and the fixtures' policyDir.
fn configs_and_policies(root: &Path) -> Vec<Seed> {
    let mut out = Vec::new();
    for path in json_files(&root.join("examples"), ".yaml") {
        out.push(("config_yaml", stem(&path), read(&path)));
    }
    let library = root.join("tests/fixtures/gatekeeper-library");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&library)
        .expect("gatekeeper-library")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("template.yaml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut bytes = read(&dir.join("template.yaml"));
        let samples = dir.join("samples");
        let first = std::fs::read_dir(&samples)
            .ok()
            .and_then(|d| d.filter_map(|e| e.ok().map(|e| e.path())).min());
        if let Some(constraint) = first.map(|d| d.join("constraint.yaml")) {
            if constraint.is_file() {
                bytes.extend(b"\n---\n");
                bytes.extend(read(&constraint));
            }
        }
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        out.push(("policy_dir", name, bytes));
    }
    for path in json_files(&root.join("tests/fixtures/policies/greeting"), ".yaml") {
        out.push(("policy_dir", stem(&path), read(&path)));
    }
    out
}
