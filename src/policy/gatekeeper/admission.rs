//! Gatekeeper's Constraints as the decision core runs them: one validating policy,
//! `gatekeeper`, after the ValidatingAdmissionPolicies. Its denials read as Gatekeeper's
//! webhook writes them — `admission webhook "portcullis" denied the request:
//! [constraint] message`, one line per violation — `warn` violations become warnings in
//! the same form, `dryrun` ones say nothing at admission and show in audit. Rego runs
//! on the caller's thread, so the core runs the policy off its async workers
//! (`may_block`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Action, Gatekeeper, Point, Settings};
use crate::config::Config;
use crate::policy::admission::{Answer, Finding, Judgement, Policies, ValidatingPolicy};
use crate::review::AdmissionRequest;

/// The name webhooks' denials carry, as Gatekeeper's carry `validation.gatekeeper.sh`.
pub const WEBHOOK_NAME: &str = "portcullis";

/// [`registry`](crate::policy::registry): the templates and Constraints of `policyDir`.
pub fn register(config: &Config, policies: &mut Policies) -> Result<(), String> {
    let Some(dir) = &config.policy_dir else {
        return Ok(());
    };
    let ignored = dir.ignored_pairs();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = config
        .namespaces
        .iter()
        .map(|(name, ns)| (name.clone(), ns.labels.clone()))
        .collect();
    let settings = Settings {
        ignored: &ignored,
        engines: &config.gatekeeper.engines,
        namespaces: &namespaces,
        time_limit: config.gatekeeper.time_limit,
    };
    let loaded = Gatekeeper::load(&dir.documents, &settings)
        .map_err(|e| format!("policyDir {}: {e}", dir.path.display()))?;
    if let Some(gatekeeper) = loaded {
        policies.validating.push(Arc::new(gatekeeper));
    }
    Ok(())
}

impl ValidatingPolicy for Gatekeeper {
    fn name(&self) -> &str {
        "gatekeeper"
    }

    fn validate(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Judgement {
        let review = self.review(request, namespace_labels, Point::Webhook);
        let lines = |action: Action| -> Vec<String> {
            review
                .violations
                .iter()
                .filter(|v| v.action == action)
                .map(|v| v.line())
                .collect()
        };
        let (denials, warnings) = (lines(Action::Deny), lines(Action::Warn));
        let answer = if !denials.is_empty() {
            Answer::Deny(denials.join("\n"))
        } else if !review.errors.is_empty() {
            Answer::Error(review.errors.join("\n"))
        } else if review.matched == 0 {
            Answer::Skip
        } else {
            Answer::Allow
        };
        Judgement {
            answer,
            warnings,
            audit_annotations: BTreeMap::new(),
        }
    }

    fn may_block(&self) -> bool {
        true
    }

    fn denial(&self, message: &str) -> String {
        format!("admission webhook {WEBHOOK_NAME:?} denied the request: {message}")
    }

    fn audit(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Vec<Finding> {
        let review = self.review(request, namespace_labels, Point::Audit);
        let violations = review.violations.into_iter().map(|v| Finding {
            policy: format!("{}/{}", v.kind, v.constraint),
            action: v.action.as_str().to_owned(),
            message: v.message,
        });
        let errors = review.errors.into_iter().map(|message| Finding {
            policy: self.name().to_owned(),
            action: "error".to_owned(),
            message,
        });
        violations.chain(errors).collect()
    }
}
