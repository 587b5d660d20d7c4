//! The CRI door, as far as it goes (`proxy.cri: admit`): `RunPodSandbox` and
//! `CreateContainer` (runtime.v1 and v1alpha2) are read into the Pod the kubelet describes
//! (`convert::cri`) and decided as a Pod CREATE at the `cri` door. A refusal is gRPC
//! `PermissionDenied` in kube-apiserver's wording, which the kubelet shows as the sandbox's
//! or the container's error.
//!
//! `ImageService/PullImage` is judged by the image rules alone, in the namespace of the
//! sandbox the image is pulled for.
//!
//! `Exec`, `ExecSync`, `Attach` and `PortForward` are CONNECTs on the pod's subresource
//! (`cri_connect`).
//!
//! A policy's change to the Pod is written back into the request where the request has
//! the field (`cri_writeback`); any other change refuses the call, naming it.
//!
//! `UpdateContainerResources` is an UPDATE of `pods/resize` (`cri_resize`).
//!
//! The other calls that change containers (`CheckpointContainer`, `UpdateRuntimeConfig`,
//! and any the CRI adds, such as `UpdatePodSandboxResources`) stay refused.
//!
//! v1alpha2 messages are read with the v1 types: the two protos are wire-compatible for
//! every field they share, and a field only v1alpha2 has would fail the unknown-field check.

use bytes::Bytes;
use k8s_cri::v1 as api;

use super::cri_connect::Connect;
use super::cri_writeback::write_back;
use super::{Admitted, Proxy};
use crate::config::KubeletDirs;
use crate::convert::cri;
use crate::core::Scope;
use crate::policy::reference::ImageRef;
use crate::proxy::grpc::{Code, Status};
use crate::review::{AdmissionRequest, Door, Operation, UserInfo};

/// The CRI calls the door admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriCall {
    /// A call that describes a Pod: decided as its CREATE.
    Pod(PodCall),
    /// A call into a running pod: CONNECT on the pod's subresource (`cri_connect`).
    Enter(Enter),
    /// `UpdateContainerResources`: UPDATE of `pods/resize` (`cri_resize`).
    Resize,
}

/// The calls that describe a Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodCall {
    RunPodSandbox,
    CreateContainer,
    /// `ImageService/PullImage`: the image rules, in the pod's namespace.
    PullImage,
}

/// The calls that enter a running pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enter {
    ExecSync,
    Exec,
    Attach,
    PortForward,
}

impl std::fmt::Display for CriCall {
    /// The CRI method's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CriCall::Pod(call) => write!(f, "{call:?}"),
            CriCall::Enter(call) => write!(f, "{call:?}"),
            CriCall::Resize => f.write_str("UpdateContainerResources"),
        }
    }
}

