//! What a task call may choose beyond the container it starts from, judged by the door
//! before any policy: each of these runs something on the host as root or hands the
//! container host resources, and none has a Pod field a policy could look at.
//!
//! - `rootfs`: must be the snapshotter's mounts of the container's own snapshot; any
//!   other list (`bind` of `/`) gives the container a host directory as its root.
//! - stdio URIs: `binary://` makes the shim run that binary as root, `file://` makes it
//!   write that file as root. Plain paths and `fifo://` are FIFOs the shim opens.
//! - runtime options: a runc binary, a state root, CRIU paths, no pivot_root or a shim
//!   cgroup are the caller choosing how root on the host runs the container.
//! - `runtime_path` and absolute runtime names: a shim binary the caller chose.
//! - a checkpoint: the container's memory and state come from the caller, not the spec.
//!
//! All of them are refused unless allow-listed under `proxy.tasks` (empty by default).
//! Pure: the door reads the snapshotter's mounts and hands them in.

use containerd_client::types::Mount;
use prost::Message;
use prost_types::Any;
use serde_json::Value;

use crate::config::TaskRules;
use crate::proxy::grpc::{Code, Status};
use crate::proxy::record::{CreateOptions, LegacyRuncOptions, RuncOptions};

/// Refusal of a task call for `field`, saying how to allow it.
pub fn refused(what: &str, field: &str, why: &str) -> Status {
    Status::new(
        Code::PermissionDenied,
        format!("portcullis: {what}: {field} {why}"),
    )
}

/// `rootfs` of `Tasks/Create` against the snapshotter's mounts of the container's
/// snapshot (`None`: the container has no snapshot). With an SELinux `linux.mountLabel`,
/// containerd's client appends `context="LABEL"` to each mount's options, as
/// `label.FormatMountLabel` writes it; that is the only difference allowed.
pub fn check_rootfs(
    what: &str,
    rootfs: &[Mount],
    snapshot: Option<&[Mount]>,
    mount_label: &str,
) -> Result<(), Status> {
    if rootfs.is_empty() {
        // The spec's root.path is used as it is; the Pod view judges it.
        return Ok(());
    }
    let labelled = |mounts: &[Mount]| -> Vec<Mount> {
        let mut mounts = mounts.to_vec();
        if !mount_label.is_empty() {
            for m in &mut mounts {
                m.options.push(format!("context={mount_label:?}"));
            }
        }
        mounts
    };
    match snapshot {
        Some(mounts) if mounts == rootfs || labelled(mounts) == rootfs => Ok(()),
        Some(_) => Err(refused(
            what,
            "rootfs",
            "differs from the snapshotter's mounts of the container's snapshot; send the \
             mounts containerd's Snapshots/Mounts returns for it, or none",
        )),
        None => Err(refused(
            what,
            "rootfs",
            "is set, but the container has no snapshot to take it from; a caller-chosen \
             root filesystem cannot be judged",
        )),
    }
}

/// One stdio URI of `Tasks/Create` or `Tasks/Exec`.
pub fn check_stdio(what: &str, field: &str, uri: &str, rules: &TaskRules) -> Result<(), Status> {
    let Some((scheme, _)) = uri.split_once("://") else {
        // A plain path: a FIFO the shim opens (and refuses if it is not one).
        return Ok(());
    };
    match scheme {
        "fifo" => Ok(()),
        "binary" | "file" => {
            let target = uri.split_once('?').map_or(uri, |(t, _)| t);
            if rules.stdio.iter().any(|allowed| allowed == target) {
                Ok(())
            } else {
                Err(refused(
                    what,
                    field,
                    &format!(
                        "{uri:?} makes containerd's shim run or write that path as root; \
                         list {target:?} under proxy.tasks.stdio to allow it"
                    ),
                ))
            }
        }
        other => Err(refused(
            what,
            field,
            &format!("{uri:?} has the scheme {other:?}, which the proxy cannot judge"),
        )),
    }
}

/// The three stdio URIs of `Tasks/Create` or `Tasks/Exec`.
pub fn check_stdios(
    what: &str,
    [stdin, stdout, stderr]: [&str; 3],
    rules: &TaskRules,
) -> Result<(), Status> {
    check_stdio(what, "stdin", stdin, rules)?;
    check_stdio(what, "stdout", stdout, rules)?;
    check_stdio(what, "stderr", stderr, rules)
}

/// containerd's restart monitor starts the task of a container labelled
/// `containerd.io/restart.status: running` by itself, with no `Tasks/Create` to judge, and
/// takes its stdio from these labels: they are judged here, at the container, as that
/// task's stdio would be.
pub fn check_restart_labels(
    what: &str,
    labels: &std::collections::HashMap<String, String>,
    rules: &TaskRules,
) -> Result<(), Status> {
    if let Some(uri) = labels.get("containerd.io/restart.loguri") {
        check_stdio(what, "label containerd.io/restart.loguri", uri, rules)?;
    }
    if let Some(path) = labels.get("containerd.io/restart.logpath") {
        // A plain path here is a file containerd writes as root, not a FIFO.
        let uri = format!("file://{path}");
        check_stdio(what, "label containerd.io/restart.logpath", &uri, rules)?;
    }
    Ok(())
}

/// A runtime name or `runtime_path` that is a binary path: the shim containerd will run.
pub fn check_runtime(
    what: &str,
    field: &str,
    runtime: &str,
    rules: &TaskRules,
) -> Result<(), Status> {
    let is_path = runtime.starts_with('/') || runtime.contains("..");
    if runtime.is_empty() || !is_path || rules.runtime_paths.iter().any(|p| p == runtime) {
        return Ok(());
    }
    Err(refused(
        what,
        field,
        &format!(
            "{runtime:?} names a shim binary that containerd would run as root; list it \
             under proxy.tasks.runtimePaths to allow it"
        ),
    ))
}

