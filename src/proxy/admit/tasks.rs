//! The task calls: `Tasks/Create` starts a stored container, `Tasks/Update` changes its
//! resources, `Tasks/Exec` runs another process in it. Each is judged against the stored
//! container (read upstream), first by the door's own rules (`rules`), then by policy.

use containerd_client::services::v1::snapshots::{MountsRequest, MountsResponse};
use containerd_client::services::v1::{
    Container, CreateTaskRequest, ExecProcessRequest, UpdateTaskRequest,
};
use serde_json::{json, Value};

use super::grpc::{Code, Status};
use super::record::{self, PROCESS_TYPE_URL};
use super::rules;
use super::{raw, unchanged_only, Admitted};
use crate::config::Conversion;
use crate::convert::strict::Shape;
use crate::convert::{cgroups, schema, ContainerRecord, TaskInfo};
use crate::proxy::Proxy;
use crate::review::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, Operation, UserInfo,
};

const SNAPSHOT_MOUNTS: &str = "/containerd.services.snapshots.v1.Snapshots/Mounts";
/// `typeurl` name of `specs.LinuxResources`, the resources of `Tasks/Update`.
const RESOURCES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

impl Proxy {
    pub(super) async fn create_task(
        &self,
        ns: &str,
        user: &UserInfo,
        req: CreateTaskRequest,
    ) -> Result<Admitted, Status> {
        let what = format!("Tasks/Create of container {:?}", req.container_id);
        let tasks = &self.tasks;
        rules::check_stdios(&what, [&req.stdin, &req.stdout, &req.stderr], tasks)?;
        if req.checkpoint.is_some() && !tasks.checkpoints {
            return Err(rules::refused(
                &what,
                "checkpoint",
                "is set: the container's state would come from the caller, not from its spec; \
                 set proxy.tasks.checkpoints to allow restores",
            ));
        }
        rules::check_runtime(&what, "runtime_path", &req.runtime_path, tasks)?;
        rules::check_options(&what, "options", req.options.as_ref(), tasks)?;
        let container = self.stored_container(ns, &req.container_id).await?;
        self.check_container_runtime(&what, &container)?;
        let mut record = self.record(ns, &container).await?;
        self.check_host(&what, &record)?;
        let snapshot = self.snapshot_mounts(ns, &container, &req).await?;
        let label = record
            .spec
            .pointer("/linux/mountLabel")
            .and_then(Value::as_str)
            .unwrap_or_default();
        rules::check_rootfs(&what, &req.rootfs, snapshot.as_deref(), label)?;

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
        let mut review = view.request(AdmissionRequest::pod(Operation::Create), user);
        review.image_digests = self.held_digests(ns, &view.object).await?;
        let verdict = self.decide(&review).await?;
        unchanged_only("Tasks/Create", &view.object, verdict.mutated())
    }

