//! What a door calls: exemptions and break-glass, the decision cache, the chain, then the
//! decision log line and the metrics.

use std::time::Instant;

use serde_json::Value;

use super::chain::{self, Scope, Stage};
use super::run::Run;
use super::{cache, exempt, Decider};
use crate::review::{AdmissionRequest, Door, Outcome, PolicyResult, Verdict};

impl Decider {
    /// What a door calls: decides — or finds the decision in the cache — and records it
    /// (door, caller, verdict, every policy's result, latency) in the decision log and the
    /// metrics before returning it.
    pub async fn admit(&self, door: Door, request: &AdmissionRequest) -> Verdict {
        self.admit_scoped(door, request, Scope::of(door)).await
    }

    /// [`Decider::admit`] for part of the chain.
    pub async fn admit_scoped(
        &self,
        door: Door,
        request: &AdmissionRequest,
        scope: Scope,
    ) -> Verdict {
        let started = Instant::now();
        let key = self.cache.as_ref().and_then(|_| {
            let mut key = format!("{scope:?}\n").into_bytes();
            key.extend(cache::DecisionCache::key(request)?);
            Some(key)
        });
        let cached = match (&self.cache, &key) {
            (Some((cache, _)), Some(key)) => {
                let hit = cache.get(key);
                self.metrics.cache_lookup(hit.is_some());
                hit
            }
            _ => None,
        };
        let is_cached = cached.is_some();
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let (verdict, uncacheable) = self.decide_and_tell(request, scope).await;
                if let (Some((cache, config)), Some(key)) = (&self.cache, key) {
                    cache.put(key, &verdict, uncacheable, config);
                }
                verdict
            }
        };
        if let Some(log) = &self.log {
            let line = record(door, request, &verdict, is_cached, started.elapsed());
            log.append(&line).await;
        }
        self.metrics
            .decided(door, &verdict, is_cached, started.elapsed());
        verdict
    }

    /// [`Decider::decide`] for part of the chain, and whether a webhook that is not
    /// `cache: true` took part.
    pub(super) async fn decide_and_tell(
        &self,
        request: &AdmissionRequest,
        scope: Scope,
    ) -> (Verdict, bool) {
        if let Some(pass) = exempt::pass(&self.exemptions, &self.break_glass, request) {
            return (passed(pass), false);
        }
        let mut run = Run::new(
            request,
            self.namespace_labels(&request.namespace),
            self.mode,
            &self.metrics,
        );
        let pool = &self.blocking;
        if scope == Scope::Images {
            chain::judge(&self.images, &mut run, pool).await;
        }
        let signatures_alone = matches!(scope, Scope::Images | Scope::Signatures);
        if let (Some(signatures), true, false) =
            (&self.signatures, signatures_alone, run.is_refused())
        {
            signatures.judge(&mut run).await;
        }
        for stage in self.stages.iter().filter(|s| scope.runs(s)) {
            match stage {
                Stage::MutatingPolicies(policies) => chain::change(policies, &mut run, pool).await,
                Stage::MutatingWebhooks(hooks) => chain::mutate(hooks, &mut run).await,
                Stage::ImageSignatures(signatures) => signatures.judge(&mut run).await,
                Stage::ValidatingPolicies(policies) => chain::judge(policies, &mut run, pool).await,
                Stage::ValidatingWebhooks(hooks) => chain::validate(hooks, &mut run).await,
            }
            if run.is_refused() {
                break;
            }
        }
        let uncacheable = run.uncacheable;
        let verdict = run.finish();
        tracing::debug!(
            uid = %request.uid,
            allowed = verdict.is_allowed(),
            mutated = verdict.mutated().is_some(),
            policies = verdict.trail.len(),
            "admission decided"
        );
        (verdict, uncacheable)
    }
}

/// The verdict for a request that skips the chain.
fn passed(pass: exempt::Pass) -> Verdict {
    let (policy, message) = match pass {
        exempt::Pass::Exempt(m) => ("exemptions", m),
        exempt::Pass::BreakGlass(m) => {
            tracing::warn!(message = %m, "break-glass used");
            ("breakGlass", m)
        }
    };
    let mut verdict = Verdict::default();
    verdict
        .audit_annotations
        .insert(format!("portcullis.dev/{policy}"), message.clone());
    verdict.trail.push(PolicyResult {
        policy: policy.into(),
        outcome: Outcome::Skipped,
        message,
    });
    verdict
}

/// One decision log line.
fn record(
    door: Door,
    request: &AdmissionRequest,
    verdict: &Verdict,
    cached: bool,
    latency: std::time::Duration,
) -> Value {
    let object = request.object.as_ref();
    let images: Vec<&str> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| object?.pointer(&format!("/spec/{k}"))?.as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect();
    let patch: Vec<String> = match (object, verdict.mutated()) {
        (Some(before), Some(after)) => json_patch::diff(before, after)
            .0
            .iter()
            .map(|op| op.path().to_string())
            .collect(),
        _ => Vec::new(),
    };
    serde_json::json!({
        "time": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        "door": door.as_str(),
        "uid": request.uid,
        "operation": request.operation.as_str(),
        "kind": request.kind.kind,
        "subResource": request.sub_resource,
        "namespace": request.namespace,
        "name": request.name,
        "images": images,
        "caller": request.user_info,
        "allowed": verdict.is_allowed(),
        "code": verdict.status().and_then(|s| s.code),
        "message": verdict.message(),
        "policies": verdict.trail,
        "warnings": verdict.warnings,
        "auditAnnotations": verdict.audit_annotations,
        "patch": patch,
        "cached": cached,
        "latencyMicros": latency.as_micros() as u64,
    })
}
