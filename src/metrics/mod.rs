//! What Portcullis counts, for Prometheus: decisions by door and verdict, every policy's
//! results, decision and webhook latency, webhook errors and timeouts, decision-cache
//! hits, config reloads, and the periodic audit's findings. One [`Metrics`] lives for the whole process (it outlives
//! reloads of the decision core); [`serve`] exposes it over HTTP.

mod serve;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use serve::serve;
pub(crate) use serve::{probe, reply};

use crate::review::{Decision, Door, Outcome, Refusal, Verdict};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    door: String,
    verdict: &'static str,
    cached: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    door: String,
    policy: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DoorLabels {
    door: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    policy: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// How a webhook call ended, for `portcullis_webhook_calls_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Answered,
    Timeout,
    Error,
}

pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    policy_results: Family<PolicyLabels, Counter>,
    decision_seconds: Family<DoorLabels, Histogram>,
    webhook_calls: Family<WebhookLabels, Counter>,
    webhook_seconds: Family<WebhookLabels, Histogram>,
    cache_lookups: Family<ResultLabels, Counter>,
    image_verifications: Family<ResultLabels, Counter>,
    image_verification_seconds: Family<ResultLabels, Histogram>,
    image_verification_lookups: Family<ResultLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    reload_ok: Gauge,
    generation: Gauge,
    audit_violations: Family<AuditLabels, Gauge>,
    audit_containers: Gauge,
    audit_last_run: Gauge,
}

