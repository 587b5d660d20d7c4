//! The `images:` rules as the core runs them: on Pod (and pod template) creates and
//! updates, in the validation phase.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::config::Mode;
use crate::policy::admission::{Answer, Judgement, Policies, ValidatingPolicy};
use crate::review::pod_view::pod_view;
use crate::review::AdmissionRequest;

use super::ImageRules;

/// `images:` — the built-in image rules, on Pod creates and updates.
#[derive(Clone)]
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

    fn validate(&self, request: &AdmissionRequest, _: &BTreeMap<String, String>) -> Judgement {
        let Some(view) = pod_view(request) else {
            return Answer::Skip.into();
        };
        match super::check(&self.rules, &view.pod) {
            Ok(violations) if violations.is_empty() => Answer::Allow,
            Ok(violations) => Answer::Deny(super::message(&violations)),
            Err(not_a_pod) => Answer::Error(not_a_pod.to_string()),
        }
        .into()
    }
}

/// [`registry`](crate::policy::registry): active when any `images:` rule is on; also the
/// whole of an ImageReview.
pub fn register(config: &Config, policies: &mut Policies) -> Result<(), String> {
    if let Some(rules) = Images::new(&config.images) {
        let rules = Arc::new(rules);
        policies.images.push(rules.clone());
        policies.validating.push(rules);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Operation;
    use serde_json::json;

    fn request(image: &str) -> AdmissionRequest {
        let mut r = AdmissionRequest::pod(Operation::Create);
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
        let none = BTreeMap::new();
        assert_eq!(
            policy.validate(&request("busybox:1.36"), &none).answer,
            Answer::Allow
        );
        let Answer::Deny(message) = policy.validate(&request("busybox"), &none).answer else {
            panic!("busybox admitted")
        };
        assert!(
            message.contains("images.disallowLatest") && message.contains("\"c\""),
            "{message}"
        );
        let mut exec = request("busybox");
        exec.sub_resource = Some("exec".into());
        assert_eq!(policy.validate(&exec, &none).answer, Answer::Skip);
        assert!(Images::new(&ImageRules::default()).is_none());
    }
}
