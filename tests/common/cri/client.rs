//! [`CriClient`]: the kubelet's side of CRI, blocking, over either API version.
//!
//! Every method takes and returns `runtime.v1` messages. A `v1alpha2` client converts them
//! on the way out and back as containerd 1.6 converts between the two: through the wire
//! format, the versions sharing field numbers. A request that sets a field `v1alpha2` lacks
//! panics rather than losing it silently.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::{v1, v1alpha2};
use prost::Message;
use tonic::transport::Channel;
use tonic::Status;

use super::{CriApi, CALL_TIMEOUT};

/// A CRI client on one socket: `RuntimeService` and `ImageService` calls, each waited for
/// on the client's own runtime (at most [`CALL_TIMEOUT`]).
pub struct CriClient {
    pub api: CriApi,
    pub socket: PathBuf,
    channel: Channel,
    rt: tokio::runtime::Runtime,
}

/// One unary call of `$service::$client::$method`, in the client's API version.
macro_rules! rpc {
    ($self:ident, $service:ident::$client:ident::$method:ident, $req:ident => $resp:ident, $msg:expr) => {{
        let msg: v1::$req = $msg;
        let channel = $self.channel.clone();
        let api = $self.api;
        $self.block_on(async move {
            match api {
                CriApi::V1 => {
                    let mut c = v1::$service::$client::new(channel);
                    c.$method(msg).await.map(tonic::Response::into_inner)
                }
                CriApi::V1alpha2 => {
                    let mut c = v1alpha2::$service::$client::new(channel);
                    let msg: v1alpha2::$req = convert(&msg, stringify!($req));
                    let resp = c.$method(msg).await?.into_inner();
                    Ok(convert::<_, v1::$resp>(&resp, stringify!($resp)))
                }
            }
        })
    }};
}

macro_rules! runtime {
    ($self:ident, $method:ident, $req:ident => $resp:ident, $msg:expr) => {
        rpc!($self, runtime_service_client::RuntimeServiceClient::$method, $req => $resp, $msg)
    };
}

macro_rules! image {
    ($self:ident, $method:ident, $req:ident => $resp:ident, $msg:expr) => {
        rpc!($self, image_service_client::ImageServiceClient::$method, $req => $resp, $msg)
    };
}

/// `from` as the other version's message, through the wire format.
#[track_caller]
fn convert<A: Message, B: Message + Default>(from: &A, what: &str) -> B {
    let bytes = from.encode_to_vec();
    let to = B::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("converting {what}: {e}"));
    assert_eq!(
        to.encoded_len(),
        bytes.len(),
        "converting {what}: a field set here has no counterpart in the other CRI version"
    );
    to
}

