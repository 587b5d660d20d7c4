//! In-process policies: pure, synchronous checks over the request, run in the decision
//! core's validation phase before the validating webhooks. The built-in rules live in
//! [`crate::policy`]; this is their seam to the chain. Pod Security, CEL
//! ValidatingAdmissionPolicy and Rego plug in here as further implementations.

use crate::config::Mode;
use crate::policy::images::{self, ImageRules};
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

pub trait ValidatingPolicy: Send + Sync {
    /// The name denials and decision records carry.
    fn name(&self) -> &str;
    fn validate(&self, request: &AdmissionRequest) -> Answer;
    /// How its refusals take effect (the global `mode` overrides it).
    fn mode(&self) -> Mode {
        Mode::Enforce
    }
}

/// `images:` — the built-in image rules, on Pod creates and updates.
pub struct Images {
    rules: ImageRules,
}

impl Images {
    /// `None` when no image rule is on.
    pub fn new(rules: &ImageRules) -> Option<Self> {
        rules.is_active().then(|| Self {
            rules: rules.clone(),
        })
    }
}

impl ValidatingPolicy for Images {
    fn name(&self) -> &str {
        "images"
    }

    fn mode(&self) -> Mode {
        self.rules.mode
    }

    fn validate(&self, request: &AdmissionRequest) -> Answer {
        // Exec and other subresources carry no Pod to judge; the Pod was judged at create.
        if request.kind.kind != "Pod" || request.sub_resource.is_some() {
            return Answer::Skip;
        }
        let Some(object) = &request.object else {
            return Answer::Skip;
        };
        match images::check(&self.rules, object) {
            Ok(violations) if violations.is_empty() => Answer::Allow,
            Ok(violations) => Answer::Deny(images::message(&violations)),
            Err(not_a_pod) => Answer::Error(not_a_pod.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{GroupVersionKind, GroupVersionResource, Operation};
    use serde_json::json;

    fn request(image: &str) -> AdmissionRequest {
        let mut r = AdmissionRequest::new(
            Operation::Create,
            GroupVersionKind::core("Pod"),
            GroupVersionResource::core("pods"),
            None,
        );
        r.object = Some(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        r
    }

    #[test]
    fn images_rules_judge_pods_only() {
        let rules = ImageRules {
            disallow_latest: true,
            ..Default::default()
        };
        let policy = Images::new(&rules).unwrap();
        assert_eq!(policy.validate(&request("busybox:1.36")), Answer::Allow);
        let Answer::Deny(message) = policy.validate(&request("busybox")) else {
            panic!("busybox admitted")
        };
        assert!(
            message.contains("images.disallowLatest") && message.contains("\"c\""),
            "{message}"
        );
        let mut exec = request("busybox");
        exec.sub_resource = Some("exec".into());
        assert_eq!(policy.validate(&exec), Answer::Skip);
        assert!(Images::new(&ImageRules::default()).is_none());
    }
}
