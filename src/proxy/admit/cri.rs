//! The CRI door, as far as it goes (`proxy.cri: admit`): `RunPodSandbox` and
//! `CreateContainer` (runtime.v1 and v1alpha2) are read into the Pod the kubelet describes
//! (`convert::cri`) and decided as a Pod CREATE at the `cri` door. A refusal is gRPC
//! `PermissionDenied` in kube-apiserver's wording, which the kubelet shows as the sandbox's
//! or the container's error.
//!
//! `ImageService/PullImage` is judged by the image rules alone, in the namespace of the
//! sandbox the image is pulled for.
//!
//! Not yet: the other calls that create or change containers (`Exec`, `ExecSync`,
//! `Attach`, `PortForward`, `UpdateContainerResources`, `CheckpointContainer`) stay
//! refused, and a policy's change to the Pod is not written back into the CRI request: it
//! refuses the call, naming what it would have changed (fail closed).
//!
//! v1alpha2 messages are read with the v1 types: the two protos are wire-compatible for
//! every field they share, and a field only v1alpha2 has would fail the unknown-field check.

use bytes::Bytes;
use k8s_cri::v1 as api;

use super::{Admitted, Proxy};
use crate::convert::cri;
use crate::core::Scope;
use crate::proxy::grpc::{Code, Status};
use crate::review::{AdmissionRequest, Door, Operation, UserInfo};

/// The CRI calls the door admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriCall {
    RunPodSandbox,
    CreateContainer,
    /// `ImageService/PullImage`: the image rules, in the pod's namespace.
    PullImage,
}

impl CriCall {
    /// The admitted call a `RuntimeService` method names, if any.
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "RunPodSandbox" => Some(CriCall::RunPodSandbox),
            "CreateContainer" => Some(CriCall::CreateContainer),
            _ => None,
        }
    }

    /// The admitted call an `ImageService` method names, if any.
    pub fn from_image_method(method: &str) -> Option<Self> {
        (method == "PullImage").then_some(CriCall::PullImage)
    }

    /// The part of the chain that judges the call: a pull is about its image only.
    fn scope(self) -> Scope {
        match self {
            CriCall::PullImage => Scope::Images,
            CriCall::RunPodSandbox | CriCall::CreateContainer => Scope::All,
        }
    }
}

impl Proxy {
    /// Decides one CRI call from its (unframed) request message.
    pub(super) async fn admit_cri(
        &self,
        call: CriCall,
        user: &UserInfo,
        message: &Bytes,
    ) -> Result<Admitted, Status> {
        let pod = pod_of(call, message, &self.kubelet).map_err(|e| {
            Status::new(Code::InvalidArgument, format!("portcullis: {call:?}: {e}"))
        })?;
        let review = AdmissionRequest::for_pod(Operation::Create, pod, user.clone());
        let verdict = self.decide_at(Door::Cri, call.scope(), &review).await?;
        match (verdict.mutated(), &review.object) {
            (None, _) => Ok(Admitted::Unchanged),
            (Some(after), Some(before)) => {
                let changed: Vec<String> = json_patch::diff(before, after)
                    .0
                    .iter()
                    .map(|op| op.path().to_string())
                    .collect();
                Err(Status::new(
                    Code::PermissionDenied,
                    format!(
                        "portcullis: {call:?}: policies changed the Pod ({}), and the CRI door \
                         does not write changes back into CRI requests yet, so the call is \
                         refused; make the change in the Pod spec, or set the policy to warn",
                        changed.join(", ")
                    ),
                ))
            }
            (Some(_), None) => Ok(Admitted::Unchanged),
        }
    }
}

/// The Pod a CRI call describes.
fn pod_of(
    call: CriCall,
    message: &[u8],
    paths: &cri::KubeletPaths,
) -> Result<serde_json::Value, cri::CriError> {
    match call {
        CriCall::RunPodSandbox => {
            let req: api::RunPodSandboxRequest = cri::decode(message)?;
            let config = req.config.unwrap_or_default();
            cri::sandbox_pod(&config, &req.runtime_handler, paths)
        }
        CriCall::CreateContainer => {
            let req: api::CreateContainerRequest = cri::decode(message)?;
            let sandbox = req.sandbox_config.unwrap_or_default();
            let config = req.config.unwrap_or_default();
            // The request names no runtime handler: the sandbox's was judged at
            // RunPodSandbox.
            cri::container_pod(&sandbox, &config, "", paths)
        }
        CriCall::PullImage => {
            let req: api::PullImageRequest = cri::decode(message)?;
            let image = req.image.map(|i| i.image).unwrap_or_default();
            Ok(pull_pod(&image, req.sandbox_config.as_ref()))
        }
    }
}

/// The Pod an image pull is for, as the image rules read it: the image as one container,
/// in the namespace (and under the name) of the sandbox the kubelet pulls for. `crictl
/// pull` names no sandbox.
fn pull_pod(image: &str, sandbox: Option<&api::PodSandboxConfig>) -> serde_json::Value {
    let meta = sandbox.and_then(|s| s.metadata.as_ref());
    let namespace = meta.map(|m| m.namespace.as_str()).unwrap_or_default();
    let name = meta.map(|m| m.name.as_str()).unwrap_or_default();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "pull", "image": image}]},
    })
}
