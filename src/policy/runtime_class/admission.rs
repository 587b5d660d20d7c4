//! The `runtimeClass:` rule as the core runs it: in the mutation phase, first, as
//! kube-apiserver's RuntimeClass plugin (it may set the Pod's runtime class).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::config::Mode;
use crate::policy::admission::{MutatingPolicy, Mutation, Policies};
use crate::review::pod_view::pod_view;
use crate::review::AdmissionRequest;

use super::{Decision, RuntimeClassRule};

/// `runtimeClass:` — reserved runtimes refused or sent to the fallback.
pub struct RuntimeClass {
    rule: RuntimeClassRule,
}

impl RuntimeClass {
    pub fn new(rule: &RuntimeClassRule) -> Option<Self> {
        rule.is_active().then(|| Self { rule: rule.clone() })
    }
}

impl MutatingPolicy for RuntimeClass {
    fn name(&self) -> &str {
        "runtime-class"
    }

    fn mode(&self) -> Mode {
        self.rule.mode
    }

    fn mutate(&self, request: &AdmissionRequest, _: &BTreeMap<String, String>) -> Mutation {
        let Some(view) = pod_view(request) else {
            return Mutation::Skip;
        };
        match self.rule.decide(&view.pod) {
            Decision::Keep => Mutation::Allow,
            Decision::Refuse(message) => Mutation::Deny(message),
            Decision::Set(class) => {
                let op = if view.pod.pointer("/spec/runtimeClassName").is_some() {
                    "replace"
                } else {
                    "add"
                };
                let path = format!("{}/spec/runtimeClassName", view.pointer);
                let patch = serde_json::json!([{"op": op, "path": path, "value": class}]);
                match serde_json::from_value(patch) {
                    Ok(patch) => Mutation::Patch(patch),
                    Err(e) => Mutation::Deny(format!("internal error building the patch: {e}")),
                }
            }
        }
    }
}

/// [`registry`](crate::policy::registry): active when reserved runtimes are configured.
pub fn register(config: &Config, policies: &mut Policies) -> Result<(), String> {
    if let Some(rule) = RuntimeClass::new(&config.runtime_class) {
        policies.mutating.push(Arc::new(rule));
    }
    Ok(())
}
