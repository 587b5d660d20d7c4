//! The `admissionregistration.k8s.io/v1` ValidatingAdmissionPolicy,
//! MutatingAdmissionPolicy and their bindings, as YAML files write them
//! (k8s.io/api/admissionregistration/v1/types.go).
//!
//! Specs are closed (`deny_unknown_fields`), so a misspelt key is an error with file and
//! line; `metadata` is open, as the API server's is. Expressions are kept with their
//! position in the file, for compile errors.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::config::webhook::{LabelSelector, MatchPolicy, OperationType, Scope};

pub const API_VERSION: &str = "admissionregistration.k8s.io/v1";
pub const POLICY_KIND: &str = "ValidatingAdmissionPolicy";
pub const BINDING_KIND: &str = "ValidatingAdmissionPolicyBinding";

/// An expression and the line it is written on.
pub type Expression = Spanned<String>;

/// The fields every document has, read first to decide what the document is.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// The part of `metav1.ObjectMeta` policies use; other keys are accepted and ignored.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct ValidatingAdmissionPolicy {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: PolicySpec,
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    #[serde(default)]
    pub param_kind: Option<ParamKind>,
    #[serde(default)]
    pub match_constraints: Option<MatchResources>,
    #[serde(default)]
    pub validations: Vec<Validation>,
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    #[serde(default)]
    pub audit_annotations: Vec<AuditAnnotation>,
    #[serde(default)]
    pub match_conditions: Vec<NamedExpression>,
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParamKind {
    pub api_version: String,
    pub kind: String,
}

/// Upstream `MatchResources`. `matchPolicy` is read but every match is `Exact`: without
/// an API server there is no discovery to find equivalent resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct MatchResources {
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    #[serde(default)]
    pub resource_rules: Vec<NamedRuleWithOperations>,
    #[serde(default)]
    pub exclude_resource_rules: Vec<NamedRuleWithOperations>,
    #[serde(default)]
    pub match_policy: Option<MatchPolicy>,
}

/// Upstream `NamedRuleWithOperations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedRuleWithOperations {
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default)]
    pub operations: Vec<OperationType>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub api_versions: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    pub expression: Expression,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub message_expression: Option<Expression>,
    /// `Unauthorized`, `Forbidden`, `Invalid` or `RequestEntityTooLarge`; default `Invalid`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A `matchConditions` entry or a `variables` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedExpression {
    pub name: String,
    pub expression: Expression,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditAnnotation {
    pub key: String,
    pub value_expression: Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct ValidatingAdmissionPolicyBinding {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: BindingSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingSpec {
    pub policy_name: String,
    #[serde(default)]
    pub param_ref: Option<ParamRef>,
    #[serde(default)]
    pub match_resources: Option<MatchResources>,
    #[serde(default)]
    pub validation_actions: Vec<ValidationAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParamRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub parameter_not_found_action: Option<ParameterNotFoundAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ParameterNotFoundAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
pub enum ValidationAction {
    Deny,
    Warn,
    Audit,
}

/// MutatingAdmissionPolicy is `v1` since Kubernetes 1.34 (beta and alpha before, with the
/// same shape): all three are read.
pub const MUTATING_API_VERSIONS: [&str; 3] = [
    API_VERSION,
    "admissionregistration.k8s.io/v1beta1",
    "admissionregistration.k8s.io/v1alpha1",
];
pub const MUTATING_POLICY_KIND: &str = "MutatingAdmissionPolicy";
pub const MUTATING_BINDING_KIND: &str = "MutatingAdmissionPolicyBinding";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct MutatingAdmissionPolicy {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: MutatingPolicySpec,
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct MutatingPolicySpec {
    #[serde(default)]
    pub param_kind: Option<ParamKind>,
    #[serde(default)]
    pub match_constraints: Option<MatchResources>,
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
    #[serde(default)]
    pub mutations: Vec<Mutation>,
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    #[serde(default)]
    pub match_conditions: Vec<NamedExpression>,
    #[serde(default)]
    pub reinvocation_policy: Option<ReinvocationPolicy>,
}

/// Upstream `Mutation`: a patch type and the one expression that goes with it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mutation {
    pub patch_type: PatchType,
    #[serde(default)]
    pub apply_configuration: Option<PatchExpression>,
    #[serde(default)]
    pub json_patch: Option<PatchExpression>,
}

/// Upstream `ApplyConfiguration` and `JSONPatch`: both hold one expression.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchExpression {
    pub expression: Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PatchType {
    ApplyConfiguration,
    #[serde(rename = "JSONPatch")]
    JsonPatch,
}

/// Accepted, but every policy runs once: `IfNeeded` is not reinvoked (see the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ReinvocationPolicy {
    #[default]
    Never,
    IfNeeded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Some fields are declared only so that upstream documents parse under
// `deny_unknown_fields` (apiVersion, kind, status; matchPolicy and reinvocationPolicy,
// whose only behaviour without an API server is the default): they are never read.
#[allow(dead_code)]
pub struct MutatingAdmissionPolicyBinding {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: MutatingBindingSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutatingBindingSpec {
    pub policy_name: String,
    #[serde(default)]
    pub param_ref: Option<ParamRef>,
    #[serde(default)]
    pub match_resources: Option<MatchResources>,
}
