//! CEL admission policies as the core runs them: MutatingAdmissionPolicies in the
//! mutation phase, ValidatingAdmissionPolicies in the validation phase. CEL runs on the
//! set's own big-stack threads with a time limit; the core awaits them
//! (`validate_detached`, `mutate_detached`) and its async worker goes on meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::PolicySet;
use crate::config::Config;
use crate::policy::admission::{
    Answer, Judgement, MutatingPolicy, Mutation, Pending, Policies, ValidatingPolicy,
};
use crate::review::AdmissionRequest;

/// [`registry`](crate::policy::registry): the policies, bindings and params of
/// `policyDir`, compiled once.
pub fn register(config: &Config, policies: &mut Policies) -> Result<(), String> {
    let Some(dir) = &config.policy_dir else {
        return Ok(());
    };
    let set = PolicySet::from_documents_ignoring(&dir.documents, &dir.ignored_pairs())
        .map_err(|e| format!("policyDir {}: {e}", dir.path.display()))?;
    // MutatingAdmissionPolicy: after the built-in rule, before the webhooks.
    if let Some(mutating) = set.mutating() {
        policies.mutating.push(Arc::new(mutating));
    }
    if !set.is_empty() {
        policies.validating.push(Arc::new(set));
    }
    Ok(())
}

/// The seam to the decision core, which knows a namespace by its labels: the Namespace
/// object is built from them (`namespaceObject.metadata.{name,labels}`).
impl ValidatingPolicy for PolicySet {
    fn name(&self) -> &str {
        "validatingAdmissionPolicies"
    }

    fn validate(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Judgement {
        judgement(self.evaluate(request, &namespace_of(request, namespace_labels)))
    }

    fn validate_detached<'a>(
        &'a self,
        request: &'a AdmissionRequest,
        namespace_labels: &'a BTreeMap<String, String>,
    ) -> Option<Pending<'a, Judgement>> {
        let namespace = namespace_of(request, namespace_labels);
        Some(Box::pin(async move {
            judgement(self.evaluate_async(request, &namespace).await)
        }))
    }
}

/// The first denial, else the first error, refuses; the policies said nothing when no
/// binding applied.
fn judgement(evaluation: super::Evaluation) -> Judgement {
    let answer = if let Some(denial) = evaluation.denials.first() {
        Answer::Deny(denial.message.clone())
    } else if let Some(error) = evaluation.errors.first() {
        Answer::Error(error.clone())
    } else if evaluation.applied.is_empty() {
        Answer::Skip
    } else {
        Answer::Allow
    };
    Judgement {
        answer,
        warnings: evaluation.warnings,
        audit_annotations: evaluation.audit_annotations,
    }
}

/// The request's Namespace object, built from its labels (`metadata.{name,labels}`).
fn namespace_of(request: &AdmissionRequest, labels: &BTreeMap<String, String>) -> Value {
    if request.namespace.is_empty() {
        Value::Null
    } else {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": request.namespace, "labels": labels},
        })
    }
}

/// The MutatingAdmissionPolicies of a [`PolicySet`], as the decision core's mutating
/// policy: their changes become one JSON Patch (the difference they made).
pub struct MutatingPolicies(PolicySet);

impl PolicySet {
    /// The mutating side, when any MutatingAdmissionPolicy is bound.
    pub fn mutating(&self) -> Option<MutatingPolicies> {
        self.has_mutations().then(|| MutatingPolicies(self.clone()))
    }
}

impl MutatingPolicy for MutatingPolicies {
    fn name(&self) -> &str {
        "mutatingAdmissionPolicies"
    }

    fn mutate(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Mutation {
        let Some(before) = request.object.as_ref() else {
            return Mutation::Skip;
        };
        let namespace = namespace_of(request, namespace_labels);
        mutation(before, self.0.mutate(request, &namespace))
    }

    fn mutate_detached<'a>(
        &'a self,
        request: &'a AdmissionRequest,
        namespace_labels: &'a BTreeMap<String, String>,
    ) -> Option<Pending<'a, Mutation>> {
        let namespace = namespace_of(request, namespace_labels);
        Some(Box::pin(async move {
            let Some(before) = request.object.as_ref() else {
                return Mutation::Skip;
            };
            mutation(before, self.0.mutate_async(request, &namespace).await)
        }))
    }
}

/// The policies' changes as one JSON Patch (the difference they made to `before`).
fn mutation(before: &Value, mutated: super::Mutated) -> Mutation {
    if let Some(error) = mutated.errors.first() {
        return Mutation::Deny(error.clone());
    }
    let patch = mutated
        .object
        .map(|after| json_patch::diff(before, &after))
        .filter(|p| !p.0.is_empty());
    if !mutated.ignored.is_empty() {
        return Mutation::Ignored {
            errors: mutated.ignored,
            patch,
        };
    }
    match patch {
        Some(patch) => Mutation::Patch(patch),
        None if mutated.applied.is_empty() => Mutation::Skip,
        None => Mutation::Allow,
    }
}
