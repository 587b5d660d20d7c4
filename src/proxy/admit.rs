//! The admitted calls: each is read into one `AdmissionRequest`, decided by the core, and
//! either refused, forwarded as its original bytes, or forwarded re-encoded with the
//! mutations written back.

use std::time::Instant;

use bytes::Bytes;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, ExecProcessRequest, GetContainerRequest,
    GetContainerResponse, UpdateContainerRequest,
};
use prost::Message;
use serde_json::{json, Value};

use super::grpc::{self, Code, Status};
use super::record::{self, PROCESS_TYPE_URL};
use super::{raw, Caller, Proxy};
use crate::config::Conversion;
use crate::convert::{pod, writeback, ContainerRecord, TaskInfo};
use crate::review::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, Operation, Refusal, UserInfo, Verdict,
};

const GET_CONTAINER: &str = "/containerd.services.containers.v1.Containers/Get";

/// The methods the proxy admits; every other call is relayed without being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    CreateContainer,
    UpdateContainer,
    CreateTask,
    Exec,
}

impl Method {
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/containerd.services.containers.v1.Containers/Create" => Method::CreateContainer,
            "/containerd.services.containers.v1.Containers/Update" => Method::UpdateContainer,
            "/containerd.services.tasks.v1.Tasks/Create" => Method::CreateTask,
            "/containerd.services.tasks.v1.Tasks/Exec" => Method::Exec,
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
        if namespace.is_empty() {
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
            Method::Exec => {
                let req = ExecProcessRequest::decode(message).map_err(decode_error)?;
                self.exec(namespace, user, req).await
            }
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
        let record = self.record(ns, container).await?;
        let view = self.view(&record, container)?;
        let review = review(
            Operation::Create,
            pod_kind(),
            pods(),
            None,
            &view,
            None,
            user,
        );
        let verdict = self.decide(&review).await?;
        let Some(mutated) = verdict.mutated else {
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
        let old_record = self.record(ns, &current).await?;
        let record = ContainerRecord {
            image: resolved_image(&merged, &current, &old_record),
            ..record::to_record(ns, &merged)?
        };
        let old_view = self.view(&old_record, &current)?;
        let view = self.view(&record, &merged)?;
        let review = review(
            Operation::Update,
            pod_kind(),
            pods(),
            None,
            &view,
            Some(old_view.object),
            user,
        );
        let verdict = self.decide(&review).await?;
        let Some(mutated) = verdict.mutated else {
            return Ok(Admitted::Unchanged);
        };
        let written = self.write_back(&merged, &record, &view.object, &mutated)?;
        if written.runtime.as_ref().map(|r| &r.name) != merged.runtime.as_ref().map(|r| &r.name) {
            return Err(refused(
                "runtimeClassName",
                "containerd cannot change the runtime of an existing container",
            ));
        }
        if !paths.is_empty() {
            // Every field the mutation changed must be in the mask, or containerd drops it.
            for (field, changed) in [
                ("labels", written.labels != merged.labels),
                ("spec", written.spec != merged.spec),
                ("image", written.image != merged.image),
            ] {
                if changed && !paths.iter().any(|p| p == field) {
                    paths.push(field.to_owned());
                }
            }
            req.update_mask = Some(prost_types::FieldMask { paths });
        }
        req.container = Some(written);
        Ok(Admitted::Rewritten(req.encode_to_vec()))
    }

    async fn create_task(
        &self,
        ns: &str,
        user: &UserInfo,
        req: CreateTaskRequest,
    ) -> Result<Admitted, Status> {
        let container = self.stored_container(ns, &req.container_id).await?;
        let mut record = self.record(ns, &container).await?;
        let runc_binary = match record::runc_binary(req.options.as_ref())? {
            Some(b) => Some(b),
            None => {
                record::runc_binary(container.runtime.as_ref().and_then(|r| r.options.as_ref()))?
            }
        };
        record.task = Some(TaskInfo {
            runtime_path: req.runtime_path.clone(),
            runc_binary: runc_binary.unwrap_or_default(),
        });
        let mut view = self.view(&record, &container)?;
        if self.conversion == Conversion::Raw {
            view.object = json!({
                "containerId": req.container_id,
                "runtimePath": req.runtime_path,
                "options": req.options.as_ref().map(raw::any_to_json),
                "terminal": req.terminal,
                "container": view.object["container"],
            });
        }
        let review = review(
            Operation::Create,
            pod_kind(),
            pods(),
            None,
            &view,
            None,
            user,
        );
        let verdict = self.decide(&review).await?;
        unchanged_only("Tasks/Create", &view.object, verdict.mutated.as_ref())
    }

    async fn exec(
        &self,
        ns: &str,
        user: &UserInfo,
        req: ExecProcessRequest,
    ) -> Result<Admitted, Status> {
        let what = format!("exec {:?} in container {:?}", req.exec_id, req.container_id);
        let process = match &req.spec {
            Some(any) if any.type_url == PROCESS_TYPE_URL => record::parse_json_object(&any.value, &what, crate::convert::strict::Shape::Process)?,
            Some(any) => {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!("portcullis: {what} has a process of type {:?}; only {PROCESS_TYPE_URL:?} can be admitted", any.type_url),
                ))
            }
            None => return Err(Status::new(Code::InvalidArgument, format!("portcullis: {what} carries no process"))),
        };
        let container = self.stored_container(ns, &req.container_id).await?;
        let record = self.record(ns, &container).await?;
        let mut view = self.view(&record, &container)?;
        view.object = match self.conversion {
            // The Kubernetes shape of an exec (`PodExecOptions`) plus what the runtime knows
            // and Kubernetes does not send: the whole OCI process and the container's Pod.
            Conversion::Pod => json!({
                "apiVersion": "v1",
                "kind": "PodExecOptions",
                "stdin": !req.stdin.is_empty(),
                "stdout": !req.stdout.is_empty(),
                "stderr": !req.stderr.is_empty(),
                "tty": req.terminal,
                "container": view.object.pointer("/spec/containers/0/name").cloned().unwrap_or(Value::Null),
                "command": process.get("args").cloned().unwrap_or_else(|| json!([])),
                "execID": req.exec_id,
                "process": process,
                "pod": view.object,
            }),
            Conversion::Raw => json!({
                "containerId": req.container_id,
                "execId": req.exec_id,
                "stdin": req.stdin,
                "stdout": req.stdout,
                "stderr": req.stderr,
                "terminal": req.terminal,
                "spec": process,
                "container": view.object["container"],
            }),
        };
        let kind = GroupVersionKind::core("PodExecOptions");
        let review = review(
            Operation::Connect,
            kind,
            pods(),
            Some("exec"),
            &view,
            None,
            user,
        );
        let verdict = self.decide(&review).await?;
        unchanged_only("Tasks/Exec", &view.object, verdict.mutated.as_ref())
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
        let mut record = record::to_record(ns, container)?;
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
                object: raw::container_object(container)?,
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
        // The core serving now; a reload during this call does not affect it.
        let decider = self.decider.load_full();
        let verdict = decider.admit("proxy", review).await;
        tracing::info!(
            operation = review.operation.as_str(),
            kind = review.kind.kind,
            namespace = review.namespace,
            name = review.name,
            allowed = verdict.allowed,
            mutated = verdict.mutated.is_some(),
            message = verdict.message(),
            "decision"
        );
        if verdict.allowed {
            return Ok(verdict);
        }
        let code = match verdict.refusal {
            Some(Refusal::Failed) => Code::Internal,
            _ => Code::PermissionDenied,
        };
        Err(Status::new(code, verdict.message().to_owned()))
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

fn pod_kind() -> GroupVersionKind {
    GroupVersionKind::core("Pod")
}

fn pods() -> GroupVersionResource {
    GroupVersionResource::core("pods")
}

fn review(
    operation: Operation,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    sub_resource: Option<&str>,
    view: &View,
    old_object: Option<Value>,
    user: &UserInfo,
) -> AdmissionRequest {
    let mut r = AdmissionRequest::new(operation, kind, resource, sub_resource);
    r.name = view.name.clone();
    r.namespace = view.namespace.clone();
    r.object = Some(view.object.clone());
    r.old_object = old_object;
    r.user_info = user.clone();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)], image: &str) -> Container {
        Container {
            id: "c".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            image: image.into(),
            ..Default::default()
        }
    }

    #[test]
    fn update_mask_follows_containerd() {
        let current = container(&[("a", "1"), ("b", "2")], "old");
        let update = container(&[("a", "9")], "new");
        let all = apply_update_mask(&current, &update, &[]).unwrap();
        assert_eq!((all.labels.len(), all.image.as_str()), (1, "new"));
        let one = apply_update_mask(&current, &update, &["labels.a".into()]).unwrap();
        assert_eq!(
            (
                one.labels["a"].as_str(),
                one.labels["b"].as_str(),
                one.image.as_str()
            ),
            ("9", "2", "old")
        );
        let removed = apply_update_mask(&current, &update, &["labels.b".into()]).unwrap();
        assert!(!removed.labels.contains_key("b"));
        assert!(apply_update_mask(&current, &update, &["runtime".into()]).is_err());
    }

    #[test]
    fn mutations_of_unwritable_calls_are_refused_with_the_field() {
        let before = json!({"command": ["sh"]});
        assert!(matches!(
            unchanged_only("Tasks/Exec", &before, None),
            Ok(Admitted::Unchanged)
        ));
        assert!(matches!(
            unchanged_only("Tasks/Exec", &before, Some(&before)),
            Ok(Admitted::Unchanged)
        ));
        let err =
            unchanged_only("Tasks/Exec", &before, Some(&json!({"command": ["id"]}))).unwrap_err();
        assert!(
            err.message.contains("/command/0") && err.message.contains("Tasks/Exec"),
            "{}",
            err.message
        );
    }
}