/// Runtime options (of a container, or of `Tasks/Create`).
/// Only runc's option types are understood; in them only a runc binary on
/// `proxy.tasks.runcBinaries`, a runc state root on `proxy.tasks.runcRoots`, the I/O owner, the keyring and cgroup-driver switches and the terminal
/// flag may be set.
pub fn check_options(
    what: &str,
    field: &str,
    options: Option<&Any>,
    rules: &TaskRules,
) -> Result<(), Status> {
    let Some(any) = options else { return Ok(()) };
    let Some((binary, forbidden)) = runc_choices(what, field, any, rules)? else {
        return Ok(());
    };
    if let Some((name, Some(value))) = forbidden.iter().find(|(_, set)| set.is_some()) {
        return Err(refused(
            what,
            &format!("{field}.{name}"),
            &format!(
                "is {value:?}: it lets the caller choose how root on the host runs the \
                 container; see proxy.tasks in docs/configuration.md"
            ),
        ));
    }
    // A bare name (`runc`, dockerd's) is looked up on containerd's PATH, which the caller
    // does not choose; policies still see it (`portcullis.dev/runc-binary`). A path is the
    // caller's choice of a program to run as root.
    if binary.contains('/') && !rules.runc_binaries.contains(&binary) {
        return Err(refused(
            what,
            &format!("{field}.binary_name"),
            &format!(
                "{binary:?} names a runtime binary containerd would run as root; list it \
                 under proxy.tasks.runcBinaries to allow it"
            ),
        ));
    }
    Ok(())
}

/// (option name, its value when set) of the runc options that hand the caller root on
/// the host.
type RootOptions = Vec<(&'static str, Option<String>)>;

/// What runc options choose: the runc binary (empty when unset), and the [`RootOptions`].
/// `None`: empty options of a type that is not runc's, which choose nothing.
fn runc_choices(
    what: &str,
    field: &str,
    any: &Any,
    rules: &TaskRules,
) -> Result<Option<(String, RootOptions)>, Status> {
    let decode_error = |e: prost::DecodeError| {
        Status::new(
            Code::InvalidArgument,
            format!(
                "portcullis: {what}: {field} of type {:?} do not decode: {e}",
                any.type_url
            ),
        )
    };
    let bytes = any.value.as_slice();
    let on = |set: bool| set.then(|| "true".to_owned());
    let text = |s: &String| (!s.is_empty()).then(|| s.clone());
    let chosen = match any.type_url.trim_start_matches('/') {
        "containerd.runc.v1.Options" | "io.containerd.runc.v1.Options" => {
            let o = RuncOptions::decode(bytes).map_err(decode_error)?;
            (
                o.binary_name,
                vec![
                    ("no_pivot_root", on(o.no_pivot_root)),
                    ("shim_cgroup", text(&o.shim_cgroup)),
                    ("root", (!own_root(&o.root, rules)).then(|| o.root.clone())),
                    ("criu_path", text(&o.criu_path)),
                    ("criu_image_path", text(&o.criu_image_path)),
                    ("criu_work_path", text(&o.criu_work_path)),
                    ("task_api_address", text(&o.task_api_address)),
                    ("task_api_version", text(&o.task_api_version)),
                ],
            )
        }
        "containerd.linux.runc.RuncOptions" => {
            let o = LegacyRuncOptions::decode(bytes).map_err(decode_error)?;
            (
                o.runtime,
                vec![
                    ("runtime_root", (!own_root(&o.runtime_root, rules)).then(|| o.runtime_root.clone())),
                    ("criu_path", text(&o.criu_path)),
                ],
            )
        }
        "containerd.linux.runc.CreateOptions" => {
            let o = CreateOptions::decode(bytes).map_err(decode_error)?;
            (
                String::new(),
                vec![
                    ("no_pivot_root", on(o.no_pivot_root)),
                    ("open_tcp", on(o.open_tcp)),
                    ("external_unix_sockets", on(o.external_unix_sockets)),
                    ("file_locks", on(o.file_locks)),
                    ("empty_namespaces", text(&o.empty_namespaces.join(","))),
                    ("cgroups_mode", text(&o.cgroups_mode)),
                    ("shim_cgroup", text(&o.shim_cgroup)),
                    ("criu_work_path", text(&o.criu_work_path)),
                    ("criu_image_path", text(&o.criu_image_path)),
                ],
            )
        }
        _ if bytes.is_empty() => return Ok(None),
        other => {
            return Err(refused(
                what,
                field,
                &format!("are of type {other:?}, which the proxy cannot judge; only runc's options can be admitted"),
            ))
        }
    };
    Ok(Some(chosen))
}

/// runc's state root (`Options.root`, `RuncOptions.runtime_root`): unset, or on
/// `proxy.tasks.runcRoots`. The shim runs runc with `<root>/<namespace>`, but a root the
/// caller made (`/tmp/x` with `x/default` a symlink to another namespace's runc state)
/// would let a container that reuses an id from there drive that namespace's container.
fn own_root(root: &str, rules: &TaskRules) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty()
        || rules
            .runc_roots
            .iter()
            .any(|r| r.trim_end_matches('/') == root)
}

/// The exec'd process may not hold more than the container's own: `convert::exec`.
pub fn check_exec(what: &str, container: &Value, exec: &Value) -> Result<(), Status> {
    crate::convert::exec::check(container, exec).map_err(|r| refused(what, &r.field, &r.why))
}

#[cfg(test)]
mod tests;
