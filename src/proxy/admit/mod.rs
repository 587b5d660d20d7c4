//! The admitted calls: each is read into one `AdmissionRequest`, decided by the core, and
//! either refused, forwarded as its original bytes, or forwarded re-encoded with the
//! mutations written back.

use std::time::Instant;

use bytes::Bytes;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateImageRequest, CreateTaskRequest, ExecProcessRequest,
    GetContainerRequest, GetContainerResponse, UpdateContainerRequest, UpdateImageRequest,
    UpdateTaskRequest,
};
use prost::Message;
use serde_json::Value;

use super::grpc::{self, Code, Status};
use super::record;
use super::{raw, Caller, Proxy};
use crate::config::Conversion;
use crate::convert::{nsresolve, pod, schema, writeback, ContainerRecord};
use crate::core::Scope;
use crate::review::{AdmissionRequest, Door, Operation, Refusal, UserInfo, Verdict};

mod cri;
mod cri_connect;
mod cri_resize;
mod cri_writeback;
mod images;
mod lineage;
mod rules;
mod tasks;

pub use cri::{CriCall, Enter, PodCall};

const GET_CONTAINER: &str = "/containerd.services.containers.v1.Containers/Get";

/// The methods the proxy admits; every other call is relayed without being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    CreateContainer,
    UpdateContainer,
    CreateTask,
    UpdateTask,
    Exec,
    /// `images.v1.Images/Create` and `/Update`: an image record (`images`).
    CreateImage,
    UpdateImage,
    /// A CRI call (`proxy.cri: admit`).
    Cri(CriCall),
}

impl Method {
    /// The admitted method a routed `service`/`method` pair names, if any.
    pub fn from_parts(service: &str, method: &str) -> Option<Self> {
        Some(match (service, method) {
            ("containerd.services.containers.v1.Containers", "Create") => Method::CreateContainer,
            ("containerd.services.containers.v1.Containers", "Update") => Method::UpdateContainer,
            ("containerd.services.tasks.v1.Tasks", "Create") => Method::CreateTask,
            ("containerd.services.tasks.v1.Tasks", "Update") => Method::UpdateTask,
            ("containerd.services.tasks.v1.Tasks", "Exec") => Method::Exec,
            ("containerd.services.images.v1.Images", "Create") => Method::CreateImage,
            ("containerd.services.images.v1.Images", "Update") => Method::UpdateImage,
            _ => return None,
        })
    }
}

/// What admission did to a call's message.
#[derive(Debug)]
enum Admitted {
    Unchanged,
    Rewritten(Vec<u8>),
}

/// The object policies see, and how to write its mutations back.
struct View {
    object: Value,
    name: String,
    namespace: String,
}

impl View {
    /// `request` (its operation, kind and subresource) about this view, asked by `user`.
    fn request(&self, request: AdmissionRequest, user: &UserInfo) -> AdmissionRequest {
        request
            .named(&self.namespace, &self.name)
            .with_object(self.object.clone())
            .by(user.clone())
    }
}

impl Proxy {
    /// Decides one admitted call from its gRPC-framed request message: the message to
    /// send on (the same bytes, or re-encoded with mutations), or the status to refuse with.
    pub(super) async fn admit_message(
        &self,
        method: Method,
        caller: &Caller,
        namespace: &str,
        framed: Bytes,
    ) -> Result<Bytes, Status> {
        let started = Instant::now();
        let outcome = match grpc::unframe(framed.clone()) {
            Ok(message) => {
                self.admit(method, namespace, caller.user_info(), message)
                    .await
            }
            Err(status) => Err(status),
        };
        let elapsed = started.elapsed();
        // CRI calls send no namespace header: their containers are the CRI plugin's.
        let namespace = match method {
            Method::Cri(_) if namespace.is_empty() => "k8s.io",
            _ => namespace,
        };
        match outcome {
            Ok(admitted) => {
                tracing::debug!(?method, namespace, ?elapsed, "admitted");
                Ok(match admitted {
                    Admitted::Unchanged => framed,
                    Admitted::Rewritten(message) => grpc::frame(&message),
                })
            }
            Err(status) => {
                tracing::info!(?method, namespace, code = ?status.code, message = %status.message, ?elapsed, "refused");
                Err(status)
            }
        }
    }

