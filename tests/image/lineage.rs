//! A container's record names its image, but it runs the snapshot it names: a caller with
//! the containerd socket who prepares a snapshot from an unsigned image and names a signed
//! one in the record is refused at `Containers/Create`; the same record on the signed
//! image's own layers is admitted.

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::{Container, CreateContainerRequest};
use prost_types::Any;
use serde_json::Value;

use crate::common::cosign::{policy_config, Key};
use crate::common::registry::{Registry, Transport};
use crate::common::{ok, unique, World};

const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// `Containers/Create` through the proxy of a record naming `image`, with `spec`, on the
/// snapshot `snapshot_key`.
fn create(
    w: &World,
    id: &str,
    image: &str,
    spec: Vec<u8>,
    snapshot_key: &str,
) -> Result<(), String> {
    let container = Container {
        id: id.into(),
        image: image.into(),
        runtime: Some(Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(Any {
            type_url: SPEC_TYPE.into(),
            value: spec,
        }),
        snapshotter: "overlayfs".into(),
        snapshot_key: snapshot_key.into(),
        ..Default::default()
    };
    let socket = w.proxy.socket.clone();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let channel = containerd_client::connect(&socket).await.unwrap();
            let mut req = tonic::Request::new(CreateContainerRequest {
                container: Some(container),
            });
            req.metadata_mut()
                .insert("containerd-namespace", "default".parse().unwrap());
            ContainersClient::new(channel).create(req).await.map(drop)
        })
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// The parent of `key`'s snapshot, and the spec of container `id` (made directly).
fn made_directly(w: &World, image: &str, id: &str) -> (String, Vec<u8>) {
    ok(w.ctr_direct(&["containers", "create", image, id, "true"]));
    let info: Value = serde_json::from_str(&ok(w.ctr_direct(&["snapshots", "info", id]))).unwrap();
    let container: Value =
        serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", id]))).unwrap();
    let spec = serde_json::to_vec(&container["Spec"]).unwrap();
    (info["Parent"].as_str().unwrap_or_default().to_owned(), spec)
}

#[test]
fn a_record_naming_a_signed_image_over_another_images_snapshot_is_refused() {
    let registry = Registry::start(Transport::Http);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    let signed = registry.push_busybox_marked("apps/web:1", "lineage-signed");
    registry.push_busybox_marked("apps/web:2", "lineage-unsigned");
    key.sign(&registry, "apps/web", &signed);
    let w = World::new(&policy_config(dir.path(), &registry.host(), &key, "Fail"));
    let signed_ref = registry.reference("apps/web:1");
    let unsigned_ref = registry.reference("apps/web:2");
    for reference in [&signed_ref, &unsigned_ref] {
        ok(w.ctr_direct(&["images", "pull", "--plain-http", reference]));
    }
    let (unsigned_layers, spec) = made_directly(&w, &unsigned_ref, &unique("u"));
    let (signed_layers, _) = made_directly(&w, &signed_ref, &unique("s"));
    assert_ne!(
        unsigned_layers, signed_layers,
        "the variants differ in their layers"
    );

    let hostile = unique("hostile");
    ok(w.ctr_direct(&["snapshots", "prepare", &hostile, &unsigned_layers]));
    let refused = create(&w, &unique("forged"), &signed_ref, spec.clone(), &hostile);
    let message = refused.expect_err("a forged record must be refused");
    for part in ["PermissionDenied", "not on the image's layers", &signed_ref] {
        assert!(
            message.contains(part),
            "no {part:?} in {message}\n{}",
            w.logs()
        );
    }

    let honest = unique("honest");
    ok(w.ctr_direct(&["snapshots", "prepare", &honest, &signed_layers]));
    create(&w, &unique("true"), &signed_ref, spec, &honest)
        .unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
}
