//! containerd's containers, over its socket with the proxy's own unary client: every
//! namespace (`Namespaces/List`), its containers (`Containers/List`, the spec an `Any` of
//! the OCI spec) and its tasks (`Tasks/List`, running or not). Each container's request is
//! the one the proxy door builds for its `Containers/Create`: the same record, namespace
//! paths resolved on this host, the image asked of dockerd when the record has none and
//! `proxy.docker` is set, and the `proxy.conversion` view (Pod or raw).

use std::collections::BTreeMap;
use std::path::Path;

use containerd_client::services::v1::{
    Container, ListContainersRequest, ListContainersResponse, ListNamespacesRequest,
    ListNamespacesResponse, ListTasksRequest, ListTasksResponse,
};

use super::{Listed, Runtime, View, AUDIT_USER};
use crate::config::{Config, Conversion};
use crate::convert::{nsresolve, pod, schema, PodOptions};
use crate::proxy::docker::Docker;
use crate::proxy::grpc::{Code, Status};
use crate::proxy::upstream::Upstream;
use crate::proxy::{raw, record};
use crate::review::{AdmissionRequest, Operation, UserInfo};

const LIST_NAMESPACES: &str = "/containerd.services.namespaces.v1.Namespaces/List";
const LIST_CONTAINERS: &str = "/containerd.services.containers.v1.Containers/List";
const LIST_TASKS: &str = "/containerd.services.tasks.v1.Tasks/List";
pub(super) const GET_CONTAINER: &str = "/containerd.services.containers.v1.Containers/Get";

/// The state of a container without a task: created, never started (or its task deleted).
pub const NO_TASK: &str = "no task";

/// Every container of the containerd at `socket`, but those in the namespaces `skip`.
pub(super) async fn list(
    socket: &Path,
    config: &Config,
    skip: &[&str],
) -> anyhow::Result<Vec<Listed>> {
    let upstream = Upstream::new(socket);
    let namespaces: ListNamespacesResponse = upstream
        .unary(LIST_NAMESPACES, "", &ListNamespacesRequest::default())
        .await
        .map_err(|s| failed(socket, "Namespaces/List", &s))?;
    let docker = config.proxy.docker.as_deref().map(Docker::new);
    let mut out = Vec::new();
    for ns in &namespaces.namespaces {
        let ns = ns.name.as_str();
        if skip.contains(&ns) {
            continue;
        }
        let containers: ListContainersResponse = upstream
            .unary(LIST_CONTAINERS, ns, &ListContainersRequest::default())
            .await
            .map_err(|s| failed(socket, &format!("Containers/List in namespace {ns:?}"), &s))?;
        let states = task_states(&upstream, ns)
            .await
            .map_err(|s| failed(socket, &format!("Tasks/List in namespace {ns:?}"), &s))?;
        for c in &containers.containers {
            out.push(Listed {
                runtime: Runtime::Containerd,
                address: socket.display().to_string(),
                namespace: ns.to_owned(),
                id: c.id.clone(),
                name: c.id.clone(),
                state: states
                    .get(&c.id)
                    .cloned()
                    .unwrap_or_else(|| NO_TASK.to_owned()),
                view: view(ns, c, config, docker.as_ref()).await,
            });
        }
    }
    Ok(out)
}

/// Each task's status (`running`, `stopped`, `paused`, ...) by container id.
async fn task_states(upstream: &Upstream, ns: &str) -> Result<BTreeMap<String, String>, Status> {
    let tasks: ListTasksResponse = upstream
        .unary(LIST_TASKS, ns, &ListTasksRequest::default())
        .await?;
    Ok(tasks
        .tasks
        .into_iter()
        .map(|p| {
            let status = containerd_client::types::v1::Status::try_from(p.status)
                .map(|s| s.as_str_name().to_ascii_lowercase())
                .unwrap_or_else(|_| "unknown".to_owned());
            let id = if p.id.is_empty() {
                p.container_id
            } else {
                p.id
            };
            (id, status)
        })
        .collect())
}

