//! What an in-process policy is to the decision core: a name, a mode, and an answer about
//! one request. Every policy source (images, runtime class, Pod Security, CEL admission
//! policies, and next Rego and image signatures) implements these traits beside its own
//! code and registers in [`registry`](super::registry).
//!
//! Implementations are pure: they read the request and the namespace's labels and do no
//! I/O. One that can take long never runs on the core's async workers: either it
//! evaluates on threads of its own and hands the core a future to await
//! ([`ValidatingPolicy::validate_detached`]: CEL, whose threads have big stacks and a time
//! limit), or it says [`ValidatingPolicy::may_block`] and the core runs it through
//! `spawn_blocking` (a synchronous interpreter without threads of its own).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Mode;
use crate::review::AdmissionRequest;

/// What an in-process validating policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allow,
    /// The request does not concern the policy (another kind, another operation).
    Skip,
    Deny(String),
    /// The policy could not judge the request; it fails closed.
    Error(String),
}

/// An answer plus what a policy says without refusing: warnings and audit annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub answer: Answer,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

impl From<Answer> for Judgement {
    fn from(answer: Answer) -> Self {
        Self {
            answer,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }
}

/// One violation an audit of an existing object finds (Gatekeeper's audit results).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The policy: an in-process policy's name, or a Gatekeeper Constraint's `KIND/NAME`.
    pub policy: String,
    /// What the policy does with it at admission: `deny`, `warn` or `dryrun`; `error` when
    /// the object could not be judged.
    pub action: String,
    pub message: String,
}

/// A policy's answer being worked out elsewhere, for the core to await.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait ValidatingPolicy: Send + Sync {
    /// The name denials and decision records carry.
    fn name(&self) -> &str;
    /// Judges `request` in a namespace labelled `namespace_labels`.
    fn validate(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Judgement;
    /// How its refusals take effect (the global `mode` overrides it).
    fn mode(&self) -> Mode {
        Mode::Enforce
    }
    /// The message a refusal of `message` carries to the caller.
    fn denial(&self, message: &str) -> String {
        format!("policy {:?} denied the request: {message}", self.name())
    }
    /// Audit of an object that exists already: every violation, whatever the policy
    /// would do with it at admission; nothing is refused. By default: the refusal and the
    /// warnings of [`validate`](Self::validate), by its mode.
    fn audit(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Vec<Finding> {
        let judgement = self.validate(request, namespace_labels);
        let finding = |action: &str, message: String| Finding {
            policy: self.name().to_owned(),
            action: action.to_owned(),
            message,
        };
        let mut findings: Vec<Finding> = match judgement.answer {
            Answer::Deny(message) => vec![finding(mode_action(self.mode()), message)],
            Answer::Error(message) => vec![finding("error", message)],
            Answer::Allow | Answer::Skip => Vec::new(),
        };
        findings.extend(judgement.warnings.into_iter().map(|w| finding("warn", w)));
        findings
    }
    /// Whether an evaluation can take long enough to stall an async worker (an
    /// interpreter, not a few comparisons): the core then runs `validate` through
    /// `spawn_blocking`.
    fn may_block(&self) -> bool {
        false
    }
    /// For a policy that evaluates on threads of its own: the same judgement as
    /// `validate`, as a future that waits for those threads without holding the caller's.
    /// `None`, the default: the core calls `validate`.
    fn validate_detached<'a>(
        &'a self,
        _request: &'a AdmissionRequest,
        _namespace_labels: &'a BTreeMap<String, String>,
    ) -> Option<Pending<'a, Judgement>> {
        None
    }
}

/// The audit action of a refusal in `mode`.
fn mode_action(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "deny",
        Mode::Warn => "warn",
        Mode::Audit => "dryrun",
    }
}

/// What an in-process mutating policy does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Skip,
    Allow,
    Patch(json_patch::Patch),
    Deny(String),
    /// Parts of the policy failed and were let pass (`failurePolicy: Ignore`); the rest
    /// may still have changed the object.
    Ignored {
        errors: Vec<String>,
        patch: Option<json_patch::Patch>,
    },
}

pub trait MutatingPolicy: Send + Sync {
    fn name(&self) -> &str;
    /// Changes `request` in a namespace labelled `namespace_labels`.
    fn mutate(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Mutation;
    fn mode(&self) -> Mode {
        Mode::Enforce
    }
    /// As [`ValidatingPolicy::may_block`].
    fn may_block(&self) -> bool {
        false
    }
    /// As [`ValidatingPolicy::validate_detached`].
    fn mutate_detached<'a>(
        &'a self,
        _request: &'a AdmissionRequest,
        _namespace_labels: &'a BTreeMap<String, String>,
    ) -> Option<Pending<'a, Mutation>> {
        None
    }
}

/// The policies a config asks for, by phase, each list in the order the core runs it.
#[derive(Default)]
pub struct Policies {
    /// The mutation phase's in-process part, before the mutating webhooks.
    pub mutating: Vec<Arc<dyn MutatingPolicy>>,
    /// The validation phase's in-process part, before the validating webhooks.
    pub validating: Vec<Arc<dyn ValidatingPolicy>>,
    /// The image rules alone, for an ImageReview (which asks about images only).
    pub images: Vec<Arc<dyn ValidatingPolicy>>,
}
