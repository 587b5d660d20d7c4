//! What tests/faults.rs and tests/durability.rs share: `Containers/Create` and `Delete`
//! through the proxy from a Rust gRPC client (tonic, a long-lived channel per client as
//! gRPC clients keep one), every call under a client deadline and timed, so a test can say
//! how each call ended and that none hung; the OCI spec to create containers with; SIGKILL.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::{Container, CreateContainerRequest, DeleteContainerRequest};
use tonic::transport::Channel;

use crate::common::{ok, World};

/// The client deadline of every call: a call that reaches it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(10);

const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    Failed(tonic::Code, String),
    /// No answer within [`DEADLINE`].
    Hung,
}

/// One timed call.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub started: Instant,
    pub took: Duration,
    pub outcome: Outcome,
}

impl Call {
    pub fn ended(&self) -> Instant {
        self.started + self.took
    }

    pub fn code(&self) -> Option<tonic::Code> {
        match &self.outcome {
            Outcome::Failed(code, _) => Some(*code),
            _ => None,
        }
    }
}

/// A channel to `socket`, dialled now (and again by tonic whenever it has closed).
pub async fn channel(socket: &Path) -> Channel {
    containerd_client::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()))
}

fn in_namespace<T>(message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("containerd-namespace", "default".parse().unwrap());
    req.set_timeout(DEADLINE);
    req
}

async fn timed<F>(id: &str, call: F) -> Call
where
    F: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let started = Instant::now();
    // tonic sends the deadline as grpc-timeout; the client enforces it here too.
    let outcome = match tokio::time::timeout(DEADLINE, call).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(s)) => Outcome::Failed(s.code(), s.message().to_owned()),
        Err(_) => Outcome::Hung,
    };
    Call {
        id: id.to_owned(),
        started,
        took: started.elapsed(),
        outcome,
    }
}

/// `Containers/Create` of container `id` running `image`, with `labels`.
pub async fn create(
    channel: &Channel,
    spec: &[u8],
    id: &str,
    image: &str,
    labels: &[(&str, &str)],
) -> Call {
    let container = Container {
        id: id.into(),
        image: image.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        runtime: Some(Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE.into(),
            value: spec.to_vec(),
        }),
        ..Default::default()
    };
    let mut client = ContainersClient::new(channel.clone());
    let request = in_namespace(CreateContainerRequest {
        container: Some(container),
    });
    timed(id, async move { client.create(request).await.map(drop) }).await
}

/// `Containers/Delete` of container `id` (relayed, not admitted).
pub async fn delete(channel: &Channel, id: &str) -> Call {
    let mut client = ContainersClient::new(channel.clone());
    let request = in_namespace(DeleteContainerRequest { id: id.into() });
    timed(id, async move { client.delete(request).await.map(drop) }).await
}

/// The OCI spec `ctr` writes for `image`, read back from a container made directly.
pub fn spec(w: &World, image: &str) -> Vec<u8> {
    let id = crate::common::unique("spec-source");
    ok(w.ctr_direct(&["containers", "create", image, &id, "true"]));
    let info: serde_json::Value =
        serde_json::from_str(&ok(w.ctr_direct(&["containers", "info", &id]))).unwrap();
    ok(w.ctr_direct(&["containers", "rm", &id]));
    serde_json::to_vec(&info["Spec"]).unwrap()
}

/// SIGKILL to `pid`: no shutdown code of its runs.
pub fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// Milliseconds, for reports.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}
