//! Seeds for the `*_lookups` targets: the requests of `containerd_request` and
//! `cri_request` with the answers a containerd holding what they name gives the proxy's own
//! calls, in the order the proxy makes them (`portcullis::fuzzing::containerd_lookups`).

use containerd_client::services::v1::snapshots::MountsResponse;
use containerd_client::services::v1::{Container, GetContainerResponse, GetImageResponse, Image};
use k8s_cri::v1 as cri;
use prost::Message;

use super::seeds::Seed;

/// An answer as the harness's containerd gives it: a gRPC-framed message.
fn framed(message: &impl Message) -> Vec<u8> {
    [vec![0], message.encode_to_vec()].concat()
}

/// Where each of the proxy's own calls finds its answer in an input
/// (`portcullis::fuzzing::containerd::LOOKUPS`).
const GET_CONTAINER: usize = 0;
const GET_IMAGE: usize = 1;
const SNAPSHOT_MOUNTS: usize = 4;
const IMAGE_STATUS: usize = 5;
const LIST_CONTAINERS: usize = 6;
const SANDBOX_STATUS: usize = 7;
const CONTAINER_STATUS: usize = 8;

/// The seed bytes: method, answer count, each answer (u16 length, bytes) at its call's
/// index (the ones not given: empty), the request.
fn seed(
    target: &'static str,
    name: String,
    method: usize,
    answers: &[(usize, Vec<u8>)],
    message: &[u8],
) -> Seed {
    let count = answers.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let mut bytes = vec![method as u8, count as u8];
    for i in 0..count {
        let answer = answers
            .iter()
            .find(|(at, _)| *at == i)
            .map(|(_, a)| a.as_slice())
            .unwrap_or_default();
        bytes.extend((answer.len() as u16).to_be_bytes());
        bytes.extend(answer);
    }
    bytes.extend(message);
    (target, name, bytes)
}

/// `messages` in `containerd_request`'s method order, answered with the stored
/// `container`, its snapshot's mounts, or `image`.
pub fn containerd(
    name: &str,
    container: &Container,
    image: &Image,
    messages: &[Vec<u8>],
) -> Vec<Seed> {
    let stored = framed(&GetContainerResponse {
        container: Some(container.clone()),
    });
    let mounts = framed(&MountsResponse::default());
    let pulled = framed(&GetImageResponse {
        image: Some(image.clone()),
    });
    let container = vec![(GET_CONTAINER, stored), (SNAPSHOT_MOUNTS, mounts)];
    let image = vec![(GET_IMAGE, pulled)];
    let answers = [
        &image, &container, &container, &container, &container, &image, &image,
    ];
    messages
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (m, a))| seed("containerd_lookups", format!("{name}-{i}"), i, a, m))
        .collect()
}

/// `messages` in `cri_request`'s method order, answered as containerd's CRI plugin would
/// for the sandbox and container they name (the verbose statuses from tests/fixtures/cri);
/// CreateContainer also by image ID, which the proxy looks up.
pub fn cri(
    sandbox: &cri::PodSandboxConfig,
    container: &cri::ContainerConfig,
    messages: &[Vec<u8>],
) -> Vec<Seed> {
    let fixture = |file: &str| {
        let path = format!("{}/tests/fixtures/cri/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("CRI fixture")
    };
    let verbose = |file: &str| [("info".to_string(), fixture(file))].into();
    let container_status = framed(&cri::ContainerStatusResponse {
        info: verbose("container-status-verbose.json"),
        ..Default::default()
    });
    let sandbox_verbose = framed(&cri::PodSandboxStatusResponse {
        info: verbose("pod-sandbox-status-verbose.json"),
        ..Default::default()
    });
    let listed = framed(&cri::ListContainersResponse {
        containers: vec![cri::Container {
            id: "c1".into(),
            pod_sandbox_id: "sandbox1".into(),
            metadata: container.metadata.clone(),
            ..Default::default()
        }],
    });
    let sandbox_status = framed(&cri::PodSandboxStatusResponse {
        status: Some(cri::PodSandboxStatus {
            id: "sandbox1".into(),
            metadata: sandbox.metadata.clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = format!("sha256:{}", "cd".repeat(32));
    let image = framed(&cri::ImageStatusResponse {
        image: Some(cri::Image {
            id: id.clone(),
            repo_tags: vec!["docker.io/library/busybox:1.36".into()],
            repo_digests: vec![format!(
                "docker.io/library/busybox@sha256:{}",
                "ef".repeat(32)
            )],
            ..Default::default()
        }),
        ..Default::default()
    });
    let none = vec![];
    let create = vec![
        (IMAGE_STATUS, image.clone()),
        (SANDBOX_STATUS, sandbox_status.clone()),
    ];
    let resize = vec![
        (CONTAINER_STATUS, container_status),
        (SANDBOX_STATUS, sandbox_verbose),
        (IMAGE_STATUS, image),
    ];
    let connect = vec![
        (LIST_CONTAINERS, listed),
        (SANDBOX_STATUS, sandbox_status.clone()),
    ];
    let forward = vec![(SANDBOX_STATUS, sandbox_status)];
    let answers = [
        &none, &create, &resize, &connect, &connect, &connect, &forward, &none,
    ];
    let mut seeds: Vec<Seed> = messages
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (m, a))| seed("cri_lookups", format!("cri-{i}"), i, a, m))
        .collect();
    let mut by_id = container.clone();
    by_id.image = Some(cri::ImageSpec {
        image: id,
        user_specified_image: "docker.io/library/busybox:1.36".into(),
        ..Default::default()
    });
    let request = cri::CreateContainerRequest {
        pod_sandbox_id: "sandbox1".into(),
        config: Some(by_id),
        sandbox_config: Some(sandbox.clone()),
    };
    seeds.push(seed(
        "cri_lookups",
        "cri-1-by-id".into(),
        1,
        answers[1],
        &request.encode_to_vec(),
    ));
    seeds
}
