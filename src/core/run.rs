//! A request's way through the chain: the object as mutated so far and everything the
//! policies said, folded into one [`Verdict`] at the end.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::status::failure_status;
use crate::config::Mode;
use crate::metrics::Metrics;
use crate::review::{AdmissionRequest, Decision, Outcome, PolicyResult, Refusal, Status, Verdict};

/// What a webhook patch's `copy` operations may add to the object in all: kube-apiserver's
/// request body limit. Each copy can double the object, so a response of a few dozen
/// small operations would otherwise grow it past any memory (evanphx/json-patch bounds
/// the same with `AccumulatedCopySizeLimit`).
const MAX_COPIED_BYTES: usize = 3 << 20;

/// `patch` applied to a copy of `object`, its copies bounded by [`MAX_COPIED_BYTES`].
pub(crate) fn patched(object: &Value, patch: &json_patch::Patch) -> Result<Value, String> {
    let mut doc = object.clone();
    let mut copied = 0usize;
    for op in patch.iter() {
        if let json_patch::PatchOperation::Copy(copy) = op {
            let mut size = ByteCount(0);
            if let Some(value) = doc.pointer(copy.from.as_str()) {
                // Writing into a counter cannot fail.
                let _ = serde_json::to_writer(&mut size, value);
            }
            copied = copied.saturating_add(size.0);
            if copied > MAX_COPIED_BYTES {
                return Err(format!(
                    "its copy operations (up to {copy}) add more than {MAX_COPIED_BYTES} bytes"
                ));
            }
        }
        if json_patch::patch(&mut doc, std::slice::from_ref(op)).is_err() {
            // The whole patch's error, which names the failing operation by its index.
            let mut whole = object.clone();
            return Err(match json_patch::patch(&mut whole, patch) {
                Err(e) => e.to_string(),
                Ok(()) => format!("operation {op} fails"),
            });
        }
    }
    Ok(doc)
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
        let patched = match patched(object, patch) {
            Ok(patched) => patched,
            Err(e) => {
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
        };
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

#[cfg(test)]
mod tests {
    use super::patched;
    use serde_json::json;

    fn patch(ops: serde_json::Value) -> json_patch::Patch {
        serde_json::from_value(ops).expect("a JSON Patch")
    }

    #[test]
    fn copies_are_bounded_and_errors_name_the_failing_operation() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let one = patched(
            &pod,
            &patch(json!([{"op": "copy", "from": "/spec", "path": "/s"}])),
        );
        assert_eq!(one.unwrap()["s"], pod["spec"]);
        // Each copy of the root doubles the object: 48 of them would need petabytes.
        let doubling: Vec<_> = (0..48)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/a{i}")}))
            .collect();
        let err = patched(&pod, &patch(json!(doubling))).unwrap_err();
        assert!(err.contains("copy operations"), "{err}");
        let bad = patch(json!([
            {"op": "add", "path": "/x", "value": 1},
            {"op": "remove", "path": "/nope"}
        ]));
        let mut whole = pod.clone();
        let upstream = json_patch::patch(&mut whole, &bad).unwrap_err().to_string();
        assert_eq!(patched(&pod, &bad).unwrap_err(), upstream);
    }
}
