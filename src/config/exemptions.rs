//! `exemptions:` and `breakGlass:` — requests the chain does not judge. Matching them
//! against a request is `core::exempt`.

use serde::Deserialize;

/// `exemptions:`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    /// containerd namespaces whose requests are not judged.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Image digests (`sha256:…`, or `repo@sha256:…`): a Pod whose every image is pinned to
    /// one of them is not judged.
    #[serde(default)]
    pub images: Vec<String>,
    /// Callers: `uid:N`, `gid:N` (primary or supplementary group), or a user or group name.
    #[serde(default)]
    pub callers: Vec<String>,
}

/// `breakGlass:`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BreakGlass {
    #[serde(default = "default_label")]
    pub label: String,
    /// Who may break the glass, in the `exemptions.callers` forms.
    #[serde(default)]
    pub callers: Vec<String>,
    #[serde(default)]
    pub enabled: bool,
}

impl Default for BreakGlass {
    fn default() -> Self {
        Self {
            label: default_label(),
            callers: Vec::new(),
            enabled: false,
        }
    }
}

fn default_label() -> String {
    "portcullis.dev/break-glass".into()
}
