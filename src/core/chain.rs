//! The chain: the stages in kube-apiserver's order, and how each kind of stage runs.
//!
//! Semantics follow k8s.io/apiserver/pkg/admission/plugin/webhook/{mutating,validating}:
//! mutating webhooks run one after another in config order, each seeing the object as
//! patched by the ones before (then `reinvocationPolicy: IfNeeded` webhooks once more if
//! a later one changed the object); validating webhooks run concurrently and the first
//! refusal in config order wins. Warnings and audit annotations of every called webhook
//! are kept. A webhook that cannot be called fails closed (`failurePolicy: Fail`, HTTP 500)
//! or is skipped with a log line and a `failed-open...` audit annotation (`Ignore`).
//! In-process policies report through the same [`Run`] methods.

use std::sync::Arc;
use std::time::Instant;

use super::blocking::Blocking;
use super::client::CallError;
use super::run::Run;
use super::status::{denial_status, failure_status};
use super::webhook::{Reply, Webhook};
use crate::config::Mode;
use crate::metrics::{CallResult, Metrics};
use crate::policy::{Answer, MutatingPolicy, Mutation, ValidatingPolicy};
use crate::review::{AdmissionRequest, Outcome, Refusal};

/// Which part of the chain a door asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: what the runtime doors ask, where no one else mutates or validates.
    All,
    /// The mutation phase only (a `/mutate` webhook call: kube-apiserver validates later).
    Mutation,
    /// The validation phase only, of the object as it comes (`/validate`).
    Validation,
    /// The image rules and signatures only (an ImageReview, a pull).
    Images,
    /// The signatures only (an image record: containerd's `Images/Create`).
    Signatures,
}

impl Scope {
    /// What a runtime door asks about: the whole chain, except `verify-image`, which asks
    /// about an image being pulled and nothing else.
    pub fn of(door: crate::review::Door) -> Scope {
        match door {
            crate::review::Door::VerifyImage => Scope::Images,
            _ => Scope::All,
        }
    }

    pub(super) fn runs(self, stage: &Stage) -> bool {
        matches!(
            (self, stage),
            (Scope::All, _)
                | (
                    Scope::Mutation,
                    Stage::MutatingPolicies(_) | Stage::MutatingWebhooks(_)
                )
                | (
                    Scope::Validation,
                    Stage::ImageSignatures(_)
                        | Stage::ValidatingPolicies(_)
                        | Stage::ValidatingWebhooks(_)
                )
        )
    }
}

/// One step of the chain, in Kubernetes order.
pub(super) enum Stage {
    /// Mutation phase: in-process mutating policies (runtime class,
    /// MutatingAdmissionPolicy), then the webhooks.
    MutatingPolicies(Vec<Arc<dyn MutatingPolicy>>),
    MutatingWebhooks(Vec<Webhook>),
    /// Validation phase: in-process policies (Pod Security, image rules,
    /// ValidatingAdmissionPolicy), then the webhooks.
    /// Validation phase, first: the images' signatures (`signatures`).
    ImageSignatures(Arc<super::signatures::Signatures>),
    ValidatingPolicies(Vec<Arc<dyn ValidatingPolicy>>),
    ValidatingWebhooks(Vec<Webhook>),
}

impl Stage {
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Stage::MutatingWebhooks(h) | Stage::ValidatingWebhooks(h) => h.is_empty(),
            Stage::ValidatingPolicies(p) => p.is_empty(),
            Stage::MutatingPolicies(p) => p.is_empty(),
            Stage::ImageSignatures(_) => false,
        }
    }
}

/// Mutating webhooks: sequential, each sees the previous ones' patches.
pub(super) async fn mutate(hooks: &[Webhook], run: &mut Run<'_>) {
    // Upstream webhookReinvokeContext: IfNeeded webhooks called before a change are
    // called once more after the first round.
    let mut invoked_reinvocable = Vec::new();
    let mut reinvoke = std::collections::BTreeSet::new();
    for (index, hook) in hooks.iter().enumerate() {
        let request = run.current();
        if !hook.matches(&request, &run.namespace_labels) {
            continue;
        }
        let reply = call(hook, &request, run).await;
        let changed = settle(run, hook, index, 0, reply);
        if run.is_refused() {
            return;
        }
        if changed {
            reinvoke.extend(invoked_reinvocable.drain(..));
        }
        if hook.reinvoke_if_needed() {
            invoked_reinvocable.push(index);
        }
    }
    for index in reinvoke {
        let hook = &hooks[index];
        let request = run.current();
        if !hook.matches(&request, &run.namespace_labels) {
            continue;
        }
        let reply = call(hook, &request, run).await;
        settle(run, hook, index, 1, reply);
        if run.is_refused() {
            return;
        }
    }
}

/// Validating webhooks: all called at once; answers are folded in config order.
pub(super) async fn validate(hooks: &[Webhook], run: &mut Run<'_>) {
    let request = run.current();
    let called: Vec<(usize, &Webhook)> = hooks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.matches(&request, &run.namespace_labels))
        .collect();
    run.uncacheable |= called.iter().any(|(_, h)| !h.cacheable());
    let metrics = run.metrics;
    let replies =
        futures_util::future::join_all(called.iter().map(|(_, h)| timed(h, &request, metrics)))
            .await;
    for ((index, hook), reply) in called.into_iter().zip(replies) {
        settle(run, hook, index, 0, reply);
    }
}

/// Calls a mutating webhook, noting what the cache and the metrics need to know.
async fn call(hook: &Webhook, request: &AdmissionRequest, run: &mut Run<'_>) -> Reply {
    run.uncacheable |= !hook.cacheable();
    timed(hook, request, run.metrics).await
}

