//! Audit, as Gatekeeper's: what already runs, judged by the policies loaded now. Each
//! runtime's containers are listed (containerd's namespaces, dockerd, Podman), each one's
//! request is built by the very conversion its door uses (the proxy's for containerd and
//! dockerd, the hook's for Podman), and every in-process validating policy judges it in
//! audit mode ([`Decider::audit`]): nothing is refused, stopped or changed.
//!
//! I/O stays at the edges: `containerd`, `docker` and `podman` list and read; [`evaluate`]
//! is pure; `render` turns the result into the table, the JSON and the exit code.

mod containerd;
mod docker;
mod podman;
pub(crate) mod render;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::core::Decider;
use crate::review::AdmissionRequest;

/// Who the audit's requests are from, for policies that read `request.userInfo`.
pub const AUDIT_USER: &str = "portcullis-audit";

/// The policy name a container carries when its request cannot be built: the door would
/// refuse to create it (as it refuses what it cannot convert), so it is a violation.
pub const VIEW_POLICY: &str = "portcullis-view";

/// A runtime to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A containerd socket: every namespace, every container.
    Containerd(PathBuf),
    /// A dockerd Engine API socket; its running containers' specs are read from the
    /// containerd dockerd uses (its `GET /info`), as the proxy door sees them.
    Docker(PathBuf),
    /// Podman, run with these global flags (`--root DIR`, ...).
    Podman(Vec<String>),
}

/// Which door's view a container was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Containerd,
    Docker,
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

/// What became of a listed container's request.
#[derive(Debug)]
pub enum View {
    /// The request its door would have built.
    Request(Box<AdmissionRequest>),
    /// The door could not build one (it would refuse the container): why.
    Unbuildable(String),
    /// Nothing to judge (a stopped dockerd container has no OCI spec yet): why.
    Skipped(String),
}

/// One container as a runtime listed it.
#[derive(Debug)]
pub struct Listed {
    pub runtime: Runtime,
    /// The socket it was listed from (`podman` for Podman).
    pub address: String,
    /// The runtime's namespace: containerd's (`default`, `moby`, `k8s.io`, ...) or `podman`.
    pub namespace: String,
    pub id: String,
    /// dockerd's or Podman's name; containerd's id.
    pub name: String,
    /// `running`, `stopped`, `created`, `paused`, `exited`, ... as the runtime says;
    /// `no task` for a containerd container that was never started.
    pub state: String,
    pub view: View,
}

/// One violation found: a policy (or Constraint), what it would do at admission
/// (`deny`, `warn`, `dryrun`, or `error` when the container could not be judged) and its
/// message — the core's audit finding as it is.
pub type Violation = crate::policy::Finding;

/// One audited container: where it is, what its Pod view is called, what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audited {
    pub runtime: Runtime,
    pub address: String,
    pub namespace: String,
    pub id: String,
    pub name: String,
    pub state: String,
    /// The image the policies saw; empty when unknown.
    pub image: String,
    /// The Pod view's namespace and name: what namespaced rules and Constraints matched.
    pub pod_namespace: String,
    pub pod_name: String,
    pub violations: Vec<Violation>,
    /// Why nothing was judged, for a skipped container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Judges one listed container (synchronous: the policies may be slow, run it off the
/// async workers).
pub fn evaluate(listed: Listed, decider: &Decider) -> Audited {
    let mut audited = Audited {
        runtime: listed.runtime,
        address: listed.address,
        namespace: listed.namespace,
        id: listed.id,
        name: listed.name,
        state: listed.state,
        image: String::new(),
        pod_namespace: String::new(),
        pod_name: String::new(),
        violations: Vec::new(),
        skipped: None,
    };
    match listed.view {
        View::Request(request) => {
            audited.image = crate::hook::request::image_of(&request).to_owned();
            audited.pod_namespace = request.namespace.clone();
            audited.pod_name = request.name.clone();
            audited.violations = decider.audit(&request);
        }
        View::Unbuildable(why) => audited.violations.push(Violation {
            policy: VIEW_POLICY.into(),
            action: "error".into(),
            message: why,
        }),
        View::Skipped(why) => audited.skipped = Some(why),
    }
    audited
}

/// Lists every target's containers (an unreachable runtime is an error naming it).
pub async fn list(targets: &[Target], config: &Config) -> anyhow::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    // dockerd first: its containerd namespace is then left out of a containerd target on
    // the same socket, so each container is reported once, under the door that sees it.
    // dockerd before API 1.46 does not say which containerd it uses: the first one named,
    // else the proxy's upstream.
    let fallback = targets
        .iter()
        .find_map(|t| match t {
            Target::Containerd(socket) => Some(socket.as_path()),
            _ => None,
        })
        .unwrap_or(&config.proxy.containerd);
    let mut covered = Vec::new();
    for target in targets {
        if let Target::Docker(socket) = target {
            let (containers, seen) = docker::list(socket, fallback, config).await?;
            listed.extend(containers);
            covered.push(seen);
        }
    }
    for target in targets {
        match target {
            Target::Containerd(socket) => {
                let skip: Vec<&str> = covered
                    .iter()
                    .filter(|(address, _)| same_socket(address, socket))
                    .map(|(_, ns)| ns.as_str())
                    .collect();
                listed.extend(containerd::list(socket, config, &skip).await?);
            }
            Target::Podman(flags) => listed.extend(podman::list(flags, config).await?),
            Target::Docker(_) => {}
        }
    }
    Ok(listed)
}

fn same_socket(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
    canonical(a) == canonical(b)
}

/// Lists the targets and judges every container with `decider`.
pub async fn run(
    targets: &[Target],
    config: &Config,
    decider: Arc<Decider>,
) -> anyhow::Result<Vec<Audited>> {
    let listed = list(targets, config).await?;
    let audited = tokio::task::spawn_blocking(move || {
        listed
            .into_iter()
            .map(|l| evaluate(l, &decider))
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(audited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{Operation, UserInfo};
    use serde_json::json;

    fn listed(view: View) -> Listed {
        Listed {
            runtime: Runtime::Containerd,
            address: "/run/containerd/containerd.sock".into(),
            namespace: "default".into(),
            id: "c1".into(),
            name: "c1".into(),
            state: "running".into(),
            view,
        }
    }

    #[test]
    fn an_unbuildable_view_is_an_error_violation_and_a_skipped_one_none() {
        let decider = Decider::new(&Config::default()).unwrap();
        let a = evaluate(listed(View::Unbuildable("bad spec".into())), &decider);
        assert_eq!(a.violations[0].policy, VIEW_POLICY);
        assert_eq!(a.violations[0].action, "error");
        let a = evaluate(listed(View::Skipped("stopped".into())), &decider);
        assert!(a.violations.is_empty());
        assert_eq!(a.skipped.as_deref(), Some("stopped"));
    }

    #[test]
    fn a_request_is_judged_and_named_by_its_pod_view() {
        let decider = Decider::new(&Config::default()).unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "c1", "namespace": "default"},
            "spec": {"containers": [{"name": "c1", "image": "busybox:1.36"}]}});
        let request = AdmissionRequest::for_pod(Operation::Create, pod, UserInfo::default());
        let a = evaluate(listed(View::Request(Box::new(request))), &decider);
        assert_eq!(
            (
                a.image.as_str(),
                a.pod_namespace.as_str(),
                a.pod_name.as_str()
            ),
            ("busybox:1.36", "default", "c1")
        );
        assert!(a.violations.is_empty());
    }
}