impl CriCall {
    /// The admitted call a `RuntimeService` method names, if any.
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "RunPodSandbox" => Some(CriCall::Pod(PodCall::RunPodSandbox)),
            "CreateContainer" => Some(CriCall::Pod(PodCall::CreateContainer)),
            "ExecSync" => Some(CriCall::Enter(Enter::ExecSync)),
            "Exec" => Some(CriCall::Enter(Enter::Exec)),
            "Attach" => Some(CriCall::Enter(Enter::Attach)),
            "PortForward" => Some(CriCall::Enter(Enter::PortForward)),
            "UpdateContainerResources" => Some(CriCall::Resize),
            _ => None,
        }
    }

    /// The admitted call an `ImageService` method names, if any.
    pub fn from_image_method(method: &str) -> Option<Self> {
        (method == "PullImage").then_some(CriCall::Pod(PodCall::PullImage))
    }

    /// The part of the chain that judges the call: a pull is about its image only.
    fn scope(self) -> Scope {
        match self {
            CriCall::Pod(PodCall::PullImage) => Scope::Images,
            CriCall::Pod(_) | CriCall::Enter(_) | CriCall::Resize => Scope::All,
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
        self.check_cri_caller(call, user)?;
        let invalid = |e: cri::CriError| {
            Status::new(Code::InvalidArgument, format!("portcullis: {call}: {e}"))
        };
        let review = match call {
            CriCall::Enter(enter) => {
                let connect = Connect::read(enter, message).map_err(invalid)?;
                self.connect_request(connect).await?.by(user.clone())
            }
            CriCall::Resize => self.resize_request(message, user).await?,
            CriCall::Pod(pod_call) => {
                let mut review =
                    request_of(pod_call, message, &self.kubelet, user.clone()).map_err(invalid)?;
                if let (PodCall::CreateContainer, Some(pod)) = (pod_call, review.object.as_ref()) {
                    // Two lookups in containerd, at once.
                    let (image, class) =
                        tokio::join!(self.name_image(pod), self.sandbox_class(message));
                    if let Some(image) = image? {
                        image.apply_to(&mut review);
                    }
                    let spec = review.object.as_mut().and_then(|p| p.get_mut("spec"));
                    if let (Some(class), Some(spec)) =
                        (class?, spec.and_then(|s| s.as_object_mut()))
                    {
                        spec.insert("runtimeClassName".into(), class.into());
                    }
                }
                review
            }
        };
        let verdict = self.decide_at(Door::Cri, call.scope(), &review).await?;
        match (verdict.mutated(), &review.object) {
            (None, _) => Ok(Admitted::Unchanged),
            (Some(after), Some(before)) => write_back(call, message, before, after)
                .map(Admitted::Rewritten)
                .map_err(|why| Status::new(Code::PermissionDenied, format!("portcullis: {why}"))),
            (Some(_), None) => Err(Status::new(
                Code::PermissionDenied,
                format!("portcullis: {call}: policies changed an object the call does not carry"),
            )),
        }
    }
}

impl Proxy {
    /// The CRI names a pod's namespace in the call, and the namespace chooses the Pod
    /// Security level and the exemptions that apply: only the kubelet may name it. Calls
    /// from any other peer of the socket are refused, naming `proxy.criTrustedUids`.
    fn check_cri_caller(&self, call: CriCall, user: &UserInfo) -> Result<(), Status> {
        let trusted = user
            .uid
            .parse::<u32>()
            .is_ok_and(|uid| self.cri_trusted_uids.contains(&uid));
        if trusted {
            return Ok(());
        }
        Err(Status::new(
            Code::PermissionDenied,
            format!(
                "portcullis: {call} from {:?} (uid {:?}) is refused: CRI calls name their \
                 pod's namespace, which chooses its policies, so only the kubelet's uids \
                 (proxy.criTrustedUids) may make them",
                user.username, user.uid
            ),
        ))
    }
}

const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";
const USER_IMAGE: &str = "/metadata/annotations/portcullis.dev~1user-specified-image";

impl Proxy {
    /// The kubelet names a container's image by the ID `ImageStatus` gave it
    /// (`sha256:…`), which no image rule can read. The container's image becomes a name
    /// the image really has, asked of containerd: the name the Pod asked for when the
    /// image carries it (the kubelet says so in `user_specified_image`, v1 only), else its
    /// one tag, else its digest reference. A name the image does not carry is never
    /// taken on the caller's word. The ID stays in `portcullis.dev/image-id`.
    pub(super) async fn name_image(
        &self,
        pod: &serde_json::Value,
    ) -> Result<Option<ImageName>, Status> {
        let Some(id) = pod.pointer(IMAGE).and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        if !is_image_id(id) {
            return Ok(None);
        }
        let id = id.to_owned();
        let request = api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: id.clone(),
                ..Default::default()
            }),
            verbose: false,
        };
        let status: api::ImageStatusResponse = self
            .upstream
            .unary(IMAGE_STATUS, "k8s.io", &request)
            .await?;
        let Some(image) = status.image else {
            return Err(Status::new(
                Code::NotFound,
                format!("portcullis: containerd knows no image {id:?}, the ID the container names"),
            ));
        };
        let claimed = pod.pointer(USER_IMAGE).and_then(|v| v.as_str());
        let name = chosen_name(claimed, &image.repo_tags, &image.repo_digests).unwrap_or(&id);
        let digest = held_digest(name, &image.repo_digests);
        Ok(Some(ImageName {
            name: name.to_owned(),
            id,
            digest,
        }))
    }
}