    async fn admit(
        &self,
        method: Method,
        namespace: &str,
        user: &UserInfo,
        message: Bytes,
    ) -> Result<Admitted, Status> {
        // CRI calls carry their namespace in the Pod's metadata, not in a header.
        if namespace.is_empty() && !matches!(method, Method::Cri(_)) {
            // containerd refuses these too; refusing here keeps policies from seeing a
            // container without its namespace.
            return Err(Status::new(
                Code::FailedPrecondition,
                "namespace is required: the containerd-namespace header is missing",
            ));
        }
        let decode_error = |e: prost::DecodeError| {
            Status::new(
                Code::InvalidArgument,
                format!("portcullis: malformed {method:?} request: {e}"),
            )
        };
        match method {
            Method::CreateContainer => {
                let req = CreateContainerRequest::decode(message).map_err(decode_error)?;
                self.create_container(namespace, user, req).await
            }
            Method::UpdateContainer => {
                let req = UpdateContainerRequest::decode(message).map_err(decode_error)?;
                self.update_container(namespace, user, req).await
            }
            Method::CreateTask => {
                let req = CreateTaskRequest::decode(message).map_err(decode_error)?;
                self.create_task(namespace, user, req).await
            }
            Method::UpdateTask => {
                let req = UpdateTaskRequest::decode(message).map_err(decode_error)?;
                self.update_task(namespace, user, req).await
            }
            Method::Exec => {
                let req = ExecProcessRequest::decode(message).map_err(decode_error)?;
                self.exec(namespace, user, req).await
            }
            Method::CreateImage => {
                let req = CreateImageRequest::decode(message).map_err(decode_error)?;
                self.record_image(namespace, user, req.image, "Images/Create")
                    .await
            }
            Method::UpdateImage => {
                let req = UpdateImageRequest::decode(message).map_err(decode_error)?;
                let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
                if !images::changes_target(&paths) {
                    return Ok(Admitted::Unchanged);
                }
                self.record_image(namespace, user, req.image, "Images/Update")
                    .await
            }
            Method::Cri(call) => self.admit_cri(call, user, &message).await,
        }
    }

    async fn create_container(
        &self,
        ns: &str,
        user: &UserInfo,
        mut req: CreateContainerRequest,
    ) -> Result<Admitted, Status> {
        let container = req.container.as_mut().ok_or_else(|| {
            Status::new(
                Code::InvalidArgument,
                "portcullis: Containers/Create without a container",
            )
        })?;
        let what = format!("Containers/Create of container {:?}", container.id);
        self.check_container_runtime(&what, container)?;
        let record = self.record(ns, container).await?;
        self.check_host(&what, &record)?;
        let view = self.view(&record, container)?;
        let mut review = view.request(AdmissionRequest::pod(Operation::Create), user);
        review.image_digests = self.held_digests(ns, &view.object).await?;
        if let Some(digest) = review.image_digests.values().next() {
            self.check_lineage(ns, container, digest).await?;
        }
        let verdict = self.decide(&review).await?;
        let Some(mutated) = verdict.mutated().cloned() else {
            return Ok(Admitted::Unchanged);
        };
        *container = self.write_back(container, &record, &view.object, &mutated)?;
        Ok(Admitted::Rewritten(req.encode_to_vec()))
    }