/// 10 µs to ~40 s: in-process decisions take microseconds, webhooks up to their timeout.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-5, 4.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("portcullis"),
            decisions: Family::default(),
            policy_results: Family::default(),
            decision_seconds: Family::new_with_constructor(latency_histogram),
            webhook_calls: Family::default(),
            webhook_seconds: Family::new_with_constructor(latency_histogram),
            cache_lookups: Family::default(),
            image_verifications: Family::default(),
            image_verification_seconds: Family::new_with_constructor(latency_histogram),
            image_verification_lookups: Family::default(),
            reloads: Family::default(),
            reload_ok: Gauge::default(),
            generation: Gauge::default(),
            audit_violations: Family::default(),
            audit_containers: Gauge::default(),
            audit_last_run: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "decisions",
            "Admission decisions, by door and verdict (allowed, mutated, denied, failed)",
            m.decisions.clone(),
        );
        r.register(
            "policy_results",
            "What each policy source answered, by door, policy and outcome",
            m.policy_results.clone(),
        );
        r.register(
            "decision_duration_seconds",
            "Time to decide, cache and decision log included, by door",
            m.decision_seconds.clone(),
        );
        r.register(
            "webhook_calls",
            "Calls to admission webhooks, by webhook and result (answered, timeout, error)",
            m.webhook_calls.clone(),
        );
        r.register(
            "webhook_duration_seconds",
            "Time of admission webhook calls, by webhook and result",
            m.webhook_seconds.clone(),
        );
        r.register(
            "decision_cache_lookups",
            "Decision cache lookups, by result (hit, miss)",
            m.cache_lookups.clone(),
        );
        r.register(
            "config_reloads",
            "Config and policy reloads, by result (success, failure)",
            m.reloads.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "1 if the last reload attempt succeeded, 0 if the last good config is still serving",
            m.reload_ok.clone(),
        );
        r.register(
            "config_generation",
            "Generation of the config and policies serving now (1 at start, +1 per reload)",
            m.generation.clone(),
        );
        m.register_image_verification();
        m.register_audit();
        m.reload_ok.set(1);
        m.generation.set(1);
        m
    }

    /// One decision a door received.
    pub fn decided(&self, door: Door, verdict: &Verdict, cached: bool, took: Duration) {
        let outcome = match &verdict.decision {
            Decision::Refused {
                refusal: Refusal::Failed,
                ..
            } => "failed",
            Decision::Refused { .. } => "denied",
            Decision::Allowed { mutated: Some(_) } => "mutated",
            Decision::Allowed { mutated: None } => "allowed",
        };
        let door = door.as_str();
        self.decisions
            .get_or_create(&DecisionLabels {
                door: door.to_owned(),
                verdict: outcome,
                cached: if cached { "true" } else { "false" },
            })
            .inc();
        for result in &verdict.trail {
            self.policy_results
                .get_or_create(&PolicyLabels {
                    door: door.to_owned(),
                    policy: result.policy.clone(),
                    outcome: outcome_label(result.outcome),
                })
                .inc();
        }
        self.decision_seconds
            .get_or_create(&DoorLabels {
                door: door.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn webhook_called(&self, webhook: &str, result: CallResult, took: Duration) {
        let labels = WebhookLabels {
            webhook: webhook.to_owned(),
            result: match result {
                CallResult::Answered => "answered",
                CallResult::Timeout => "timeout",
                CallResult::Error => "error",
            },
        };
        self.webhook_calls.get_or_create(&labels).inc();
        self.webhook_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    fn register_image_verification(&mut self) {
        let r = &mut self.registry;
        r.register(
            "image_verifications",
            "Image signature verifications made (cache misses), by result (allowed, warned, refused)",
            self.image_verifications.clone(),
        );
        r.register(
            "image_verification_duration_seconds",
            "Time of image signature verifications, registry round trips included, by result",
            self.image_verification_seconds.clone(),
        );
        r.register(
            "image_verification_cache_lookups",
            "Image signature verdict cache lookups, by result (hit, miss)",
            self.image_verification_lookups.clone(),
        );
    }

    /// One image signature verification (a cache miss) and how long it took.
    pub fn image_verified(&self, result: &'static str, took: Duration) {
        let labels = ResultLabels { result };
        self.image_verifications.get_or_create(&labels).inc();
        self.image_verification_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One lookup of an image's verdict in the signature cache.
    pub fn image_verification_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.image_verification_lookups
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// A reload attempt; `generation` is the one serving afterwards.
    pub fn reloaded(&self, ok: bool, generation: u64) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        self.reload_ok.set(i64::from(ok));
        self.generation.set(generation as i64);
    }

    fn register_audit(&mut self) {
        let r = &mut self.registry;
        r.register(
            "audit_violations",
            "Violations the last periodic audit found in running containers, by policy and action (deny, warn, dryrun, error)",
            self.audit_violations.clone(),
        );
        r.register(
            "audit_containers",
            "Containers the last periodic audit judged",
            self.audit_containers.clone(),
        );
        r.register(
            "audit_last_run_timestamp_seconds",
            "Unix time the last periodic audit completed",
            self.audit_last_run.clone(),
        );
    }

    /// A completed audit: `containers` judged, `violations` counted by (policy, action),
    /// at `unix_seconds`. Replaces the previous audit's counts: a policy no longer
    /// violated leaves the gauges.
    pub fn audited(
        &self,
        containers: usize,
        violations: &std::collections::BTreeMap<(String, String), u64>,
        unix_seconds: i64,
    ) {
        self.audit_violations.clear();
        for ((policy, action), n) in violations {
            self.audit_violations
                .get_or_create(&AuditLabels {
                    policy: policy.clone(),
                    action: action.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.audit_containers
            .set(i64::try_from(containers).unwrap_or(i64::MAX));
        self.audit_last_run.set(unix_seconds);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Allowed => "allowed",
        Outcome::Mutated => "mutated",
        Outcome::Denied => "denied",
        Outcome::Ignored => "ignored",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
    }
}

/// Shared by the door, the decision core and the reloader.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::PolicyResult;

    #[test]
    fn a_decision_counts_by_door_verdict_and_policy() {
        let m = Metrics::new();
        let verdict = Verdict {
            decision: Decision::Refused {
                refusal: Refusal::Denied,
                status: crate::review::Status::default(),
            },
            trail: vec![PolicyResult {
                policy: "images".into(),
                outcome: Outcome::Denied,
                message: "no".into(),
            }],
            ..Verdict::default()
        };
        m.decided(Door::Proxy, &verdict, false, Duration::from_micros(40));
        m.webhook_called("w.example.com", CallResult::Timeout, Duration::from_secs(1));
        m.cache_lookup(true);
        m.reloaded(false, 1);
        let text = m.encode();
        for line in [
            r#"portcullis_decisions_total{door="proxy",verdict="denied",cached="false"} 1"#,
            r#"portcullis_policy_results_total{door="proxy",policy="images",outcome="denied"} 1"#,
            r#"portcullis_decision_duration_seconds_count{door="proxy"} 1"#,
            r#"portcullis_webhook_calls_total{webhook="w.example.com",result="timeout"} 1"#,
            r#"portcullis_decision_cache_lookups_total{result="hit"} 1"#,
            r#"portcullis_config_reloads_total{result="failure"} 1"#,
            "portcullis_config_last_reload_successful 0",
            "portcullis_config_generation 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_audit_replaces_the_previous_ones_gauges() {
        let m = Metrics::new();
        let key = |p: &str, a: &str| (p.to_owned(), a.to_owned());
        m.audited(3, &[(key("old", "deny"), 1)].into(), 100);
        m.audited(2, &[(key("K8sX/x", "dryrun"), 2)].into(), 200);
        let text = m.encode();
        for line in [
            r#"portcullis_audit_violations{policy="K8sX/x",action="dryrun"} 2"#,
            "portcullis_audit_containers 2",
            "portcullis_audit_last_run_timestamp_seconds 200",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains(r#"policy="old""#), "{text}");
    }
}
