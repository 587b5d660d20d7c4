//! Webhook entries in the config file: one `webhooks[]` entry of a Kubernetes
//! `ValidatingWebhookConfiguration` or `MutatingWebhookConfiguration`
//! (admissionregistration.k8s.io/v1, k8s.io/api/admissionregistration/v1/types.go), field
//! for field so users can paste theirs, plus what a host without an API server needs:
//! `kind` (which of the two configurations the entry comes from) and, in `clientConfig`,
//! `socket` + `path` (plain HTTP over a unix socket) and the client credential files that
//! kube-apiserver would take from its `--admission-control-config-file` kubeconfig.
//!
//! Parsing accepts every upstream field; [`WebhookConfig::validate`] then rejects what we
//! cannot honour (a `service` reference, `matchConditions`) with a message saying so.
//!
//! Two deliberate differences from upstream defaults and validation:
//! - `admissionReviewVersions` defaults to `[v1]` and `sideEffects` is optional (both are
//!   required in v1 objects).
//! - `url` may be plain `http://` when its host is loopback (`127.0.0.0/8`, `::1`,
//!   `localhost`); kube-apiserver requires `https://` everywhere.
//!
//! As upstream, a webhook is called only when one of its `rules` matches: an entry without
//! `rules` is valid but never called.

mod client;
mod rules;
mod selector;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

pub use client::{ServiceReference, WebhookClientConfig};
pub use rules::{OperationType, RuleWithOperations, Scope};
pub use selector::{LabelSelector, LabelSelectorRequirement, SelectorOperator};

/// One `webhooks[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    pub name: String,
    /// Ours: which configuration kind the entry belongs to.
    #[serde(default)]
    pub kind: WebhookKind,
    pub client_config: WebhookClientConfig,
    #[serde(default)]
    pub rules: Vec<RuleWithOperations>,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Accepted; with no API discovery every match is `Exact`.
    #[serde(default)]
    pub match_policy: Option<MatchPolicy>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    /// Consulted only for dry-run requests, as upstream.
    #[serde(default)]
    pub side_effects: Option<SideEffectClass>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: i64,
    #[serde(default = "default_review_versions")]
    pub admission_review_versions: Vec<String>,
    /// Accepted so pasted configurations parse; [`WebhookConfig::validate`] rejects a
    /// non-empty list until CEL is available.
    #[serde(default)]
    pub match_conditions: Vec<MatchCondition>,
    /// Mutating webhooks only.
    #[serde(default)]
    pub reinvocation_policy: Option<ReinvocationPolicy>,
    /// Ours: enforce (default), warn or audit.
    #[serde(default)]
    pub mode: super::Mode,
    /// Ours: decisions this webhook took part in may be answered from the decision cache
    /// (`cache:`). Off by default: a webhook may answer differently to the same request.
    #[serde(default)]
    pub cache: bool,
}

fn default_timeout_seconds() -> i64 {
    10
}
fn default_review_versions() -> Vec<String> {
    vec!["v1".into()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum WebhookKind {
    #[default]
    Validating,
    Mutating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MatchPolicy {
    Exact,
    Equivalent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SideEffectClass {
    Unknown,
    None,
    Some,
    NoneOnDryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ReinvocationPolicy {
    Never,
    IfNeeded,
}

/// Upstream `MatchCondition` (a CEL expression).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchCondition {
    pub name: String,
    pub expression: String,
}

/// The AdmissionReview versions we can speak. We have no preference: the first of these
/// the webhook lists is used, as in kube-apiserver.
pub const SUPPORTED_REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// A webhook entry that cannot be used. `field` is relative to the entry
/// (`clientConfig.url`); the caller prefixes `webhooks[i].`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidWebhook {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl fmt::Display) -> InvalidWebhook {
    InvalidWebhook {
        field: field.into(),
        message: message.to_string(),
    }
}

impl WebhookConfig {
    /// Checks the entry without touching the system (credential files are read when the
    /// decision core is built).
    pub fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.client_config.validate()?;
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| invalid(format!("rules[{i}].{}", e.field), e.message))?;
        }
        if !(1..=30).contains(&self.timeout_seconds) {
            return Err(invalid(
                "timeoutSeconds",
                format!(
                    "must be between 1 and 30 seconds, got {}",
                    self.timeout_seconds
                ),
            ));
        }
        self.validate_review_versions()?;
        if !self.match_conditions.is_empty() {
            return Err(invalid(
                "matchConditions",
                "matchConditions need CEL (issue #3); remove them for now",
            ));
        }
        for (field, selector) in [
            ("namespaceSelector", &self.namespace_selector),
            ("objectSelector", &self.object_selector),
        ] {
            if let Some(selector) = selector {
                selector
                    .validate()
                    .map_err(|e| invalid(format!("{field}.{}", e.field), e.message))?;
            }
        }
        if self.kind == WebhookKind::Validating && self.reinvocation_policy.is_some() {
            return Err(invalid(
                "reinvocationPolicy",
                "only mutating webhooks are reinvoked; set kind: Mutating or remove the field",
            ));
        }
        Ok(())
    }

    fn validate_review_versions(&self) -> Result<(), InvalidWebhook> {
        let field = "admissionReviewVersions";
        let mut seen = BTreeSet::new();
        for v in &self.admission_review_versions {
            if !seen.insert(v.as_str()) {
                return Err(invalid(field, format!("duplicate version {v:?}")));
            }
        }
        if !self
            .admission_review_versions
            .iter()
            .any(|v| SUPPORTED_REVIEW_VERSIONS.contains(&v.as_str()))
        {
            return Err(invalid(
                field,
                format!(
                    "must include at least one of v1, v1beta1 (got {:?})",
                    self.admission_review_versions
                ),
            ));
        }
        Ok(())
    }

    /// The AdmissionReview version to send: the first listed one we support.
    pub fn review_version(&self) -> Option<&str> {
        self.admission_review_versions
            .iter()
            .map(String::as_str)
            .find(|v| SUPPORTED_REVIEW_VERSIONS.contains(v))
    }
}

/// Every entry of `webhooks:`, then that their names are unique: the first problem, as the
/// field (`webhooks[1].name`) and what is wrong.
pub fn validate_all(webhooks: &[WebhookConfig]) -> Result<(), (String, String)> {
    let mut names = BTreeSet::new();
    for (i, w) in webhooks.iter().enumerate() {
        w.validate()
            .map_err(|e| (format!("webhooks[{i}].{}", e.field), e.message))?;
        if !names.insert(w.name.as_str()) {
            return Err((
                format!("webhooks[{i}].name"),
                format!("duplicate webhook name {:?}; names must be unique", w.name),
            ));
        }
    }
    Ok(())
}
