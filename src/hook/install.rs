//! What `portcullis install hooks` writes or prints: a hooks.d 1.0.0 file for Podman and
//! CRI-O (containers/common `pkg/hooks/docs/oci-hooks.5.md`), a containerd CRI
//! `base_runtime_spec` with the hooks, and the dockerd `runtimes` entry for the wrapper.

use std::path::Path;

use serde_json::{json, Value};

/// Where Podman and CRI-O look for hooks by default.
pub const PODMAN_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";
/// The file written there.
pub const HOOKS_FILE: &str = "portcullis.json";
/// Where the docs install the wrapper shim dockerd calls.
pub const DOCKER_SHIM: &str = "/usr/local/bin/portcullis-runc";

/// `containerd`'s default spec (`ctr oci spec`, containerd 1.6), the base the CRI plugin
/// starts every container from.
const CONTAINERD_DEFAULT_SPEC: &str = include_str!("base_spec.json");

fn hook_args(config: &Path, stage: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "portcullis".to_owned(),
        "hook".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ];
    if let Some(stage) = stage {
        args.extend(["--stage".to_owned(), stage.to_owned()]);
    }
    args
}

/// The hooks.d file: both stages, every container; the stage is read from the state.
pub fn hooks_d(binary: &Path, config: &Path) -> Value {
    json!({
        "version": "1.0.0",
        "hook": {"path": binary, "args": hook_args(config, None)},
        "when": {"always": true},
        "stages": ["createRuntime", "poststop"],
    })
}

/// containerd's default spec with `hooks.createRuntime` and `hooks.poststop` added, for
/// the CRI plugin's `base_runtime_spec`.
pub fn containerd_base_spec(binary: &Path, config: &Path) -> Value {
    let mut spec: Value =
        serde_json::from_str(CONTAINERD_DEFAULT_SPEC).expect("the embedded spec is JSON");
    let hook = |stage: &str| json!([{"path": binary, "args": hook_args(config, Some(stage))}]);
    spec["hooks"] = json!({
        "createRuntime": hook("createRuntime"),
        "poststop": hook("poststop"),
    });
    spec
}

/// The shim dockerd (or anything that wants a runc path) runs.
pub fn runc_shim(binary: &Path, config: &Path) -> String {
    format!(
        "#!/bin/sh\nexec {} runc --config {} -- \"$@\"\n",
        binary.display(),
        config.display()
    )
}

/// The daemon.json fragment naming the shim as a runtime.
pub fn docker_runtimes(shim: &Path) -> Value {
    json!({"runtimes": {"portcullis": {"path": shim}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_d_file() {
        let v = hooks_d(
            Path::new("/usr/local/bin/portcullis"),
            Path::new("/etc/p.yaml"),
        );
        assert_eq!(
            v,
            json!({"version": "1.0.0",
                "hook": {"path": "/usr/local/bin/portcullis",
                         "args": ["portcullis", "hook", "--config", "/etc/p.yaml"]},
                "when": {"always": true}, "stages": ["createRuntime", "poststop"]})
        );
    }

    #[test]
    fn base_spec_keeps_the_default_and_adds_hooks() {
        let v = containerd_base_spec(Path::new("/bin/p"), Path::new("/c.yaml"));
        assert_eq!(v["ociVersion"], "1.0.2-dev");
        assert!(v["linux"]["namespaces"].is_array());
        assert_eq!(
            v["hooks"]["poststop"][0]["args"],
            json!([
                "portcullis",
                "hook",
                "--config",
                "/c.yaml",
                "--stage",
                "poststop"
            ])
        );
        assert_eq!(v["hooks"]["createRuntime"][0]["path"], "/bin/p");
    }

    #[test]
    fn docker_entry_and_shim() {
        assert_eq!(
            docker_runtimes(Path::new(DOCKER_SHIM)),
            json!({"runtimes": {"portcullis": {"path": "/usr/local/bin/portcullis-runc"}}})
        );
        assert_eq!(
            runc_shim(Path::new("/usr/local/bin/portcullis"), Path::new("/etc/portcullis/config.yaml")),
            "#!/bin/sh\nexec /usr/local/bin/portcullis runc --config /etc/portcullis/config.yaml -- \"$@\"\n"
        );
    }
}