async fn timed(hook: &Webhook, request: &AdmissionRequest, metrics: &Metrics) -> Reply {
    let started = Instant::now();
    let reply = hook.call(request).await;
    let result = match &reply {
        Reply::CallFailed(CallError::Timeout { .. }) => Some(CallResult::Timeout),
        Reply::CallFailed(_) => Some(CallResult::Error),
        Reply::Answered(_) => Some(CallResult::Answered),
        Reply::DryRunUnsupported => None,
    };
    if let Some(result) = result {
        metrics.webhook_called(hook.name(), result, started.elapsed());
    }
    reply
}

/// In-process mutating policies, in order, each seeing the previous ones' changes.
pub(super) async fn change(
    policies: &[Arc<dyn MutatingPolicy>],
    run: &mut Run<'_>,
    pool: &Blocking,
) {
    for policy in policies {
        let name = policy.name();
        let request = run.current();
        let mutation = match pool.mutate(policy, &request, &run.namespace_labels).await {
            Mutation::Ignored { errors, patch } => {
                tracing::warn!(policy = %name, ?errors, "policy failed; ignored (failurePolicy: Ignore)");
                run.record(name, Outcome::Ignored, errors.join("; "));
                patch.map_or(Mutation::Skip, Mutation::Patch)
            }
            mutation => mutation,
        };
        match mutation {
            Mutation::Skip | Mutation::Ignored { .. } => {}
            Mutation::Allow => run.record(name, Outcome::Allowed, ""),
            Mutation::Patch(patch) if run.effective(policy.mode()) != Mode::Enforce => {
                let mode = run.effective(policy.mode());
                run.record(
                    name,
                    Outcome::Allowed,
                    format!("would apply {patch:?}; not applied in mode {mode:?}"),
                );
            }
            Mutation::Patch(patch) => {
                run.apply_patch(name, &patch);
            }
            Mutation::Deny(message) => {
                let message = format!("policy {name:?} denied the request: {message}");
                run.record(name, Outcome::Denied, &message);
                let status = failure_status(403, "Forbidden", message);
                if run.refuse_by(policy.mode(), name, Refusal::Denied, status) {
                    return;
                }
            }
        }
    }
}

/// In-process validating policies, in order; the first refusal ends the phase.
pub(super) async fn judge(
    policies: &[Arc<dyn ValidatingPolicy>],
    run: &mut Run<'_>,
    pool: &Blocking,
) {
    let request = run.current();
    for policy in policies {
        let name = policy.name();
        let judgement = pool.validate(policy, &request, &run.namespace_labels).await;
        run.verdict.warnings.extend(judgement.warnings);
        for (key, value) in judgement.audit_annotations {
            run.annotate(key, value);
        }
        match judgement.answer {
            Answer::Skip => {}
            Answer::Allow => run.record(name, Outcome::Allowed, ""),
            Answer::Deny(message) => {
                let message = policy.denial(&message);
                run.record(name, Outcome::Denied, &message);
                let status = failure_status(403, "Forbidden", message);
                if run.refuse_by(policy.mode(), name, Refusal::Denied, status) {
                    return;
                }
            }
            Answer::Error(error) => {
                let message = format!("policy {name:?} could not judge the request: {error}");
                run.record(name, Outcome::Failed, &message);
                let status = failure_status(500, "InternalError", message);
                if run.refuse_by(policy.mode(), name, Refusal::Failed, status) {
                    return;
                }
            }
        }
    }
}

/// Folds one webhook reply into the run, with kube-apiserver's wording. Returns whether
/// the object changed.
fn settle(run: &mut Run<'_>, hook: &Webhook, index: usize, round: u8, reply: Reply) -> bool {
    let name = hook.name();
    match reply {
        Reply::DryRunUnsupported => {
            let message = format!("admission webhook {name:?} does not support dry run");
            run.record(name, Outcome::Failed, &message);
            run.refuse(Refusal::Failed, failure_status(400, "BadRequest", message));
            false
        }
        Reply::CallFailed(error) if hook.fails_open() => {
            tracing::warn!(webhook = %name, %error, "failed calling webhook, failing open");
            run.record(name, Outcome::Ignored, error.to_string());
            let phase = if hook.is_mutating() {
                "mutation"
            } else {
                "validating"
            };
            run.annotate(
                format!("failed-open.{phase}.webhook.admission.k8s.io/round_{round}_index_{index}"),
                name.to_owned(),
            );
            false
        }
        Reply::CallFailed(error) => {
            tracing::warn!(webhook = %name, %error, "failed calling webhook, failing closed");
            run.record(name, Outcome::Failed, error.to_string());
            let message = format!("failed calling webhook {name:?}: {error}");
            let status = failure_status(500, "InternalError", message);
            run.refuse_by(hook.mode(), name, Refusal::Failed, status);
            false
        }
        Reply::Answered(answer) => {
            for (key, value) in answer.audit_annotations {
                run.annotate(format!("{name}/{key}"), value);
            }
            run.verdict.warnings.extend(answer.warnings);
            if !answer.allowed {
                let status = denial_status(name, answer.status);
                run.record(name, Outcome::Denied, &status.message);
                run.refuse_by(hook.mode(), name, Refusal::Denied, status);
                return false;
            }
            match answer.patch {
                Some(patch) if !patch.is_empty() && run.effective(hook.mode()) != Mode::Enforce => {
                    let mode = run.effective(hook.mode());
                    let message = format!(
                        "would apply {} patch operation(s); not applied in mode {mode:?}",
                        patch.len()
                    );
                    run.record(name, Outcome::Allowed, message);
                    false
                }
                Some(patch) if !patch.is_empty() => run.apply_patch(name, &patch),
                _ => {
                    run.record(name, Outcome::Allowed, "");
                    false
                }
            }
        }
    }
}
