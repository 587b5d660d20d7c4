//! `portcullis install` / `portcullis uninstall`: the files each door needs on a host,
//! changed the way operators expect of a package — planned first (so `--dry-run` prints the
//! exact diff and a bad input changes nothing), idempotent (a second run finds nothing to
//! do), atomic per file, and undoable (originals kept with a manifest, restored byte for
//! byte). Every path is a host path read and written under `--root`.
//!
//! - `proxy`: containerd's config.toml, the proxy's config, systemd units, daemon.json.
//! - `hooks`, `image-verifier`: the files `hook::install` and `verify_image::install` make.

mod containerd_toml;
mod daemon_json;
mod fsops;
mod manifest;
mod plan;
pub mod proxy;
mod units;

use std::path::Path;

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

/// `install image-verifier`: the wrapper in containerd's verifier `bin_dir`.
pub fn image_verifier(
    root: &Root,
    bin_dir: &Path,
    binary: &Path,
    config: &Path,
) -> anyhow::Result<Plan> {
    let mut plan = Plan::new("image-verifier");
    let text = verifier::wrapper(binary, config);
    plan.write(
        root,
        &bin_dir.join(verifier::WRAPPER),
        text.into_bytes(),
        0o755,
    )?;
    Ok(plan)
}
