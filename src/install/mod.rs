//! `portcullis install` / `portcullis uninstall`: the files each door needs on a host,
//! changed the way operators expect of a package — planned first (so `--dry-run` prints the
//! exact diff and a bad input changes nothing), idempotent (a second run finds nothing to
//! do), atomic per file, and undoable (originals kept with a manifest, restored byte for
//! byte). Every path is a host path read and written under `--root`.
//!
//! - `proxy`: containerd's config.toml, the proxy's config, systemd units, daemon.json.
//! - `hooks`: the files `hook::install` makes.
//! - `image-verifier`: containerd's config.toml (the verifier stanza) and the wrapper
//!   `verify_image::install` makes, in the stanza's `bin_dir`.

mod containerd_toml;
mod daemon_json;
mod fsops;
mod manifest;
mod plan;
pub mod proxy;
mod units;
mod verifier_toml;

use std::path::{Path, PathBuf};

pub use fsops::Root;
pub use plan::{uninstall_apply, uninstall_plan, Plan};

use crate::hook::install as hooks;
use crate::verify_image::install as verifier;

/// The components `uninstall` knows.
pub const COMPONENTS: &[&str] = &[proxy::COMPONENT, "hooks", "image-verifier"];

/// `install hooks --podman`: the hooks.d file.
pub fn podman_hook(root: &Root, dir: &Path, binary: &Path, config: &Path) -> anyhow::Result<Plan> {
    let mut plan = Plan::new("hooks");
    let text = serde_json::to_string_pretty(&hooks::hooks_d(binary, config))? + "\n";
    plan.write(root, &dir.join(hooks::HOOKS_FILE), text.into_bytes(), 0o644)?;
    Ok(plan)
}

/// `install hooks --docker --shim PATH`: the wrapper shim dockerd runs as a runtime.
pub fn docker_shim(root: &Root, shim: &Path, binary: &Path, config: &Path) -> anyhow::Result<Plan> {
    let mut plan = Plan::new("hooks");
    plan.write(
        root,
        shim,
        hooks::runc_shim(binary, config).into_bytes(),
        0o755,
    )?;
    Ok(plan)
}

/// `install image-verifier`: the stanza in containerd's config.toml and the wrapper in
/// its `bin_dir` (`bin_dir`: `--bin-dir`, else the one the config names, else
/// containerd's default). Returns the plan and the `bin_dir`.
pub fn image_verifier(
    root: &Root,
    containerd_config: &Path,
    bin_dir: Option<&Path>,
    binary: &Path,
    config: &Path,
) -> anyhow::Result<(Plan, PathBuf)> {
    let mut plan = Plan::new("image-verifier");
    let wanted = bin_dir
        .map(|d| proxy::path_str(d, "--bin-dir"))
        .transpose()?;
    let text = root.read_text(containerd_config)?;
    let edited = verifier_toml::edit(
        text.as_deref(),
        &root.at(containerd_config)?,
        wanted.as_deref(),
        verifier::BIN_DIR,
    )?;
    plan.write(root, containerd_config, edited.text.into_bytes(), 0o644)?;
    let bin_dir = PathBuf::from(edited.bin_dir);
    let wrapper = verifier::wrapper(binary, config);
    plan.write(
        root,
        &bin_dir.join(verifier::WRAPPER),
        wrapper.into_bytes(),
        0o755,
    )?;
    Ok((plan, bin_dir))
}