    async fn update_container(
        &self,
        ns: &str,
        user: &UserInfo,
        mut req: UpdateContainerRequest,
    ) -> Result<Admitted, Status> {
        let incoming = req.container.as_ref().ok_or_else(|| {
            Status::new(
                Code::InvalidArgument,
                "portcullis: Containers/Update without a container",
            )
        })?;
        let current = self.stored_container(ns, &incoming.id).await?;
        let mut paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let merged = apply_update_mask(&current, incoming, &paths)?;
        let what = format!("Containers/Update of container {:?}", merged.id);
        self.check_container_runtime(&what, &merged)?;
        let old_record = self.record(ns, &current).await?;
        // The image is settled from the stored record (`resolved_image`), not asked of dockerd
        // again.
        let record = resolved(ContainerRecord {
            image: resolved_image(&merged, &current, &old_record),
            ..record::to_record(ns, &merged)?
        })
        .await?;
        self.check_host(&what, &record)?;
        let old_view = self.view(&old_record, &current)?;
        let view = self.view(&record, &merged)?;
        let mut review = view
            .request(AdmissionRequest::pod(Operation::Update), user)
            .with_old_object(Some(old_view.object));
        review.image_digests = self.held_digests(ns, &view.object).await?;
        if let Some(digest) = review.image_digests.values().next() {
            self.check_lineage(ns, &merged, digest).await?;
        }
        let verdict = self.decide(&review).await?;
        let Some(mutated) = verdict.mutated().cloned() else {
            return Ok(Admitted::Unchanged);
        };
        let written = self.write_back(&merged, &record, &view.object, &mutated)?;
        let changed = mutated_fields(&merged, &written)?;
        if !paths.is_empty() {
            // Every field the mutation changed must be in the mask, or containerd drops it.
            for field in changed {
                if !paths.iter().any(|p| p == field) {
                    paths.push(field.to_owned());
                }
            }
            req.update_mask = Some(prost_types::FieldMask { paths });
        }
        req.container = Some(written);
        Ok(Admitted::Rewritten(req.encode_to_vec()))
    }

    /// The stored container, read from containerd with the caller's namespace.
    async fn stored_container(&self, ns: &str, id: &str) -> Result<Container, Status> {
        let response: GetContainerResponse = self
            .upstream
            .unary(
                GET_CONTAINER,
                ns,
                &GetContainerRequest { id: id.to_owned() },
            )
            .await?;
        response
            .container
            .ok_or_else(|| Status::new(Code::NotFound, format!("container {id:?}: not found")))
    }

    /// The record of a container, with its image resolved through dockerd when the caller
    /// (dockerd) sent none.
    async fn record(&self, ns: &str, container: &Container) -> Result<ContainerRecord, Status> {
        let mut record = resolved(record::to_record(ns, container)?).await?;
        if let (true, Some(docker)) = (record.image.is_empty(), &self.docker) {
            match docker.image_of(&record.id).await {
                Ok(Some(image)) => record.image = image,
                Ok(None) => {}
                Err(e) => {
                    return Err(Status::new(
                        Code::Unavailable,
                        format!("portcullis: cannot resolve the image of container {:?} through dockerd: {e}", record.id),
                    ))
                }
            }
        }
        Ok(record)
    }

