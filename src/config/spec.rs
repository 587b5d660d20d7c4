//! `spec:` — the escape hatches of the OCI spec conversion.

use serde::Deserialize;

/// `spec:` — the escape hatches of the OCI spec conversion. Empty by default: a spec that
/// uses anything listed here is refused, or shown as privileged, unless it is listed.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecConfig {
    /// OCI hook binaries (`hooks.*[].path`, exact absolute paths) trusted to run on the
    /// host as root; a spec with any other hook is shown as privileged.
    #[serde(default)]
    pub allowed_hooks: Vec<String>,
    /// Docker or containers/storage data roots besides `/var/lib/docker` and
    /// `/var/lib/containers/storage` (`dockerd --data-root`, `podman --root`): a container
    /// root filesystem at `<root>/overlay2/<id>/merged` or `<root>/overlay/<id>/merged` is the
    /// container's own; any other `root.path` outside the bundle is shown as a hostPath.
    #[serde(default)]
    pub storage_roots: Vec<String>,
    /// Spec fields this build does not know (dotted, `linux.netDevices`) to let through
    /// unjudged; any other unknown field refuses the spec.
    #[serde(default)]
    pub allowed_fields: Vec<String>,
}

impl SpecConfig {
    /// The first entry that could never match: its field (`spec.allowedFields[0]`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, field) in self.allowed_fields.iter().enumerate() {
            let name =
                |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric());
            if !field.split('.').all(name) {
                return Err((
                    format!("spec.allowedFields[{i}]"),
                    format!("{field:?} is not a dotted spec field path such as `linux.netDevices` (no indexes: `mounts.uidMappings` covers every mount)"),
                ));
            }
        }
        for (i, hook) in self.allowed_hooks.iter().enumerate() {
            if !hook.starts_with('/') || hook.split('/').any(|p| p == "..") {
                return Err((
                    format!("spec.allowedHooks[{i}]"),
                    format!("{hook:?} is not an absolute path without `..`; hooks are matched by exact path"),
                ));
            }
        }
        Ok(())
    }
}
