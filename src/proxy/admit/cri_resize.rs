//! `UpdateContainerResources` as Kubernetes shows an in-place resize: an UPDATE of the
//! `pods/resize` subresource (Kubernetes 1.33+), whose `oldObject` is the Pod the container
//! was created for and whose `object` is that Pod with the container's new `resources`.
//! As at kube-apiserver, Pod Security and the image rules do not judge a resize (a
//! subresource carries no Pod to judge: it was judged at creation); CEL policies and
//! webhooks that match `pods/resize` do, with the whole Pod in view.
//!
//! The request names only a container id. The Pod is rebuilt from what containerd keeps:
//! the container's and its sandbox's configs as `CreateContainer` and `RunPodSandbox`
//! sent them (`ContainerStatus` / `PodSandboxStatus` with `verbose`, read by
//! `convert::cri::stored`), converted as they were. A runtime that keeps no config, or one
//! with fields this build does not know, cannot be judged, and the call is refused.

use std::collections::HashMap;

use k8s_cri::v1 as api;

use super::Proxy;
use crate::convert::cri::{self, stored};
use crate::proxy::grpc::{Code, Status};
use crate::review::{AdmissionRequest, Operation, UserInfo};

const CONTAINER_STATUS: &str = "/runtime.v1.RuntimeService/ContainerStatus";
const SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";

impl Proxy {
    /// The review of one `UpdateContainerResources` request.
    pub(super) async fn resize_request(
        &self,
        message: &[u8],
        user: &UserInfo,
    ) -> Result<AdmissionRequest, Status> {
        let invalid = |e: cri::CriError| {
            Status::new(
                Code::InvalidArgument,
                format!("portcullis: UpdateContainerResources: {e}"),
            )
        };
        let req: api::UpdateContainerResourcesRequest = cri::decode(message).map_err(invalid)?;
        unjudged(&req).map_err(invalid)?;
        let container = self.kept_container(&req.container_id).await?;
        let sandbox = self.kept_sandbox(&container.sandbox_id).await?;
        let mut old = cri::container_pod(
            &sandbox.config,
            &container.config,
            &sandbox.runtime_handler,
            &self.kubelet,
        )
        .map_err(|e| stored_refusal(&req.container_id, e))?;
        if let Some(image) = self.name_image(&old).await? {
            image.apply(&mut old);
        }
        let new = cri::resized(&old, &req.linux.unwrap_or_default());
        Ok(
            AdmissionRequest::for_pod(Operation::Update, new, user.clone())
                .with_old_object(Some(old))
                .subresource("resize"),
        )
    }

    async fn kept_container(&self, id: &str) -> Result<stored::StoredContainer, Status> {
        let request = api::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: true,
        };
        let status: api::ContainerStatusResponse = self
            .upstream
            .unary(CONTAINER_STATUS, "k8s.io", &request)
            .await?;
        stored::container(info(&status.info)).map_err(|e| stored_refusal(id, e))
    }

    async fn kept_sandbox(&self, id: &str) -> Result<stored::StoredSandbox, Status> {
        let request = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: true,
        };
        let status: api::PodSandboxStatusResponse = self
            .upstream
            .unary(SANDBOX_STATUS, "k8s.io", &request)
            .await?;
        stored::sandbox(info(&status.info)).map_err(|e| stored_refusal(id, e))
    }
}

/// containerd puts its whole verbose answer under the key `info`.
fn info(info: &HashMap<String, String>) -> &str {
    info.get("info").map(String::as_str).unwrap_or_default()
}

/// Fields of the request the Pod view has no place for: refused, not ignored.
fn unjudged(req: &api::UpdateContainerResourcesRequest) -> Result<(), cri::CriError> {
    if req.container_id.is_empty() {
        return Err(cri::CriError::Missing {
            field: "container_id".into(),
            why: "the call resizes one container",
        });
    }
    if req.windows.is_some() {
        return Err(cri::CriError::refused(
            "windows",
            "Windows resources on a Linux node",
        ));
    }
    if !req.annotations.is_empty() {
        return Err(cri::CriError::refused(
            "annotations",
            "the runtime may hand them to its plugins, and no Pod field shows them (the \
             kubelet sends none)",
        ));
    }
    Ok(())
}

fn stored_refusal(id: &str, e: cri::CriError) -> Status {
    Status::new(
        Code::PermissionDenied,
        format!(
            "portcullis: UpdateContainerResources of {id:?} cannot be judged: the Pod it \
             belongs to cannot be rebuilt from what containerd keeps: {e}"
        ),
    )
}