const IMAGE: &str = "/spec/containers/0/image";

/// The name a container's image is judged by, the ID the kubelet named it by, and the
/// digest containerd holds for it in the name's repository (what signatures are checked
/// against).
pub(super) struct ImageName {
    name: String,
    id: String,
    digest: Option<String>,
}

impl ImageName {
    /// The container's image becomes the name; the ID stays in `portcullis.dev/image-id`;
    /// the digest goes to the request's `image_digests`.
    pub(super) fn apply_to(self, review: &mut AdmissionRequest) {
        if let (Some(digest), Some(container)) = (
            &self.digest,
            review
                .object
                .as_ref()
                .and_then(|p| p.pointer("/spec/containers/0/name"))
                .and_then(|n| n.as_str()),
        ) {
            review
                .image_digests
                .insert(container.to_owned(), digest.clone());
        }
        if let Some(pod) = review.object.as_mut() {
            self.apply(pod);
        }
    }

    /// The container's image becomes the name; the ID stays in `portcullis.dev/image-id`.
    pub(super) fn apply(self, pod: &mut serde_json::Value) {
        if let Some(slot) = pod.pointer_mut(IMAGE) {
            *slot = self.name.into();
        }
        if let Some(annotations) = pod.pointer_mut("/metadata/annotations") {
            annotations["portcullis.dev/image-id"] = self.id.into();
        }
    }
}