    fn view(&self, record: &ContainerRecord, container: &Container) -> Result<View, Status> {
        match self.conversion {
            Conversion::Pod => {
                let object = pod::to_pod_value(record, &self.pod).map_err(|e| {
                    Status::new(
                        Code::InvalidArgument,
                        format!("portcullis: container {:?}: {e}", record.id),
                    )
                })?;
                let meta = |k: &str| {
                    object
                        .pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                Ok(View {
                    name: meta("name"),
                    namespace: meta("namespace"),
                    object,
                })
            }
            Conversion::Raw => Ok(View {
                // The raw view shows the spec as sent; what this build cannot judge is
                // refused all the same.
                object: {
                    schema::check(&record.spec, &self.pod.allowed_fields).map_err(|e| {
                        Status::new(
                            Code::InvalidArgument,
                            format!("portcullis: container {:?}: {e}", record.id),
                        )
                    })?;
                    raw::container_object(container)?
                },
                name: record.id.clone(),
                namespace: record.namespace.clone(),
            }),
        }
    }

    /// The container with a mutated object written back into it.
    fn write_back(
        &self,
        container: &Container,
        record: &ContainerRecord,
        before: &Value,
        after: &Value,
    ) -> Result<Container, Status> {
        match self.conversion {
            Conversion::Pod => {
                let mut updated = record.clone();
                writeback::write_back(&mut updated, before, after, &self.pod)
                    .map_err(|e| Status::new(Code::PermissionDenied, format!("portcullis: {e}")))?;
                let mut out = container.clone();
                record::apply_record(&mut out, record, &updated)?;
                Ok(out)
            }
            Conversion::Raw => raw::container_from_json(&after["container"]),
        }
    }

    async fn decide(&self, review: &AdmissionRequest) -> Result<Verdict, Status> {
        self.decide_at(Door::Proxy, Scope::All, review).await
    }

    /// [`Proxy::decide`] for the door `door` (the CRI calls are the `cri` door's) and part
    /// of the chain.
    async fn decide_at(
        &self,
        door: Door,
        scope: Scope,
        review: &AdmissionRequest,
    ) -> Result<Verdict, Status> {
        // The core serving now; a reload during this call does not affect it.
        let decider = self.decider.load_full();
        let verdict = decider.admit_scoped(door, review, scope).await;
        tracing::info!(
            operation = review.operation.as_str(),
            kind = review.kind.kind,
            namespace = review.namespace,
            name = review.name,
            allowed = verdict.is_allowed(),
            mutated = verdict.mutated().is_some(),
            message = verdict.message(),
            "decision"
        );
        if verdict.is_allowed() {
            return Ok(verdict);
        }
        let code = match verdict.refusal() {
            Some(Refusal::Failed) => Code::Internal,
            _ => Code::PermissionDenied,
        };
        Err(Status::new(code, explained(verdict.message(), review)))
    }
}

/// The record with what only the host can say filled in: namespace paths and
/// `/proc/<pid>/exe` hook binaries (stat, readlink), off the relay's thread since a path
/// may sit on a slow or hung filesystem. Most specs have neither, and skip the hop.
async fn resolved(record: ContainerRecord) -> Result<ContainerRecord, Status> {
    if !nsresolve::needs_host(&record.spec) {
        return Ok(record);
    }
    tokio::task::spawn_blocking(move || {
        let mut record = record;
        nsresolve::resolve(&mut record);
        record
    })
    .await
    .map_err(|e| {
        Status::new(
            Code::Internal,
            format!("portcullis: resolving namespace paths: {e}"),
        )
    })
}

/// A refusal about `privileged` of a container the view made privileged for a spec field
/// (a hook, a device, a writable /sys, …) says which: the policy only saw the flag.
fn explained(message: &str, review: &AdmissionRequest) -> String {
    let key = pod::PRIVILEGED_REASONS_ANNOTATION;
    let reasons = review.object.as_ref().and_then(|o| {
        [
            format!("/metadata/annotations/{}", key.replace('/', "~1")),
            format!("/pod/metadata/annotations/{}", key.replace('/', "~1")),
        ]
        .iter()
        .find_map(|p| o.pointer(p).and_then(Value::as_str).map(str::to_owned))
    });
    match reasons {
        Some(why) if message.contains("privileged") => format!(
            "{message} (Portcullis shows the container as privileged because of: {})",
            first_reasons(&why, key)
        ),
        _ => message.to_owned(),
    }
}

/// The first few of the reasons (a JSON list): a spec of `--privileged` has one per host
/// device, a hundred lines no one reads in an error; the annotation keeps them all.
fn first_reasons(why: &str, key: &str) -> String {
    const SHOWN: usize = 3;
    match serde_json::from_str::<Vec<String>>(why) {
        Ok(reasons) if reasons.len() > SHOWN => format!(
            "{}; and {} more, listed in the Pod's annotation {key}",
            reasons[..SHOWN].join("; "),
            reasons.len() - SHOWN
        ),
        Ok(reasons) => reasons.join("; "),
        Err(_) => why.to_owned(),
    }
}

/// A call whose object cannot be written back: a mutation that changes it is refused.
fn unchanged_only(call: &str, before: &Value, after: Option<&Value>) -> Result<Admitted, Status> {
    let Some(after) = after else {
        return Ok(Admitted::Unchanged);
    };
    let fields: Vec<String> = json_patch::diff(before, after)
        .0
        .iter()
        .map(|op| op.path().to_string())
        .collect();
    if fields.is_empty() {
        return Ok(Admitted::Unchanged);
    }
    Err(refused(
        &fields.join(", "),
        &format!("{call} cannot be mutated (mutations are written back at Containers/Create); make the mutating webhook idempotent"),
    ))
}

fn refused(field: &str, why: &str) -> Status {
    Status::new(
        Code::PermissionDenied,
        format!("portcullis: a mutation of {field} cannot be written back: {why}"),
    )
}

/// The image policies should see after an update: the merged one, or — when neither the
/// update nor the stored container names one (dockerd) — the one resolved for the stored.
fn resolved_image(merged: &Container, current: &Container, old: &ContainerRecord) -> String {
    if merged.image.is_empty() && current.image.is_empty() {
        old.image.clone()
    } else {
        merged.image.clone()
    }
}

/// The container as containerd will store it after `Containers/Update`, following
/// containerd's own field-mask rules (core/metadata/containers.go).
fn apply_update_mask(
    current: &Container,
    update: &Container,
    paths: &[String],
) -> Result<Container, Status> {
    let mut out = current.clone();
    let full = ["labels", "spec", "extensions", "image", "snapshotkey"].map(String::from);
    let paths = if paths.is_empty() { &full[..] } else { paths };
    for path in paths {
        if let Some(key) = path.strip_prefix("labels.") {
            match update.labels.get(key) {
                Some(v) => out.labels.insert(key.to_owned(), v.clone()),
                None => out.labels.remove(key),
            };
            continue;
        }
        if let Some(key) = path.strip_prefix("extensions.") {
            match update.extensions.get(key) {
                Some(v) => out.extensions.insert(key.to_owned(), v.clone()),
                None => out.extensions.remove(key),
            };
            continue;
        }
        match path.as_str() {
            "labels" => out.labels = update.labels.clone(),
            "spec" => out.spec = update.spec.clone(),
            "extensions" => out.extensions = update.extensions.clone(),
            "image" => out.image = update.image.clone(),
            "snapshotkey" => out.snapshot_key = update.snapshot_key.clone(),
            other => {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!(
                        "cannot update {other:?} field on {:?}: invalid argument",
                        update.id
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// The update-mask names of the fields a mutation changed between `before` and `after`.
/// A change containerd cannot apply on update (the id, the runtime, the snapshotter, the
/// sandbox) is refused: relayed, it would be dropped or fail, and the container would not
/// be what was admitted.
fn mutated_fields(before: &Container, after: &Container) -> Result<Vec<&'static str>, Status> {
    let fixed = [
        ("id", before.id != after.id),
        ("runtimeClassName", before.runtime != after.runtime),
        ("snapshotter", before.snapshotter != after.snapshotter),
        ("sandbox", before.sandbox != after.sandbox),
    ];
    if let Some((field, _)) = fixed.iter().find(|(_, changed)| *changed) {
        return Err(refused(
            field,
            "containerd cannot change it on an existing container",
        ));
    }
    Ok([
        ("labels", before.labels != after.labels),
        ("spec", before.spec != after.spec),
        ("extensions", before.extensions != after.extensions),
        ("image", before.image != after.image),
        ("snapshotkey", before.snapshot_key != after.snapshot_key),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(field, _)| field)
    .collect())
}

#[cfg(test)]
mod tests;
