//! ValidatingAdmissionPolicy, MutatingAdmissionPolicy and their bindings
//! (`admissionregistration.k8s.io/v1`), evaluated in process with CEL (the `cel` crate
//! and the Kubernetes CEL libraries of `kube-cel`), as kube-apiserver's
//! k8s.io/apiserver/pkg/admission/plugin/policy/{validating,mutating} do.
//!
//! [`PolicySet::from_documents`] parses YAML files of policies, bindings and params (any
//! other object) and compiles every expression once; [`PolicySet::evaluate`] and
//! [`PolicySet::mutate`] are pure and synchronous: a request and its Namespace in, an
//! [`Evaluation`] or a [`Mutated`] out. The bounds on evaluation (size, stack, time —
//! not memory) are described in [`expr`].
//!
//! - [`types`]: the YAML shapes.
//! - `load`: documents into policies, bindings and params; `check`: what they must obey.
//! - `literal`: the typed literals (`JSONPatch{...}`, `Object{...}`) of mutations.
//! - `matching`: `matchConstraints`, `matchResources`, `paramRef`.
//! - `eval`: one validating policy for one binding and one params object.
//! - `mutate`: the mutating policies for one request; `patch` (JSONPatch) and `apply`
//!   (ApplyConfiguration) apply one mutation.
//! - `pool`: the threads CEL runs on, and the time limit.

pub mod expr;
pub mod types;

mod admission;
mod apply;
mod bindings;
mod check;
mod compiled;
mod eval;
mod evaluate;
mod literal;
mod load;
mod matching;
mod mutate;
mod patch;
mod pool;

#[cfg(test)]
mod mutate_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unread_tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use admission::register;
use load::{Binding, Loaded, Policy, Readers};
pub use load::{LoadError, LoadIssue};
use types::{FailurePolicy, ValidationAction};

use crate::review::AdmissionRequest;
use eval::{Decision, Output};
use matching::Params;
use pool::Pool;

/// How long one [`PolicySet::evaluate`] may run CEL, unless set otherwise.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(500);

/// The audit annotation a failed validation with the `Audit` action sets.
pub const VALIDATION_FAILURE_ANNOTATION: &str =
    "validation.policy.admission.k8s.io/validation_failure";

/// Upstream: audit annotation values are cut to 10 KiB.
const MAX_AUDIT_ANNOTATION_BYTES: usize = 10 * 1024;

/// Compiled policies, their bindings and the params objects; immutable, cheap to clone.
#[derive(Clone)]
pub struct PolicySet {
    loaded: Arc<Loaded>,
    pool: Arc<Pool>,
    time_limit: Duration,
}

/// A failed validation under a binding with `Deny`: the request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// `ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MSG`.
    pub message: String,
    /// The validation's `reason` (default `Invalid`) and its HTTP code.
    pub reason: String,
    pub code: u16,
}

/// What the policies say about one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    pub denials: Vec<Denial>,
    /// `Validation failed for ValidatingAdmissionPolicy 'P' with binding 'B': MSG`.
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// Policies that could not be evaluated under `failurePolicy: Fail` (and whose
    /// binding has `Deny`, or that are misconfigured): the request is refused.
    pub errors: Vec<String>,
    /// Evaluation errors `failurePolicy: Ignore` let pass, for logs.
    pub ignored: Vec<String>,
    /// `policy/binding` of every binding that applied to the request.
    pub applied: Vec<String>,
}

#[cfg(test)]
impl Evaluation {
    pub fn is_allowed(&self) -> bool {
        self.denials.is_empty() && self.errors.is_empty()
    }
}

/// What the mutating policies did to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mutated {
    /// The object after every mutation, when they changed it.
    pub object: Option<Value>,
    /// `policy 'P' with binding 'B' denied request: MSG` for every failure under
    /// `failurePolicy: Fail`: the request is refused.
    pub errors: Vec<String>,
    /// The same for failures `failurePolicy: Ignore` let pass.
    pub ignored: Vec<String>,
    /// `policy/binding` of every binding that applied to the request.
    pub applied: Vec<String>,
}

impl Mutated {
    /// Upstream `PolicyError`, routed by the policy's `failurePolicy`.
    fn fail(&mut self, policy: &Policy, binding: &Binding, message: &str) {
        let message = format!(
            "policy '{}' with binding '{}' denied request: {message}",
            policy.name, binding.name
        );
        match policy.failure_policy {
            FailurePolicy::Fail => self.errors.push(message),
            FailurePolicy::Ignore => self.ignored.push(message),
        }
    }
}

/// The value of [`VALIDATION_FAILURE_ANNOTATION`] is a JSON list of these (upstream
/// `ValidationFailureValue`). Upstream keeps only the first failure of a request; this
/// keeps them all.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: &'a [ValidationAction],
}

/// One CEL evaluation to run: a binding (its index) with one params object, or none.
type Task = (usize, Option<Arc<Value>>);

/// A binding that could not be configured: (policy, binding, message).
type Unconfigured<'a> = (&'a Policy, &'a Binding, String);

