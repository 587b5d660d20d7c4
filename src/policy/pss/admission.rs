//! Pod Security Admission as the core runs it: in the validation phase, where a
//! namespace's `pod-security.kubernetes.io/*` labels ask for a level.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::policy::admission::{Answer, Judgement, Policies, ValidatingPolicy};
use crate::policy::pss;
use crate::review::pod_view::pod_view;
use crate::review::AdmissionRequest;

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

/// [`registry`](crate::policy::registry): active when any configured namespace carries a
/// Pod Security label.
pub fn register(config: &Config, policies: &mut Policies) -> Result<(), String> {
    let labelled = config
        .namespaces
        .values()
        .any(|n| n.labels.keys().any(|k| k.starts_with(PSA_PREFIX)));
    if labelled {
        policies.validating.push(Arc::new(PodSecurity));
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
