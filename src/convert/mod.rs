//! Conversions between the runtime's view of a container and the Kubernetes view policies
//! expect: a containerd container (or an OCI bundle) becomes a v1 Pod, and a mutated Pod is
//! written back into the container.

pub mod caps;
pub(crate) mod cgroups;
mod changes;
pub(crate) mod cri;
mod devices;
pub(crate) mod exec;
pub(crate) mod hostpower;
pub(crate) mod labels;
mod mounts;
pub(crate) mod nsresolve;
pub mod pod;
pub(crate) mod quantity;
pub(crate) mod record;
mod rootfs;
pub(crate) mod schema;
mod security;
mod spec;
pub mod strict;
pub(crate) mod writeback;
mod writeback_security;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod hole_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod writeback_tests;

use std::collections::BTreeMap;

use serde_json::Value;

/// A container as the runtime doors see it, independent of the protocol that carried it
/// (containerd's `Container` message, an OCI bundle, a fixture file).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerRecord {
    /// containerd namespace (`moby` for dockerd, `default` for ctr, `k8s.io` for CRI).
    pub namespace: String,
    pub id: String,
    /// containerd labels (CRI puts `io.kubernetes.*` here).
    pub labels: BTreeMap<String, String>,
    /// Image reference; empty when the caller sent none (dockerd) and it could not be resolved.
    pub image: String,
    /// containerd runtime name, e.g. `io.containerd.runc.v2`.
    pub runtime: String,
    /// The OCI runtime spec as JSON, kept as a value so that fields this build does not
    /// know survive a write-back untouched.
    pub spec: Value,
    /// Set when the request starts a task (containerd `Tasks/Create`).
    pub task: Option<TaskInfo>,
    /// The door's resolution of each `linux.namespaces[].path`, by path
    /// ([`nsresolve::resolve_namespace_paths`]). A path missing here is refused by the view,
    /// which does no I/O of its own.
    pub ns_paths: BTreeMap<String, nsresolve::NsPath>,
    /// `/proc/<pid>/exe` hook paths → the executable the door found there
    /// ([`nsresolve::resolve_hook_exes`]), so `spec.allowedHooks` can name dockerd.
    pub hook_exes: BTreeMap<String, String>,
}

/// What `Tasks/Create` adds to the stored container: how the task will be run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInfo {
    /// `CreateTaskRequest.runtime_path`: a shim binary chosen by the caller.
    pub runtime_path: String,
    /// runc `Options.binary_name` from the task's (or else the container's) runtime options.
    pub runc_binary: String,
}

/// Settings of the Pod view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodOptions {
    /// Kubernetes RuntimeClass name → containerd runtime name (`kata: io.containerd.kata.v2`).
    pub runtime_classes: BTreeMap<String, String>,
    /// OCI hook paths trusted to run on the host (`spec.allowedHooks`).
    pub allowed_hooks: Vec<String>,
    /// Data roots whose `overlay2/<layer id>/merged` (dockerd) or `overlay/<layer id>/merged`
    /// (containers/storage) is a container's own root filesystem, besides the default ones
    /// (rootfs.rs): `spec.storageRoots`, plus the graph root the hook door learns from the
    /// bundle path the runtime gives it.
    pub storage_roots: Vec<String>,
    /// Unknown spec fields let through unjudged (`spec.allowedFields`).
    pub allowed_fields: Vec<String>,
    /// Let `io.kubernetes.pod.namespace` (label or spec annotation) choose the Pod's
    /// namespace. Only where the runtime itself sets it: the hook door on a CRI-O node.
    pub kubernetes_namespace: bool,
}

impl PodOptions {
    /// The options a door reads from the config file.
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            runtime_classes: config.proxy.runtime_classes.clone(),
            allowed_hooks: config.spec.allowed_hooks.clone(),
            storage_roots: config.spec.storage_roots.clone(),
            allowed_fields: config.spec.allowed_fields.clone(),
            kubernetes_namespace: false,
        }
    }
}
