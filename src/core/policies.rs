//! In-process policies: pure, synchronous checks over the request, run in the decision
//! core's validation phase before the validating webhooks. The built-in rules live in
//! [`crate::policy`]; this is their seam to the chain. Pod Security, CEL
//! ValidatingAdmissionPolicy and Rego plug in here as further implementations.

use crate::config::{ImageRules, Mode, RuntimeClassRule};
use std::collections::BTreeMap;

use crate::policy::images;
use crate::policy::pss;
use crate::policy::runtime_class::Decision;
use crate::review::AdmissionRequest;

use super::pod_view::pod_view;

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
}

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
        match images::check(&self.rules, &view.pod) {
            Ok(violations) if violations.is_empty() => Answer::Allow,
            Ok(violations) => Answer::Deny(images::message(&violations)),
            Err(not_a_pod) => Answer::Error(not_a_pod.to_string()),
        }
        .into()
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
}

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

/// Pod Security Admission: the levels the namespace's `pod-security.kubernetes.io/*`
/// labels ask for, enforced, warned about and audited as upstream does.
pub struct PodSecurity;

const PSA_PREFIX: &str = "pod-security.kubernetes.io/";

impl ValidatingPolicy for PodSecurity {
    fn name(&self) -> &str {
        "pod-security"
    }

    /// Upstream `EvaluatePod`: enforce (Pods only — workload templates are warned about and
    /// audited, as `ValidatePodController`), audit, and warn unless the request is refused.
    fn validate(&self, request: &AdmissionRequest, labels: &BTreeMap<String, String>) -> Judgement {
        let mut judgement = Judgement::from(Answer::Skip);
        let Some(view) = pod_view(request) else {
            return judgement;
        };
        let policy = NamespacePolicy::from_labels(labels);
        let pod = view.pod.as_ref();
        let would = |lv: &pss::LevelVersion, failures: &[pss::CheckResult]| {
            format!(
                "would {}",
                pss::message(lv, failures).replacen("violates", "violate", 1)
            )
        };
        if let Some(lv) = policy.enforce.filter(|_| !view.is_template()) {
            judgement.answer = match pss::evaluate(&lv, pod) {
                Ok(failures) if failures.is_empty() => Answer::Allow,
                Ok(failures) => Answer::Deny(pss::message(&lv, &failures)),
                Err(invalid) => Answer::Error(format!(
                    "the Pod cannot be checked: {}",
                    invalid.0.join("; ")
                )),
            };
        }
        if let Some(lv) = policy.audit {
            if let Some(failures) = pss::evaluate(&lv, pod).ok().filter(|f| !f.is_empty()) {
                judgement.audit_annotations.insert(
                    format!("{PSA_PREFIX}audit-violations"),
                    would(&lv, &failures),
                );
            }
        }
        let refused = matches!(judgement.answer, Answer::Deny(_) | Answer::Error(_));
        if let Some(lv) = policy.warn.filter(|_| !refused) {
            if let Some(failures) = pss::evaluate(&lv, pod).ok().filter(|f| !f.is_empty()) {
                judgement.warnings.push(would(&lv, &failures));
            }
        }
        judgement
    }
}

/// A namespace's `pod-security.kubernetes.io/*` labels as upstream `PolicyToEvaluate` reads
/// them; `None` is no label (privileged, nothing to check).
struct NamespacePolicy {
    enforce: Option<pss::LevelVersion>,
    warn: Option<pss::LevelVersion>,
    audit: Option<pss::LevelVersion>,
}

