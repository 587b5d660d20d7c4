//! §3 The wire: calls the proxy must recognise before it can judge them — CRI calls that
//! containerd's CRI plugin turns into containers in-process, and a `:path` containerd routes
//! whatever its spelling. Sent with the raw HTTP/2 client (tests/clients/raw).

use containerd_client::services::v1::{Container, CreateContainerRequest};

use super::kit::{all_caps, Corpus, Gate, SPEC_TYPE};
use super::raw::frame::{Outcome, Request};
use super::raw::grpc::{call, grpc_message, once, CRI_VERSION};
use crate::common::{unique, IMAGE};

const NS: &str = "default";

/// Protobuf by hand, for the CRI messages (no CRI types in this crate's dependencies).
mod pb {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn bytes(tag: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(tag) << 3 | 2, &mut out);
        varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }
    pub fn int(tag: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(tag) << 3, &mut out);
        varint(value, &mut out);
        out
    }
    pub fn msg(fields: &[Vec<u8>]) -> Vec<u8> {
        fields.concat()
    }
}

/// A unary gRPC call on the raw client: `path`, `body` (a message, framed here), headers.
fn raw_call(path: &str, body: &[u8], headers: &[(&str, &str)]) -> Request {
    let mut req = call(CRI_VERSION, Some("localhost")).set(":path", path);
    for (name, value) in headers {
        req = req.with(name, value);
    }
    let mut framed = vec![0];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    req.body = framed;
    req
}

/// `grpc-status` of an answer ("0" OK), or what happened instead.
fn status(o: &Outcome) -> String {
    match o {
        Outcome::Ended {
            headers, trailers, ..
        } => trailers
            .iter()
            .flatten()
            .chain(headers)
            .find(|(n, _)| n == b"grpc-status")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "no grpc-status".into()),
        other => format!("{other:?}"),
    }
}

/// A hostile kubelet's CRI calls: a privileged host-namespace sandbox, a container in it,
/// execs and a resize into containers that do not exist. By default the CRI door judges
/// them (Pod Security refuses the sandbox and the container; the others find nothing to
/// act on); with `proxy.cri: refuse` the proxy refuses them all itself. Either way no
/// sandbox or container exists afterwards.
#[test]
fn cri_calls_that_make_containers_are_judged_by_default() {
    hostile_cri_calls("", "PodSecurity");
}

#[test]
fn cri_calls_that_make_containers_are_refused_with_cri_refuse() {
    hostile_cri_calls("proxy:\n  cri: refuse\n", "proxy.cri");
}