impl Proxy {
    /// A container runs with its sandbox's runtime handler, which `CreateContainer` does
    /// not carry: the Pod shows the one containerd keeps for the sandbox (what
    /// `RunPodSandbox` was admitted with, a policy's change included), so a policy that
    /// sets the runtime class sees it set, and one that would change it is refused at
    /// write-back (a running sandbox keeps its handler).
    async fn sandbox_class(&self, message: &[u8]) -> Result<Option<String>, Status> {
        let req: api::CreateContainerRequest = cri::decode(message).map_err(|e| {
            Status::new(
                Code::InvalidArgument,
                format!("portcullis: CreateContainer: {e}"),
            )
        })?;
        // No such sandbox: containerd refuses the call itself once the policies had their
        // say on what it asks for.
        match self.sandbox_status(&req.pod_sandbox_id).await {
            Ok(status) if !status.runtime_handler.is_empty() => Ok(Some(status.runtime_handler)),
            Ok(_) => Ok(None),
            Err(status) if status.code == Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }
}

/// The digest of `repo_digests` (`repository@sha256:…`, what containerd recorded at the
/// pull) in `name`'s repository.
fn held_digest(name: &str, repo_digests: &[String]) -> Option<String> {
    let repository = ImageRef::parse(name).ok()?.name();
    repo_digests.iter().find_map(|r| {
        let held = ImageRef::parse(r).ok()?;
        (held.name() == repository).then(|| held.digest.clone())?
    })
}

/// `sha256:` and 64 hex digits, or the 64 hex digits alone: an image ID, not a name.
fn is_image_id(image: &str) -> bool {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The name an image is judged by: `claimed` when the image carries it (compared
/// normalised: the kubelet sends what the Pod wrote, `busybox:1.36`), else its one tag,
/// else its first digest reference, else its first tag.
fn chosen_name<'a>(
    claimed: Option<&'a str>,
    tags: &'a [String],
    digests: &'a [String],
) -> Option<&'a str> {
    let same = |a: &str, b: &str| match (ImageRef::parse(a), ImageRef::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(claimed) = claimed.filter(|c| !c.is_empty()) {
        let carried = tags.iter().chain(digests).find(|n| same(n, claimed));
        if let Some(name) = carried {
            return Some(name.as_str());
        }
    }
    match tags {
        [one] => Some(one.as_str()),
        _ => digests.first().or(tags.first()).map(String::as_str),
    }
}

/// The request a CRI call is judged as: the CREATE of the Pod it describes, or the pull
/// of its image in the namespace (and under the pod name) of the sandbox it is pulled for.
fn request_of(
    call: PodCall,
    message: &[u8],
    paths: &KubeletDirs,
    user: UserInfo,
) -> Result<AdmissionRequest, cri::CriError> {
    let pod = match call {
        PodCall::RunPodSandbox => {
            let req: api::RunPodSandboxRequest = cri::decode(message)?;
            let config = req.config.unwrap_or_default();
            cri::sandbox_pod(&config, &req.runtime_handler, paths)?
        }
        PodCall::CreateContainer => {
            let req: api::CreateContainerRequest = cri::decode(message)?;
            let sandbox = req.sandbox_config.unwrap_or_default();
            let config = req.config.unwrap_or_default();
            // The request names no runtime handler: the sandbox's is looked up.
            cri::container_pod(&sandbox, &config, "", paths)?
        }
        PodCall::PullImage => {
            let req: api::PullImageRequest = cri::decode(message)?;
            let image = req.image.map(|i| i.image).unwrap_or_default();
            let meta = req
                .sandbox_config
                .and_then(|s| s.metadata)
                .unwrap_or_default();
            return Ok(AdmissionRequest::for_pull(
                &image,
                &meta.namespace,
                &meta.name,
                user,
            ));
        }
    };
    Ok(AdmissionRequest::for_pod(Operation::Create, pod, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_digest_is_the_one_recorded_in_the_names_repository() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let digests = vec![
            format!("docker.io/library/busybox@{a}"),
            format!("registry.example/apps/web@{b}"),
        ];
        assert_eq!(
            held_digest("registry.example/apps/web:2", &digests),
            Some(b.clone())
        );
        assert_eq!(held_digest("busybox:1.36", &digests), Some(a));
        assert_eq!(held_digest("registry.example/other:1", &digests), None);
    }

    #[test]
    fn image_ids_are_told_from_names() {
        let hex = "a".repeat(64);
        assert!(is_image_id(&format!("sha256:{hex}")) && is_image_id(&hex));
        for name in [
            "busybox",
            "busybox:1.36",
            "sha256:abc",
            &format!("x@sha256:{hex}"),
        ] {
            assert!(!is_image_id(name), "{name}");
        }
    }

    #[test]
    fn an_image_is_judged_by_a_name_it_carries() {
        let tags = vec![
            "docker.io/library/busybox:1.36".to_owned(),
            "docker.io/library/busybox:latest".to_owned(),
        ];
        let digests = vec!["docker.io/library/busybox@sha256:".to_owned() + &"b".repeat(64)];
        // The Pod's own words, normalised, when the image carries them.
        assert_eq!(
            chosen_name(Some("busybox:latest"), &tags, &digests),
            Some("docker.io/library/busybox:latest")
        );
        // A name it does not carry is not taken on the caller's word.
        assert_eq!(
            chosen_name(Some("trusted.example/app:1"), &tags, &digests),
            Some(digests[0].as_str())
        );
        // No claim: its one tag, else its digest.
        assert_eq!(
            chosen_name(None, &tags[..1], &digests),
            Some(tags[0].as_str())
        );
        assert_eq!(
            chosen_name(None, &tags, &digests),
            Some(digests[0].as_str())
        );
        assert_eq!(chosen_name(None, &[], &[]), None);
    }
}
