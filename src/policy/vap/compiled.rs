//! What loading makes: policies, bindings and params, every expression compiled once,
//! and the problems found on the way. `check` builds these and `load` collects them; both
//! (and the evaluation) use this module, which uses neither.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::config::policy_dir::LoadIssue;

use super::expr::Program;
use super::types::*;

/// A compiled expression and its source text.
pub(crate) struct Compiled {
    pub source: String,
    pub program: Program,
}

pub(crate) struct CompiledValidation {
    pub expression: Compiled,
    pub message: Option<String>,
    pub message_expression: Option<Compiled>,
    pub reason: String,
}

/// One of a MutatingAdmissionPolicy's `mutations`.
pub(crate) struct CompiledMutation {
    pub patch_type: PatchType,
    pub expression: Compiled,
}

/// A ValidatingAdmissionPolicy (with validations and audit annotations) or a
/// MutatingAdmissionPolicy (with mutations).
pub(crate) struct Policy {
    pub name: String,
    pub param_kind: Option<ParamKind>,
    pub match_constraints: MatchResources,
    pub failure_policy: FailurePolicy,
    pub match_conditions: Vec<(String, Compiled)>,
    pub variables: Vec<(String, Compiled)>,
    pub validations: Vec<CompiledValidation>,
    pub audit_annotations: Vec<(String, Compiled)>,
    pub mutations: Vec<CompiledMutation>,
}

pub(crate) struct Binding {
    pub name: String,
    pub policy: usize,
    pub param_ref: Option<ParamRef>,
    pub match_resources: Option<MatchResources>,
    pub actions: Vec<ValidationAction>,
}

/// A params object: any document that is not a policy or a binding of either kind.
pub(crate) struct Param {
    /// The file it was read from, for errors.
    pub file: PathBuf,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub value: Arc<serde_json::Value>,
}
