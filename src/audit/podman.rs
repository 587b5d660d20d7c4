//! Podman's containers, through its CLI (Podman has no socket of its own unless its API
//! service runs): `podman ps -a --format json` lists them, `podman inspect` gives each
//! one's OCI spec path (`<graph root>/overlay-containers/<id>/userdata/config.json`). The
//! hook door judges that very file when Podman runs the container, so the request is built
//! by the hook's reader and conversion: the bundle's namespace, its storage root, the
//! `hook.criO` option, `request::bundle_request`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::{Listed, Runtime, View, AUDIT_USER};
use crate::config::Config;
use crate::hook::gate::Gate;
use crate::hook::request;

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
struct Inspected {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "OCIConfigPath", default)]
    oci_config_path: String,
}

/// Every container of the Podman that `podman FLAGS` reaches.
pub(super) async fn list(flags: &[String], config: &Config) -> anyhow::Result<Vec<Listed>> {
    let summaries: Vec<Summary> = podman(flags, &["ps", "-a", "--format", "json"]).await?;
    if summaries.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["inspect", "--type", "container"];
    args.extend(summaries.iter().map(|s| s.id.as_str()));
    let inspected: Vec<Inspected> = podman(flags, &args).await?;
    let config = config.clone();
    let listed = tokio::task::spawn_blocking(move || {
        summaries
            .into_iter()
            .map(|s| {
                let spec_path = inspected
                    .iter()
                    .find(|i| i.id == s.id)
                    .map(|i| PathBuf::from(&i.oci_config_path));
                to_listed(s, spec_path.as_deref(), &config)
            })
            .collect()
    })
    .await?;
    Ok(listed)
}

fn to_listed(s: Summary, spec_path: Option<&Path>, config: &Config) -> Listed {
    let running = s.state == "running" || s.state == "paused";
    let view = match spec_path.and_then(Path::parent) {
        Some(bundle) => match bundle_view(bundle, &s.id, config) {
            Ok(view) => view,
            // Podman writes config.json when it initialises the container: one created
            // but never started may have none yet.
            Err(e) if !running => View::Skipped(format!("{e:#}")),
            Err(e) => View::Unbuildable(format!("{e:#}")),
        },
        None => View::Skipped("podman inspect gave no OCIConfigPath".into()),
    };
    Listed {
        runtime: Runtime::Podman,
        address: "podman".into(),
        namespace: request::PODMAN_NAMESPACE.into(),
        name: s.names.first().cloned().unwrap_or_else(|| s.id.clone()),
        id: s.id,
        state: s.state,
        view,
    }
}

/// The request the hook door builds for the bundle at `bundle` (cli/hook.rs).
fn bundle_view(bundle: &Path, id: &str, config: &Config) -> anyhow::Result<View> {
    let spec = request::read_spec(bundle)?;
    let gate = Gate::from_config(config.clone());
    let namespace = request::namespace(
        &request::annotations(&spec),
        bundle,
        None,
        gate.pod_options().kubernetes_namespace,
    );
    let mut opts = gate.pod_options();
    opts.storage_roots.extend(request::storage_root(bundle));
    let request = request::bundle_request(&namespace, id, &spec, &opts, AUDIT_USER)
        .with_context(|| format!("container {id:?}"))?;
    Ok(View::Request(Box::new(request)))
}

/// Runs `podman FLAGS ARGS` and reads its JSON answer.
async fn podman<T: for<'de> Deserialize<'de>>(
    flags: &[String],
    args: &[&str],
) -> anyhow::Result<T> {
    let what = format!("podman {} {}", flags.join(" "), args.join(" "));
    let run = tokio::process::Command::new("podman")
        .args(flags)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer within {TIMEOUT:?}"))?
        .with_context(|| format!("{what}: cannot run podman; is it installed and on PATH?"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{what}: unexpected answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_container_without_a_spec_is_skipped_a_running_one_is_an_error() {
        let summary = |state: &str| Summary {
            id: "abc".into(),
            names: vec!["web".into()],
            state: state.into(),
        };
        let missing = Path::new("/nonexistent/overlay-containers/abc/userdata/config.json");
        let config = Config::default();
        let l = to_listed(summary("created"), Some(missing), &config);
        assert!(matches!(l.view, View::Skipped(_)), "{:?}", l.view);
        assert_eq!((l.name.as_str(), l.namespace.as_str()), ("web", "podman"));
        let l = to_listed(summary("running"), Some(missing), &config);
        let View::Unbuildable(why) = l.view else {
            panic!("{:?}", l.view);
        };
        assert!(why.contains("config.json"), "{why}");
    }
}
