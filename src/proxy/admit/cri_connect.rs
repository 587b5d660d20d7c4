//! The CRI calls that enter a running pod — `Exec`, `ExecSync`, `Attach`, `PortForward` —
//! decided as kube-apiserver decides `kubectl exec`, `attach` and `port-forward`: a
//! CONNECT on `pods/exec`, `pods/attach` or `pods/portforward` with the options object
//! (`PodExecOptions`, with the command), in the pod's namespace.
//!
//! The pod is the one the sandbox was admitted as: its name and namespace are read back
//! from containerd (`ListContainers`, `PodSandboxStatus`), not taken from the call, which
//! names only a container or sandbox ID.

use k8s_cri::v1 as api;
use serde_json::{json, Value};

use super::{Enter, Proxy};
use crate::convert::cri;
use crate::proxy::grpc::{Code, Status};
use crate::review::{AdmissionRequest, GroupVersionKind, GroupVersionResource, Operation};

const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";
const SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";

/// A call into a running pod: which sandbox or container, and the options object.
pub(super) struct Connect {
    subresource: &'static str,
    kind: &'static str,
    target: Target,
    options: Value,
}

enum Target {
    Container(String),
    Sandbox(String),
}

impl Connect {
    /// The call in `message`.
    pub(super) fn read(method: Enter, message: &[u8]) -> Result<Self, cri::CriError> {
        Ok(match method {
            Enter::ExecSync => {
                let r: api::ExecSyncRequest = cri::decode(message)?;
                exec(r.container_id, r.cmd, false, false)
            }
            Enter::Exec => {
                let r: api::ExecRequest = cri::decode(message)?;
                exec(r.container_id, r.cmd, r.stdin, r.tty)
            }
            Enter::Attach => {
                let r: api::AttachRequest = cri::decode(message)?;
                Connect {
                    subresource: "attach",
                    kind: "PodAttachOptions",
                    options: json!({"stdin": r.stdin, "tty": r.tty, "stdout": r.stdout, "stderr": r.stderr}),
                    target: Target::Container(r.container_id),
                }
            }
            Enter::PortForward => {
                let r: api::PortForwardRequest = cri::decode(message)?;
                Connect {
                    subresource: "portforward",
                    kind: "PodPortForwardOptions",
                    options: json!({"ports": r.port}),
                    target: Target::Sandbox(r.pod_sandbox_id),
                }
            }
        })
    }
}

fn exec(container_id: String, command: Vec<String>, stdin: bool, tty: bool) -> Connect {
    Connect {
        subresource: "exec",
        kind: "PodExecOptions",
        options: json!({"command": command, "stdin": stdin, "tty": tty, "stdout": true, "stderr": true}),
        target: Target::Container(container_id),
    }
}

impl Proxy {
    /// The CONNECT request for `call`, about the pod it enters.
    pub(super) async fn connect_request(&self, call: Connect) -> Result<AdmissionRequest, Status> {
        let (sandbox_id, container) = match &call.target {
            Target::Sandbox(id) => (id.clone(), None),
            Target::Container(id) => {
                let (sandbox, name) = self.container_of(id).await?;
                (sandbox, Some(name))
            }
        };
        let (namespace, name) = self.sandbox_of(&sandbox_id).await?;
        let mut options = call.options;
        options["apiVersion"] = "v1".into();
        options["kind"] = call.kind.into();
        if let Some(container) = container {
            options["container"] = container.into();
        }
        let request = AdmissionRequest::new(
            Operation::Connect,
            GroupVersionKind::core(call.kind),
            GroupVersionResource::core("pods"),
            Some(call.subresource),
        );
        Ok(request.named(&namespace, &name).with_object(options))
    }

    /// The sandbox and name of container `id`.
    async fn container_of(&self, id: &str) -> Result<(String, String), Status> {
        let request = api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                id: id.to_owned(),
                ..Default::default()
            }),
        };
        let listed: api::ListContainersResponse = self
            .upstream
            .unary(LIST_CONTAINERS, "k8s.io", &request)
            .await?;
        let found = listed.containers.into_iter().find(|c| c.id == id);
        let found = found.ok_or_else(|| not_found("container", id))?;
        let name = found.metadata.map(|m| m.name).unwrap_or_default();
        Ok((found.pod_sandbox_id, name))
    }

    /// The namespace and name sandbox `id` was admitted with.
    async fn sandbox_of(&self, id: &str) -> Result<(String, String), Status> {
        let meta = self.sandbox_status(id).await?.metadata;
        let meta = meta.ok_or_else(|| not_found("pod sandbox", id))?;
        Ok((meta.namespace, meta.name))
    }

    /// containerd's status of sandbox `id` (not verbose).
    pub(super) async fn sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus, Status> {
        let request = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        let status: api::PodSandboxStatusResponse = self
            .upstream
            .unary(SANDBOX_STATUS, "k8s.io", &request)
            .await?;
        status.status.ok_or_else(|| not_found("pod sandbox", id))
    }
}

fn not_found(what: &str, id: &str) -> Status {
    Status::new(
        Code::NotFound,
        format!("portcullis: {what} {id:?} is not known to containerd"),
    )
}