    /// `Tasks/Update`: an UPDATE of the container's Pod whose resources become the
    /// stored spec's with the update's fields laid over them (runc changes only what the
    /// update sets).
    pub(super) async fn update_task(
        &self,
        ns: &str,
        user: &UserInfo,
        req: UpdateTaskRequest,
    ) -> Result<Admitted, Status> {
        let what = format!("Tasks/Update of container {:?}", req.container_id);
        let resources = match &req.resources {
            Some(any) if any.type_url == RESOURCES_TYPE_URL => {
                record::parse_json_object(&any.value, &what, Shape::Resources)?
            }
            Some(any) => {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!("portcullis: {what} has resources of type {:?}; only {RESOURCES_TYPE_URL:?} can be admitted", any.type_url),
                ))
            }
            // Annotations only: nothing about the container changes.
            None => return Ok(Admitted::Unchanged),
        };
        let container = self.stored_container(ns, &req.container_id).await?;
        let old_record = self.record(ns, &container).await?;
        let mut record = old_record.clone();
        let linux = record
            .spec
            .as_object_mut()
            .map(|spec| spec.entry("linux").or_insert_with(|| json!({})));
        match linux {
            Some(Value::Object(linux)) => {
                let current = linux.entry("resources").or_insert_with(|| json!({}));
                merge(current, &resources);
            }
            _ => {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!("portcullis: {what}: the stored spec's `linux` is not an object"),
                ))
            }
        }
        let old_view = self.view(&old_record, &container)?;
        let mut view = self.view(&record, &container)?;
        let mut old = old_view.object;
        if self.conversion == Conversion::Raw {
            old = json!({"containerId": req.container_id, "container": old["container"]});
            view.object = json!({
                "containerId": req.container_id,
                "resources": resources,
                "annotations": req.annotations,
                "container": old["container"],
            });
        }
        let mut review = view
            .request(AdmissionRequest::pod(Operation::Update), user)
            .with_old_object(Some(old));
        review.image_digests = self.held_digests(ns, &view.object).await?;
        let verdict = self.decide(&review).await?;
        unchanged_only("Tasks/Update", &view.object, verdict.mutated())
    }

    pub(super) async fn exec(
        &self,
        ns: &str,
        user: &UserInfo,
        req: ExecProcessRequest,
    ) -> Result<Admitted, Status> {
        let what = format!("exec {:?} in container {:?}", req.exec_id, req.container_id);
        let process = match &req.spec {
            Some(any) if any.type_url == PROCESS_TYPE_URL => record::parse_json_object(&any.value, &what, Shape::Process)?,
            Some(any) => {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!("portcullis: {what} has a process of type {:?}; only {PROCESS_TYPE_URL:?} can be admitted", any.type_url),
                ))
            }
            None => return Err(Status::new(Code::InvalidArgument, format!("portcullis: {what} carries no process"))),
        };
        schema::check_process(&process, &self.pod.allowed_fields)
            .map_err(|e| Status::new(Code::InvalidArgument, format!("portcullis: {what}: {e}")))?;
        rules::check_stdios(&what, [&req.stdin, &req.stdout, &req.stderr], &self.tasks)?;
        let container = self.stored_container(ns, &req.container_id).await?;
        let record = self.record(ns, &container).await?;
        let own = record.spec.get("process").cloned().unwrap_or(Value::Null);
        rules::check_exec(&what, &own, &process)?;
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
        let review = view.request(
            AdmissionRequest::new(
                Operation::Connect,
                kind,
                GroupVersionResource::core("pods"),
                Some("exec"),
            ),
            user,
        );
        let verdict = self.decide(&review).await?;
        unchanged_only("Tasks/Exec", &view.object, verdict.mutated())
    }

    /// What of a container decides how its task will be started: the runtime name and
    /// options its shim gets, and the restart monitor's log labels.
    pub(super) fn check_container_runtime(
        &self,
        what: &str,
        container: &Container,
    ) -> Result<(), Status> {
        rules::check_restart_labels(what, &container.labels, &self.tasks)?;
        let Some(runtime) = &container.runtime else {
            return Ok(());
        };
        rules::check_runtime(what, "container.runtime.name", &runtime.name, &self.tasks)?;
        rules::check_options(
            what,
            "container.runtime.options",
            runtime.options.as_ref(),
            &self.tasks,
        )
    }

    /// The host's side of the record: a `linux.cgroupsPath` naming an existing cgroup.
    pub(super) fn check_host(&self, what: &str, record: &ContainerRecord) -> Result<(), Status> {
        match cgroups::refusal(&record.spec) {
            Some(why) => Err(rules::refused(what, "linux.cgroupsPath", &why)),
            None => Ok(()),
        }
    }

    /// The snapshotter's mounts of the container's snapshot, read only when the caller
    /// sent a rootfs to compare them with.
    async fn snapshot_mounts(
        &self,
        ns: &str,
        container: &Container,
        req: &CreateTaskRequest,
    ) -> Result<Option<Vec<containerd_client::types::Mount>>, Status> {
        if req.rootfs.is_empty() || container.snapshot_key.is_empty() {
            return Ok(None);
        }
        let request = MountsRequest {
            snapshotter: container.snapshotter.clone(),
            key: container.snapshot_key.clone(),
        };
        let response: MountsResponse = self.upstream.unary(SNAPSHOT_MOUNTS, ns, &request).await?;
        Ok(Some(response.mounts))
    }
}

/// Lays `update` over `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, update: &Value) {
    match (base, update) {
        (Value::Object(base), Value::Object(update)) => {
            for (k, v) in update {
                if v.is_null() {
                    continue;
                }
                merge(base.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (base, update) => *base = update.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_lay_their_fields_over_the_stored_resources() {
        let mut resources =
            json!({"memory": {"limit": 67108864, "swap": 1}, "pids": {"limit": 10}});
        let update =
            json!({"memory": {"limit": 8589934592u64}, "cpu": {"quota": 1000}, "pids": null});
        merge(&mut resources, &update);
        assert_eq!(
            resources,
            json!({"memory": {"limit": 8589934592u64, "swap": 1}, "pids": {"limit": 10}, "cpu": {"quota": 1000}})
        );
    }
}