/// Every binding of `bindings` that applies to `request` (its policy in `policies` matching
/// too), each with the params objects it runs with, in order; `applied` gets their
/// `policy/binding` names. Bindings whose params cannot be found come back separately.
fn tasks<'a>(
    policies: &'a [Policy],
    bindings: &'a [Binding],
    params: &[load::Param],
    request: &AdmissionRequest,
    namespace: &Value,
    applied: &mut Vec<String>,
) -> (Vec<Task>, Vec<Unconfigured<'a>>) {
    let mut tasks = Vec::new();
    let mut unconfigured = Vec::new();
    for (pi, policy) in policies.iter().enumerate() {
        if !matching::matches(&policy.match_constraints, true, request, namespace) {
            continue;
        }
        for (bi, binding) in bindings.iter().enumerate() {
            if binding.policy != pi
                || binding
                    .match_resources
                    .as_ref()
                    .is_some_and(|m| !matching::matches(m, false, request, namespace))
            {
                continue;
            }
            applied.push(format!("{}/{}", policy.name, binding.name));
            match matching::collect_params(policy, binding, params, request) {
                Ok(Params::None) => tasks.push((bi, None)),
                Ok(Params::Some(found)) => {
                    tasks.extend(found.into_iter().map(|p| (bi, Some(p.value.clone()))))
                }
                Ok(Params::NotFoundAllowed) => {}
                Err(e) => unconfigured.push((
                    policy,
                    binding,
                    format!("failed to configure binding: {e}"),
                )),
            }
        }
    }
    (tasks, unconfigured)
}

impl PolicySet {
    /// Parses `(file, YAML text)` pairs — multi-document files welcome — and compiles every
    /// expression. Documents that are neither policies nor bindings are params objects.
    #[cfg(test)]
    pub fn from_documents(docs: &[(PathBuf, String)]) -> Result<PolicySet, LoadError> {
        Self::from_documents_ignoring(docs, &[])
    }

    /// [`PolicySet::from_documents`], documents of the `ignored` (apiVersion, kind) left
    /// alone (`policyDirIgnore`).
    pub fn from_documents_ignoring(
        docs: &[(PathBuf, String)],
        ignored: &[(String, String)],
    ) -> Result<PolicySet, LoadError> {
        Self::build(docs, ignored, Readers::PolicyDir)
    }

    /// The policies `policy::gatekeeper` generated from `K8sNativeValidation` templates,
    /// with the Constraints as their params objects.
    pub fn from_gatekeeper_documents(docs: &[(PathBuf, String)]) -> Result<PolicySet, LoadError> {
        Self::build(docs, &[], Readers::Gatekeeper)
    }

    fn build(
        docs: &[(PathBuf, String)],
        ignored: &[(String, String)],
        readers: Readers,
    ) -> Result<PolicySet, LoadError> {
        let docs = docs.to_vec();
        let ignored = ignored.to_vec();
        // The CEL parser recurses; give it the same big stack as evaluation.
        let handle = std::thread::Builder::new()
            .name("vap-load".into())
            .stack_size(expr::STACK_BYTES)
            .spawn(move || load::load(&docs, &ignored, readers));
        let loaded = match handle.map(|h| h.join()) {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(internal("loading the policies panicked")),
            Err(e) => return Err(internal(&format!("cannot start a thread: {e}"))),
        };
        let loaded = Arc::new(loaded);
        Ok(PolicySet {
            pool: Arc::new(Pool::new()),
            loaded,
            time_limit: DEFAULT_TIME_LIMIT,
        })
    }

    /// The bound on the time one [`evaluate`](Self::evaluate) spends in CEL. Past it, the
    /// bindings not yet evaluated fail as their policy's `failurePolicy` says.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.loaded.bindings.is_empty()
    }

    /// Whether any MutatingAdmissionPolicy is bound.
    pub fn has_mutations(&self) -> bool {
        !self.loaded.mutating_bindings.is_empty()
    }
}

/// Upstream dispatcher: a decision to deny goes where the binding's actions send it; an
/// error does the same under `failurePolicy: Fail` and is dropped under `Ignore`.
fn route<'a>(
    evaluation: &mut Evaluation,
    failures: &mut Vec<ValidationFailure<'a>>,
    policy: &'a Policy,
    binding: &'a Binding,
    output: &'a Output,
) {
    for decision in &output.decisions {
        let (index, message, reason, is_error) = match decision {
            Decision::Violation {
                index,
                message,
                reason,
            } => (*index, message, reason.as_str(), false),
            Decision::Error { index, message } => (*index, message, "Invalid", true),
            Decision::AnnotationError(message) => {
                refuse(evaluation, policy, binding, message);
                continue;
            }
        };
        if is_error && policy.failure_policy == FailurePolicy::Ignore {
            evaluation.ignored.push(denied(policy, binding, message));
            continue;
        }
        for action in &binding.actions {
            match action {
                ValidationAction::Deny if is_error => {
                    evaluation.errors.push(denied(policy, binding, message))
                }
                ValidationAction::Deny => evaluation.denials.push(Denial {
                    message: denied(policy, binding, message),
                    reason: reason.to_owned(),
                    code: reason_code(reason),
                }),
                ValidationAction::Warn => evaluation.warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                    policy.name, binding.name
                )),
                ValidationAction::Audit => failures.push(ValidationFailure {
                    message,
                    policy: &policy.name,
                    binding: &binding.name,
                    expression_index: index,
                    validation_actions: &binding.actions,
                }),
            }
        }
    }
}

/// A configuration or audit-annotation error: refuses under `Fail` whatever the actions.
fn refuse(evaluation: &mut Evaluation, policy: &Policy, binding: &Binding, message: &str) {
    let message = denied(policy, binding, message);
    match policy.failure_policy {
        FailurePolicy::Fail => evaluation.errors.push(message),
        FailurePolicy::Ignore => evaluation.ignored.push(message),
    }
}

fn denied(policy: &Policy, binding: &Binding, message: &str) -> String {
    format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
        policy.name, binding.name
    )
}

/// Upstream `reasonToCode`.
fn reason_code(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_AUDIT_ANNOTATION_BYTES {
        let mut cut = MAX_AUDIT_ANNOTATION_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn internal(message: &str) -> LoadError {
    LoadError {
        issues: vec![LoadIssue {
            file: PathBuf::new(),
            line: None,
            message: message.to_owned(),
        }],
    }
}
