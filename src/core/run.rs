//! A request's way through the chain: the object as mutated so far and everything the
//! policies said, folded into one [`Verdict`] at the end.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::status::failure_status;
use crate::config::Mode;
use crate::metrics::Metrics;
use crate::review::{AdmissionRequest, Decision, Outcome, PolicyResult, Refusal, Status, Verdict};

/// A request's progress through the chain: the object as mutated so far and everything
/// the policies said. Every stage reports through these methods.
pub(super) struct Run<'a> {
    request: &'a AdmissionRequest,
    pub namespace_labels: BTreeMap<String, String>,
    mode_override: Option<Mode>,
    object: Option<Value>,
    /// What was said so far; its decision stays `Allowed` until [`Run::finish`].
    pub verdict: Verdict,
    /// The first enforced refusal.
    refused: Option<(Refusal, Status)>,
    pub metrics: &'a Metrics,
    /// A webhook without `cache: true` was called: the verdict must not be cached.
    pub uncacheable: bool,
    /// The signature check's reports, shown to the policies after it.
    pub image_verification: BTreeMap<String, Value>,
}

impl<'a> Run<'a> {
    pub fn new(
        request: &'a AdmissionRequest,
        namespace_labels: BTreeMap<String, String>,
        mode_override: Option<Mode>,
        metrics: &'a Metrics,
    ) -> Self {
        Self {
            request,
            namespace_labels,
            mode_override,
            object: request.object.clone(),
            verdict: Verdict::default(),
            refused: None,
            metrics,
            uncacheable: false,
            image_verification: BTreeMap::new(),
        }
    }

    /// The request as the next policy should see it.
    pub fn current(&self) -> Cow<'a, AdmissionRequest> {
        if self.object == self.request.object && self.image_verification.is_empty() {
            Cow::Borrowed(self.request)
        } else {
            Cow::Owned(AdmissionRequest {
                object: self.object.clone(),
                image_verification: self.image_verification.clone(),
                ..self.request.clone()
            })
        }
    }

    pub fn is_refused(&self) -> bool {
        self.refused.is_some()
    }

    pub fn record(&mut self, policy: &str, outcome: Outcome, message: impl Into<String>) {
        self.verdict.trail.push(PolicyResult {
            policy: policy.into(),
            outcome,
            message: message.into(),
        });
    }

    pub fn annotate(&mut self, key: String, value: String) {
        self.verdict.audit_annotations.insert(key, value);
    }

    /// The mode a policy runs in: the global override if set, else its own.
    pub fn effective(&self, mode: Mode) -> Mode {
        self.mode_override.unwrap_or(mode)
    }

    /// A policy's refusal, as its mode has it: enforced (returns true), a warning, or an
    /// audit annotation (`portcullis.dev/audit.POLICY`).
    pub fn refuse_by(
        &mut self,
        mode: Mode,
        policy: &str,
        refusal: Refusal,
        status: Status,
    ) -> bool {
        match self.effective(mode) {
            Mode::Enforce => {
                self.refuse(refusal, status);
                true
            }
            Mode::Warn => {
                self.verdict
                    .warnings
                    .push(format!("{} (mode warn: not enforced)", status.message));
                false
            }
            Mode::Audit => {
                self.annotate(format!("portcullis.dev/audit.{policy}"), status.message);
                false
            }
        }
    }

    /// The first refusal wins; later ones stay in the trail only.
    pub fn refuse(&mut self, refusal: Refusal, status: Status) {
        if self.refused.is_none() {
            self.refused = Some((refusal, status));
        }
    }

    /// Applies a mutating policy's JSON Patch. A patch that cannot be applied fails
    /// closed whatever the failure policy, as upstream (it is an internal error there).
    pub fn apply_patch(&mut self, policy: &str, patch: &json_patch::Patch) -> bool {
        let Some(object) = &self.object else {
            let message = format!(
                "admission webhook {policy:?} attempted to modify the object, which is not \
                 supported for this operation"
            );
            self.record(policy, Outcome::Failed, &message);
            self.refuse(
                Refusal::Failed,
                failure_status(500, "InternalError", message),
            );
            return false;
        };
        let mut patched = object.clone();
        if let Err(e) = json_patch::patch(&mut patched, patch) {
            let message = format!(
                "admission webhook {policy:?} returned a patch that cannot be applied: {e}"
            );
            self.record(policy, Outcome::Failed, &message);
            self.refuse(
                Refusal::Failed,
                failure_status(500, "InternalError", message),
            );
            return false;
        }
        let changed = patched != *object;
        self.object = Some(patched);
        if changed {
            self.record(
                policy,
                Outcome::Mutated,
                format!("applied {} patch operation(s)", patch.len()),
            );
        } else {
            self.record(policy, Outcome::Allowed, "");
        }
        changed
    }

    /// The verdict: the first enforced refusal, or the object as every mutation left it.
    pub fn finish(self) -> Verdict {
        let decision = match self.refused {
            Some((refusal, status)) => Decision::Refused { refusal, status },
            None if self.object != self.request.object => Decision::Allowed {
                mutated: self.object,
            },
            None => Decision::Allowed { mutated: None },
        };
        Verdict {
            decision,
            ..self.verdict
        }
    }
}
