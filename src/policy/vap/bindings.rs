//! Chosen bindings evaluated one by one, their raw results kept apart: how another policy
//! source runs CEL on this engine. Gatekeeper's `K8sNativeValidation` templates become
//! ValidatingAdmissionPolicies with one binding per Constraint, as Gatekeeper itself
//! generates them (`policy::gatekeeper::cel`); Gatekeeper decides which constraints
//! match and what their enforcement actions do, so it asks for the matched bindings and
//! gets each one's messages back, not a routed [`Evaluation`](super::Evaluation).

use serde_json::Value;

use super::eval::{Decision, Output};
use super::matching::{self, Params};
use super::types::FailurePolicy;
use super::{PolicySet, Task};
use crate::review::AdmissionRequest;

/// What one binding's validations said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindingResult {
    /// Every failed validation's message, and under `failurePolicy: Fail` every error
    /// (upstream's validator turns those into `Deny` decisions with the error as message).
    pub violations: Vec<String>,
}

impl PolicySet {
    /// The index of the validating binding called `name`.
    pub fn binding_index(&self, name: &str) -> Option<usize> {
        self.loaded.bindings.iter().position(|b| b.name == name)
    }

    /// Evaluates the validating `bindings` (indices from [`binding_index`]) for `request`,
    /// whatever their match constraints say; one result each, in the same order.
    /// `namespace` is as for [`evaluate`](Self::evaluate).
    ///
    /// [`binding_index`]: Self::binding_index
    pub fn evaluate_bindings(
        &self,
        request: &AdmissionRequest,
        namespace: &Value,
        bindings: &[usize],
    ) -> Vec<BindingResult> {
        let (mut results, tasks) = self.binding_tasks(request, bindings);
        if !tasks.is_empty() {
            let work = self.validation_work(request, namespace, &tasks);
            let slots = self.pool.run(tasks.len(), work, self.deadline());
            self.collect(
                &mut results,
                bindings,
                &tasks,
                self.outputs(slots, tasks.len()),
            );
        }
        results
    }

    /// One task per (binding, params object); a binding whose params cannot be found
    /// fails under its policy's failure policy.
    fn binding_tasks(
        &self,
        request: &AdmissionRequest,
        bindings: &[usize],
    ) -> (Vec<BindingResult>, Vec<Task>) {
        let loaded = &self.loaded;
        let mut results = vec![BindingResult::default(); bindings.len()];
        let mut tasks = Vec::new();
        for (slot, &bi) in bindings.iter().enumerate() {
            let Some(binding) = loaded.bindings.get(bi) else {
                continue;
            };
            let policy = &loaded.policies[binding.policy];
            match matching::collect_params(policy, binding, &loaded.params, request) {
                Ok(Params::None) => tasks.push((bi, None)),
                Ok(Params::Some(found)) => {
                    tasks.extend(found.into_iter().map(|p| (bi, Some(p.value.clone()))))
                }
                Ok(Params::NotFoundAllowed) => {}
                Err(e) if policy.failure_policy == FailurePolicy::Fail => results[slot]
                    .violations
                    .push(format!("failed to configure binding: {e}")),
                Err(_) => {}
            }
        }
        (results, tasks)
    }

    fn collect(
        &self,
        results: &mut [BindingResult],
        bindings: &[usize],
        tasks: &[Task],
        outputs: Vec<Output>,
    ) {
        for ((bi, _), output) in tasks.iter().zip(outputs) {
            let Some(slot) = bindings.iter().position(|b| b == bi) else {
                continue;
            };
            let policy = &self.loaded.policies[self.loaded.bindings[*bi].policy];
            let fail = policy.failure_policy == FailurePolicy::Fail;
            for decision in output.decisions {
                match decision {
                    Decision::Violation { message, .. } => results[slot].violations.push(message),
                    Decision::Error { message, .. } | Decision::AnnotationError(message)
                        if fail =>
                    {
                        results[slot].violations.push(message)
                    }
                    Decision::Error { .. } | Decision::AnnotationError(_) => {}
                }
            }
        }
    }
}