/// `judged` is the word of the refusal of the calls that describe a pod.
fn hostile_cri_calls(extra: &str, judged: &str) {
    let g = Gate::with_cri(extra);
    let mut c = Corpus::new("CRI");
    let meta = pb::msg(&[
        pb::bytes(1, b"evil"),
        pb::bytes(2, b"evil-uid"),
        pb::bytes(3, b"default"),
    ]);
    // PodSandboxConfig{metadata, linux{security_context{namespace_options{network: NODE,
    // pid: NODE}, privileged: true}}}
    let sandbox = pb::msg(&[
        pb::bytes(1, &meta),
        pb::bytes(
            8,
            &pb::bytes(
                2,
                &pb::msg(&[
                    pb::bytes(1, &pb::msg(&[pb::int(1, 2), pb::int(2, 2)])),
                    pb::int(6, 1),
                ]),
            ),
        ),
    ]);
    let container = pb::msg(&[
        pb::bytes(1, &pb::bytes(1, b"evil")),
        pb::bytes(2, &pb::bytes(1, IMAGE.as_bytes())),
    ]);
    let calls: Vec<(&str, Vec<u8>)> = vec![
        ("RunPodSandbox", pb::bytes(1, &sandbox)),
        (
            "CreateContainer",
            pb::msg(&[
                pb::bytes(1, b"no-such-sandbox"),
                pb::bytes(2, &container),
                pb::bytes(3, &sandbox),
            ]),
        ),
        (
            "ExecSync",
            pb::msg(&[pb::bytes(1, b"no-such-container"), pb::bytes(2, b"id")]),
        ),
        (
            "Exec",
            pb::msg(&[pb::bytes(1, b"no-such-container"), pb::bytes(2, b"id")]),
        ),
        (
            "UpdateContainerResources",
            pb::msg(&[pb::bytes(1, b"no-such-container")]),
        ),
    ];
    for version in ["v1", "v1alpha2"] {
        for (method, body) in &calls {
            let path = format!("/runtime.{version}.RuntimeService/{method}");
            let run = once(&g.w.proxy.socket, &raw_call(&path, body, &[]));
            let o = run.outcomes.first().cloned();
            let st = o.as_ref().map(status).unwrap_or_default();
            let msg = o.as_ref().map(grpc_message).unwrap_or_default();
            // The proxy's refusal is PERMISSION_DENIED (7). At the CRI door a call into a
            // container that does not exist fails at the door's own lookup (NOT_FOUND, 5):
            // nothing to act on. Anything else came from containerd's CRI plugin acting
            // on the call.
            let into_nothing = !matches!(*method, "RunPodSandbox" | "CreateContainer");
            let ok_status = st == "7" || (into_nothing && judged != "proxy.cri" && st == "5");
            let result = if ok_status { Err(msg.clone()) } else { Ok(()) };
            let words: &[&str] = if into_nothing && st == "5" {
                &["no-such-container"]
            } else {
                &[judged]
            };
            c.refused(
                &path,
                &result,
                words,
                vec![(
                    format!("relayed to containerd's CRI plugin (grpc-status {st}: {msg:?})"),
                    !ok_status,
                )],
            );
        }
    }
    let sandboxes = g.w.containers("k8s.io");
    c.refused(
        "no sandbox or container exists in k8s.io",
        &Err("cri".into()),
        &["cri"],
        vec![(
            format!("k8s.io containers {sandboxes:?}"),
            !sandboxes.is_empty(),
        )],
    );
    // Reading calls still pass.
    for (path, body) in [
        (CRI_VERSION, pb::bytes(1, b"v1")),
        ("/runtime.v1.RuntimeService/ListPodSandbox", Vec::new()),
        ("/runtime.v1.ImageService/ListImages", Vec::new()),
    ] {
        let run = once(&g.w.proxy.socket, &raw_call(path, &body, &[]));
        let st = run.outcomes.first().map(status).unwrap_or_default();
        c.admitted(
            &format!("{path} still answers"),
            &Ok(()),
            vec![(format!("grpc-status {st}"), st == "0")],
        );
    }
    c.finish(&g.w);
}

#[test]
fn a_path_containerd_routes_but_the_gate_does_not_match() {
    let g = Gate::new("");
    let mut c = Corpus::new(":path");
    for (case, path) in [
        (
            "control: /containerd.services.containers.v1.Containers/Create",
            "/containerd.services.containers.v1.Containers/Create",
        ),
        (
            "no leading slash: containerd.services.containers.v1.Containers/Create",
            "containerd.services.containers.v1.Containers/Create",
        ),
    ] {
        let id = unique("c");
        let mut spec = g.spec(NS, &id, &["sleep", "300"]);
        spec["process"]["capabilities"] = all_caps();
        let req = CreateContainerRequest {
            container: Some(Container {
                id: id.clone(),
                image: IMAGE.into(),
                runtime: Some(containerd_client::services::v1::container::Runtime {
                    name: "io.containerd.runc.v2".into(),
                    options: None,
                }),
                spec: Some(prost_types::Any {
                    type_url: SPEC_TYPE.into(),
                    value: serde_json::to_vec(&spec).unwrap(),
                }),
                ..Default::default()
            }),
        };
        let body = prost::Message::encode_to_vec(&req);
        let run = once(
            &g.w.proxy.socket,
            &raw_call(path, &body, &[("containerd-namespace", NS)]),
        );
        let o = run.outcomes.first().cloned();
        let st = o.as_ref().map(status).unwrap_or_default();
        let msg = o.as_ref().map(grpc_message).unwrap_or_default();
        let result = if st == "0" { Ok(()) } else { Err(msg) };
        c.refused(
            case,
            &result,
            &["path", "privileged", "capabilities"],
            g.effects(NS, &id),
        );
    }
    c.finish(&g.w);
}