impl NamespacePolicy {
    fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let label = |mode: &str, suffix: &str| labels.get(&format!("{PSA_PREFIX}{mode}{suffix}"));
        // A level that does not parse is the most restrictive one for enforce, and nothing
        // (privileged) for warn and audit; a version that does not parse is `latest`.
        let read = |mode: &str, invalid: pss::Level| {
            let level = label(mode, "")?;
            let level = level.parse().unwrap_or(invalid);
            let version = label(mode, "-version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(pss::Version::Latest);
            Some(pss::LevelVersion { level, version })
        };
        let enforce = read("enforce", pss::Level::Restricted);
        let mut warn = read("warn", pss::Level::Privileged);
        // Upstream: with no warn label, warn at the enforce level when that is stricter,
        // with the enforce version unless a warn version is given.
        if warn.is_none() {
            if let Some(e) = enforce.filter(|e| e.level != pss::Level::Privileged) {
                let version = label("warn", "-version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(e.version);
                warn = Some(pss::LevelVersion {
                    level: e.level,
                    version,
                });
            }
        }
        Self {
            enforce,
            warn,
            audit: read("audit", pss::Level::Privileged),
        }
    }
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

    #[test]
    fn pod_security_follows_the_namespace_labels() {
        let mut privileged = request("busybox:1.36");
        privileged.object.as_mut().unwrap()["spec"]["hostNetwork"] = serde_json::json!(true);
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (format!("{PSA_PREFIX}{k}"), v.to_string()))
                .collect()
        };
        let j = PodSecurity.validate(&privileged, &labels(&[("enforce", "baseline")]));
        let Answer::Deny(message) = j.answer else {
            panic!("{j:?}")
        };
        assert!(
            message.starts_with("violates PodSecurity \"baseline:latest\": host namespaces"),
            "{message}"
        );
        let j = PodSecurity.validate(
            &privileged,
            &labels(&[
                ("warn", "baseline"),
                ("audit", "restricted"),
                ("audit-version", "v1.30"),
            ]),
        );
        assert_eq!(j.answer, Answer::Skip);
        assert!(
            j.warnings[0].starts_with("would violate PodSecurity \"baseline:latest\""),
            "{j:?}"
        );
        assert!(
            j.audit_annotations["pod-security.kubernetes.io/audit-violations"]
                .contains("restricted:v1.30")
        );
        assert_eq!(
            PodSecurity.validate(&privileged, &BTreeMap::new()).answer,
            Answer::Skip
        );
        let j = PodSecurity.validate(
            &request("busybox:1.36"),
            &labels(&[("enforce", "no-such-level")]),
        );
        assert!(matches!(j.answer, Answer::Deny(m) if m.contains("restricted:latest")));
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PSA_PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn pod_security_warns_at_the_enforce_level_unless_told_otherwise() {
        let mut pod = request("nginx:1");
        pod.object.as_mut().unwrap()["spec"]["hostPID"] = json!(true);
        let mut deployment = AdmissionRequest::new(
            Operation::Create,
            crate::review::GroupVersionKind {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
            },
            crate::review::GroupVersionResource::core("deployments"),
            None,
        );
        deployment.object = Some(json!({"spec": {"template": pod.object.clone().unwrap()}}));

        let enforce = labels(&[("enforce", "baseline")]);
        let judged = PodSecurity.validate(&pod, &enforce);
        assert!(matches!(judged.answer, Answer::Deny(_)));
        assert!(
            judged.warnings.is_empty(),
            "no warning on a refused request"
        );
        let judged = PodSecurity.validate(&deployment, &enforce);
        assert_eq!(judged.answer, Answer::Skip, "templates are not enforced");
        assert!(judged.warnings[0].starts_with(r#"would violate PodSecurity "baseline:latest""#));

        // An explicit warn level wins; one that does not parse means no warnings at all.
        let judged = PodSecurity.validate(
            &deployment,
            &labels(&[("enforce", "baseline"), ("warn", "privileged")]),
        );
        assert!(judged.warnings.is_empty());
        let judged = PodSecurity.validate(
            &deployment,
            &labels(&[("enforce", "baseline"), ("warn", "strict")]),
        );
        assert!(judged.warnings.is_empty());
        // An enforce level that does not parse fails closed, as restricted.
        let judged = PodSecurity.validate(&request("nginx:1"), &labels(&[("enforce", "strict")]));
        assert!(
            matches!(&judged.answer, Answer::Deny(m) if m.contains("restricted:latest")),
            "{judged:?}"
        );
    }
}