/// The request the proxy door builds for `Containers/Create` of `c` in namespace `ns`.
pub(super) async fn view(
    ns: &str,
    c: &Container,
    config: &Config,
    docker: Option<&Docker>,
) -> View {
    let mut record = match record::to_record(ns, c) {
        Ok(r) => r,
        Err(s) => return View::Unbuildable(plain(&s)),
    };
    // As the door: only the host can say what a namespace path or a hook binary is, and a
    // path may hang, so off the async workers.
    if nsresolve::needs_host(&record.spec) {
        record = match tokio::task::spawn_blocking(move || {
            nsresolve::resolve(&mut record);
            record
        })
        .await
        {
            Ok(r) => r,
            Err(e) => return View::Unbuildable(format!("resolving namespace paths: {e}")),
        };
    }
    if let (true, Some(docker)) = (record.image.is_empty(), docker) {
        match docker.image_of(&record.id).await {
            Ok(Some(image)) => record.image = image,
            Ok(None) => {}
            Err(e) => {
                return View::Unbuildable(format!(
                    "cannot resolve the image of container {:?} through dockerd: {e}",
                    record.id
                ))
            }
        }
    }
    let opts = PodOptions::new(config);
    let user = UserInfo {
        username: AUDIT_USER.into(),
        ..Default::default()
    };
    let object = match config.proxy.conversion {
        Conversion::Pod => pod::to_pod_value(&record, &opts).map_err(|e| e.to_string()),
        Conversion::Raw => schema::check(&record.spec, &opts.allowed_fields)
            .map_err(|e| e.to_string())
            .and_then(|()| raw::container_object(c).map_err(|s| plain(&s))),
    };
    match object {
        Ok(object) if config.proxy.conversion == Conversion::Pod => View::Request(Box::new(
            crate::hook::request::pod_request(object, AUDIT_USER),
        )),
        Ok(object) => View::Request(Box::new(
            AdmissionRequest::pod(Operation::Create)
                .named(&record.namespace, &record.id)
                .with_object(object)
                .by(user),
        )),
        Err(e) => View::Unbuildable(format!("container {:?}: {e}", record.id)),
    }
}

/// A status's message without the `portcullis: ` the proxy puts before what it answers.
pub(super) fn plain(s: &Status) -> String {
    s.message
        .strip_prefix("portcullis: ")
        .unwrap_or(&s.message)
        .to_owned()
}

/// The error for a failed call: the socket, the call, and what to do.
pub(super) fn failed(socket: &Path, call: &str, s: &Status) -> anyhow::Error {
    if s.code == Code::Unavailable {
        anyhow::anyhow!(
            "{}; is containerd running there? name its socket with --containerd SOCK",
            plain(s)
        )
    } else {
        anyhow::anyhow!(
            "containerd at {}: {call} failed: {}",
            socket.display(),
            plain(s)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Any;
    use serde_json::json;

    fn container(spec: &serde_json::Value) -> Container {
        Container {
            id: "c1".into(),
            image: "docker.io/library/busybox:1.36".into(),
            spec: Some(Any {
                type_url: record::SPEC_TYPE_URL.into(),
                value: serde_json::to_vec(spec).unwrap(),
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn builds_the_proxy_doors_pod_view_or_says_why_not() {
        let spec = json!({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"},
            "root": {"path": "rootfs"}, "linux": {}});
        let config = Config::default();
        let View::Request(r) = view("default", &container(&spec), &config, None).await else {
            panic!("no request");
        };
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("default", "c1"));
        assert_eq!(r.user_info.username, AUDIT_USER);

        let mut c = container(&spec);
        c.spec = None;
        let View::Unbuildable(why) = view("default", &c, &config, None).await else {
            panic!("built a view without a spec");
        };
        assert!(why.contains("carries no OCI spec"), "{why}");
    }

    #[test]
    fn an_unreachable_containerd_names_its_socket_and_the_fix() {
        let s = Status::new(
            Code::Unavailable,
            "portcullis: containerd at /x.sock is unreachable: No such file",
        );
        let e = failed(Path::new("/x.sock"), "Namespaces/List", &s).to_string();
        assert!(e.starts_with("containerd at /x.sock is unreachable"), "{e}");
        assert!(e.contains("--containerd"), "{e}");
    }
}
