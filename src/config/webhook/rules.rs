//! `rules`: which requests a webhook is called for (upstream `RuleWithOperations`).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{invalid, InvalidWebhook};

/// Upstream `RuleWithOperations`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleWithOperations {
    #[serde(default)]
    pub operations: Vec<OperationType>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// `resource`, `resource/subresource`, `*`, `*/*`, `resource/*` or `*/subresource`.
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OperationType {
    #[serde(rename = "*")]
    All,
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    #[serde(rename = "*")]
    All,
    Cluster,
    Namespaced,
}

impl RuleWithOperations {
    pub(super) fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.operations.is_empty() {
            return Err(invalid(
                "operations",
                "must list at least one operation (or \"*\")",
            ));
        }
        if self.operations.len() > 1 && self.operations.contains(&OperationType::All) {
            return Err(invalid(
                "operations",
                "if '*' is present, must not specify other operations",
            ));
        }
        for (field, list) in [
            ("apiGroups", &self.api_groups),
            ("apiVersions", &self.api_versions),
        ] {
            if list.is_empty() {
                return Err(invalid(
                    field,
                    "must list at least one entry (or \"*\"; \"\" is the core group)",
                ));
            }
            if list.len() > 1 && list.iter().any(|s| s == "*") {
                return Err(invalid(
                    field,
                    format!("if '*' is present, must not specify other {field}"),
                ));
            }
        }
        if self.api_versions.iter().any(String::is_empty) {
            return Err(invalid("apiVersions", "must not contain an empty version"));
        }
        validate_resources(&self.resources).map_err(|m| invalid("resources", m))
    }
}

/// Upstream `validateResources`.
fn validate_resources(resources: &[String]) -> Result<(), String> {
    if resources.is_empty() {
        return Err("must list at least one resource (or \"*\")".into());
    }
    let mut wildcard_sub = BTreeSet::new(); // x/*
    let mut wildcard_res = BTreeSet::new(); // */x
    let mut single_wildcard = false;
    let mut without_sub = false;
    for r in resources {
        if r.is_empty() {
            return Err("must not contain an empty resource".into());
        }
        if r == "*" {
            single_wildcard = true;
        }
        let Some((res, sub)) = r.split_once('/') else {
            without_sub |= r != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            return Err(format!("if '{res}/*' is present, must not specify {r}"));
        }
        if wildcard_res.contains(sub) {
            return Err(format!("if '*/{sub}' is present, must not specify {r}"));
        }
        if sub == "*" {
            wildcard_sub.insert(res);
        }
        if res == "*" {
            wildcard_res.insert(sub);
        }
    }
    if resources.len() > 1 && resources.iter().any(|r| r == "*/*") {
        return Err("if '*/*' is present, must not specify other resources".into());
    }
    if single_wildcard && without_sub {
        return Err(
            "if '*' is present, must not specify other resources without subresources".into(),
        );
    }
    Ok(())
}
