//! The YAML shapes of Gatekeeper's objects, as its CRDs define them: ConstraintTemplate
//! (`templates.gatekeeper.sh`), the Constraints it defines (`constraints.gatekeeper.sh`)
//! and the process `Config` (`config.gatekeeper.sh`). Fields Gatekeeper acts on are
//! typed and unknown ones refused, so that a misspelt field is an error and never a
//! silently ignored part of a policy; `metadata` and `status` are read leniently.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::config::webhook::LabelSelector;

pub const TEMPLATE_GROUP: &str = "templates.gatekeeper.sh";
pub const TEMPLATE_KIND: &str = "ConstraintTemplate";
/// `v1` requires a structural parameter schema; `v1beta1` and `v1alpha1` do not.
pub const TEMPLATE_VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha1"];
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";
pub const CONSTRAINT_VERSIONS: [&str; 3] = ["v1beta1", "v1alpha1", "v1"];
pub const CONFIG_GROUP: &str = "config.gatekeeper.sh";
pub const CONFIG_KIND: &str = "Config";
/// The one target a template may have: Kubernetes admission.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// `metadata` of any Gatekeeper object; other metadata fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConstraintTemplate {
    pub api_version: String,
    #[allow(dead_code)] // read for its shape: every field Gatekeeper's CRD has is accepted
    pub kind: String,
    pub metadata: Metadata,
    pub spec: TemplateSpec,
    #[serde(default)]
    #[allow(dead_code)] // Gatekeeper's own report; nothing to read here
    pub status: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateSpec {
    pub crd: Crd,
    #[serde(default)]
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Crd {
    pub spec: CrdSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CrdSpec {
    pub names: Names,
    #[serde(default)]
    pub validation: Option<Validation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Names {
    pub kind: String,
    #[serde(default)]
    #[allow(dead_code)] // kubectl's short names: no kubectl here
    pub short_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    #[serde(default, rename = "openAPIV3Schema")]
    pub open_api_v3_schema: Option<Value>,
    /// Gatekeeper's switch for v1beta1 schemas wrapped by hand; read, not needed here.
    #[serde(default)]
    pub legacy_schema: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    pub target: String,
    /// The legacy form: the Rego source and its libraries.
    #[serde(default)]
    pub rego: Option<String>,
    #[serde(default)]
    pub libs: Vec<String>,
    /// The newer form: one source per engine.
    #[serde(default)]
    pub code: Vec<Code>,
    /// The operations the template judges (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`, `*`);
    /// empty: Gatekeeper's webhook defaults, `CREATE` and `UPDATE`.
    #[serde(default)]
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Code {
    pub engine: String,
    /// Engine-specific: [`RegoSource`] or [`CelSource`].
    pub source: Value,
}

/// `code[].source` of `engine: Rego`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegoSource {
    pub rego: String,
    #[serde(default)]
    pub libs: Vec<String>,
    /// `v1` for Rego v1 syntax; absent or `v0`: v0.
    #[serde(default)]
    pub version: Option<String>,
}

/// `code[].source` of `engine: K8sNativeValidation` (Gatekeeper's `schema.Source`; note
/// the singular `matchCondition`, as Gatekeeper spells it).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CelSource {
    #[serde(default)]
    pub validations: Vec<CelValidation>,
    #[serde(default)]
    pub failure_policy: Option<String>,
    #[serde(default)]
    pub match_condition: Vec<NamedExpression>,
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
    /// Whether Gatekeeper generates a ValidatingAdmissionPolicy; nothing here to generate.
    #[serde(default, rename = "generateVAP")]
    pub generate_vap: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CelValidation {
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedExpression {
    pub name: String,
    pub expression: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Constraint {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ConstraintSpec,
    #[serde(default)]
    #[allow(dead_code)] // Gatekeeper's own report; nothing to read here
    pub status: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConstraintSpec {
    #[serde(default, rename = "match")]
    pub match_: Option<Match>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub enforcement_action: Option<String>,
    #[serde(default)]
    pub scoped_enforcement_actions: Option<Vec<ScopedEnforcementAction>>,
}

/// `spec.match` of a Constraint (Gatekeeper's `match.Match`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    #[serde(default)]
    pub kinds: Vec<Kinds>,
    /// `*` (default), `Cluster` or `Namespaced`.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub name: Option<String>,
    /// `All`, `Original` (default) or `Generated` (objects Gatekeeper's expansion made).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kinds {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScopedEnforcementAction {
    pub action: String,
    #[serde(default)]
    pub enforcement_points: Vec<EnforcementPoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnforcementPoint {
    pub name: String,
}

/// Gatekeeper's process `Config` (`config.gatekeeper.sh/v1alpha1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatekeeperConfig {
    #[allow(dead_code)] // checked by the loader before this shape is read
    pub api_version: String,
    #[allow(dead_code)]
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: GatekeeperConfigSpec,
    #[serde(default)]
    #[allow(dead_code)] // Gatekeeper's own report; nothing to read here
    pub status: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatekeeperConfigSpec {
    /// Namespaces exempted from some processes.
    #[serde(default, rename = "match")]
    pub match_: Vec<ConfigMatch>,
    /// What Gatekeeper replicates into `data.inventory`.
    #[serde(default)]
    pub sync: Option<Sync>,
    /// Tracing and readiness settings of Gatekeeper's own pods: nothing to do here.
    #[serde(default)]
    #[allow(dead_code)]
    pub validation: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    pub readiness: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMatch {
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// `*`, `audit`, `webhook`, `mutation-webhook`, `sync`.
    #[serde(default)]
    pub processes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sync {
    #[serde(default)]
    pub sync_only: Vec<SyncOnly>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncOnly {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}