impl CriClient {
    /// A client of `api` on `socket` (containerd's or the proxy's).
    pub fn connect(socket: &Path, api: CriApi) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let channel = rt
            .block_on(containerd_client::connect(socket))
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        Self {
            api,
            socket: socket.to_owned(),
            channel,
            rt,
        }
    }

    fn block_on<T>(&self, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        self.rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| {
                    Err(Status::deadline_exceeded(format!(
                        "no answer in {CALL_TIMEOUT:?}"
                    )))
                })
        })
    }

    // --- RuntimeService ---

    pub fn version(&self) -> Result<v1::VersionResponse, Status> {
        let api = match self.api {
            CriApi::V1 => "v1",
            CriApi::V1alpha2 => "v1alpha2",
        };
        runtime!(self, version, VersionRequest => VersionResponse, v1::VersionRequest {
            version: api.to_owned(),
        })
    }

    /// `RunPodSandbox` with the default runtime handler: the sandbox id.
    pub fn run_pod(&self, config: &v1::PodSandboxConfig) -> Result<String, Status> {
        let req = v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        runtime!(self, run_pod_sandbox, RunPodSandboxRequest => RunPodSandboxResponse, req)
            .map(|r| r.pod_sandbox_id)
    }

    pub fn pod_status(&self, id: &str) -> Result<v1::PodSandboxStatus, Status> {
        let req = v1::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        runtime!(self, pod_sandbox_status, PodSandboxStatusRequest => PodSandboxStatusResponse, req)
            .map(|r| r.status.unwrap_or_default())
    }

    pub fn list_pods(&self) -> Result<Vec<v1::PodSandbox>, Status> {
        let req = v1::ListPodSandboxRequest { filter: None };
        runtime!(self, list_pod_sandbox, ListPodSandboxRequest => ListPodSandboxResponse, req)
            .map(|r| r.items)
    }

    pub fn stop_pod(&self, id: &str) -> Result<(), Status> {
        let req = v1::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        runtime!(self, stop_pod_sandbox, StopPodSandboxRequest => StopPodSandboxResponse, req)
            .map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> Result<(), Status> {
        let req = v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        runtime!(self, remove_pod_sandbox, RemovePodSandboxRequest => RemovePodSandboxResponse, req)
            .map(drop)
    }

    /// `StopPodSandbox` then `RemovePodSandbox` (which removes its containers), as the
    /// kubelet tears a pod down.
    pub fn stop_and_remove_pod(&self, id: &str) -> Result<(), Status> {
        self.stop_pod(id)?;
        self.remove_pod(id)
    }

    /// `CreateContainer` in `sandbox_id`, whose config `pod` is (the kubelet sends it
    /// again): the container id.
    pub fn create_container(
        &self,
        sandbox_id: &str,
        pod: &v1::PodSandboxConfig,
        config: v1::ContainerConfig,
    ) -> Result<String, Status> {
        let req = v1::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        };
        runtime!(self, create_container, CreateContainerRequest => CreateContainerResponse, req)
            .map(|r| r.container_id)
    }

    /// `StartContainer`.
    pub fn start(&self, id: &str) -> Result<(), Status> {
        let req = v1::StartContainerRequest {
            container_id: id.to_owned(),
        };
        runtime!(self, start_container, StartContainerRequest => StartContainerResponse, req)
            .map(drop)
    }

    /// `StopContainer`, killing after `timeout` seconds.
    pub fn stop(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let req = v1::StopContainerRequest {
            container_id: id.to_owned(),
            timeout,
        };
        runtime!(self, stop_container, StopContainerRequest => StopContainerResponse, req).map(drop)
    }

    pub fn remove(&self, id: &str) -> Result<(), Status> {
        let req = v1::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        runtime!(self, remove_container, RemoveContainerRequest => RemoveContainerResponse, req)
            .map(drop)
    }

    /// `UpdateContainerResources` of container `id` to `linux`.
    pub fn update_resources(
        &self,
        id: &str,
        linux: v1::LinuxContainerResources,
    ) -> Result<(), Status> {
        let req = v1::UpdateContainerResourcesRequest {
            container_id: id.to_owned(),
            linux: Some(linux),
            ..Default::default()
        };
        runtime!(self, update_container_resources, UpdateContainerResourcesRequest => UpdateContainerResourcesResponse, req)
            .map(drop)
    }

    pub fn container_status(&self, id: &str) -> Result<v1::ContainerStatus, Status> {
        let req = v1::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        runtime!(self, container_status, ContainerStatusRequest => ContainerStatusResponse, req)
            .map(|r| r.status.unwrap_or_default())
    }

    pub fn list_containers(&self) -> Result<Vec<v1::Container>, Status> {
        let req = v1::ListContainersRequest { filter: None };
        runtime!(self, list_containers, ListContainersRequest => ListContainersResponse, req)
            .map(|r| r.containers)
    }

    /// Polls `ContainerStatus` until the container is in `state` (e.g. [`CONTAINER_EXITED`])
    /// or `timeout` passed: the last status, whatever its state.
    ///
    /// [`CONTAINER_EXITED`]: super::CONTAINER_EXITED
    pub fn wait_state(
        &self,
        id: &str,
        state: i32,
        timeout: Duration,
    ) -> Result<v1::ContainerStatus, Status> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.container_status(id)?;
            if status.state == state || Instant::now() > deadline {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ExecSync` of `cmd` in container `id`, which containerd stops after `timeout_s`
    /// seconds (0: never).
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout_s: i64,
    ) -> Result<v1::ExecSyncResponse, Status> {
        let req = v1::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        runtime!(self, exec_sync, ExecSyncRequest => ExecSyncResponse, req)
    }

    // --- ImageService ---

    /// `PullImage` of `image` for the pod `pod` (the kubelet sends its config): the image
    /// reference containerd resolved (its id).
    pub fn pull_image(
        &self,
        image: &str,
        pod: Option<&v1::PodSandboxConfig>,
    ) -> Result<String, Status> {
        let req = v1::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: pod.cloned(),
        };
        image!(self, pull_image, PullImageRequest => PullImageResponse, req).map(|r| r.image_ref)
    }

    /// `ImageStatus`: the image, or `None` when the CRI plugin does not know it.
    pub fn image_status(&self, image: &str) -> Result<Option<v1::Image>, Status> {
        let req = v1::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        image!(self, image_status, ImageStatusRequest => ImageStatusResponse, req).map(|r| r.image)
    }

    pub fn list_images(&self) -> Result<Vec<v1::Image>, Status> {
        let req = v1::ListImagesRequest { filter: None };
        image!(self, list_images, ListImagesRequest => ListImagesResponse, req).map(|r| r.images)
    }
}

/// An `ImageSpec` naming `image` and nothing else.
pub fn image_spec(image: &str) -> v1::ImageSpec {
    v1::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}
