//! `namespaces:` — what Namespace objects would say about containerd namespaces.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `namespaces.NAME:` — what a Namespace object would say about a containerd namespace.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceConfig {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
