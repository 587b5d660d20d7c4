//! The decision core: one [`AdmissionRequest`] in, one [`Verdict`] out, asked of every
//! configured policy source in Kubernetes' admission order.
//!
//! kube-apiserver runs the whole mutation phase (in-tree mutating plugins,
//! MutatingAdmissionPolicy, mutating webhooks) and then the whole validation phase
//! (in-tree validating plugins such as PodSecurity, ValidatingAdmissionPolicy, validating
//! webhooks). [`Stage`] is that list. Today it holds webhooks only; in-process policies
//! are synchronous and report through the same [`Run`] methods, so they slot in as new
//! `Stage` variants.
//!
//! Semantics follow k8s.io/apiserver/pkg/admission/plugin/webhook/{mutating,validating}:
//! mutating webhooks run one after another in config order, each seeing the object as
//! patched by the ones before (then `reinvocationPolicy: IfNeeded` webhooks once more if
//! a later one changed the object); validating webhooks run concurrently and the first
//! refusal in config order wins. Warnings and audit annotations of every called webhook
//! are kept. A webhook that cannot be called fails closed (`failurePolicy: Fail`, HTTP 500)
//! or is skipped with a log line and a `failed-open...` audit annotation (`Ignore`).

pub mod cache;
pub mod exempt;
pub mod log;
pub mod pod_view;
pub mod policies;

mod client;
pub(crate) mod tls;
mod tls_verify;
mod webhook;

#[cfg(test)]
mod operate_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::config::webhook::{InvalidWebhook, WebhookKind};
use crate::config::{Config, Mode, NamespaceConfig};
use crate::metrics::{CallResult, Metrics, SharedMetrics};
use crate::review::{AdmissionRequest, Outcome, PolicyResult, Refusal, Status, Verdict};

pub use client::{CallError, MAX_RESPONSE_BYTES};
use policies::{Answer, MutatingPolicy, Mutation, ValidatingPolicy};
use webhook::{Reply, Webhook};

/// Why a [`Decider`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("webhook {name:?}: {error}")]
    InvalidWebhook { name: String, error: InvalidWebhook },
    #[error("webhook {name:?}: {message}")]
    Setup { name: String, message: String },
    #[error("policyDir {dir}: {message}")]
    PolicyDir { dir: String, message: String },
}

/// The `namespaces:` key whose labels a namespace not listed gets: a caller chooses its
/// containerd namespace, so without it an unlisted namespace has no Pod Security level.
pub const ANY_NAMESPACE: &str = "*";

/// The one decision core every door asks. Build it once and share it (`Arc`); webhook
/// connections are pooled inside.
pub struct Decider {
    stages: Vec<Stage>,
    mode: Option<Mode>,
    exemptions: exempt::Exemptions,
    break_glass: exempt::BreakGlass,
    namespaces: BTreeMap<String, NamespaceConfig>,
    log: Option<Arc<log::DecisionLog>>,
    cache: Option<(cache::DecisionCache, cache::CacheConfig)>,
    metrics: SharedMetrics,
    /// The image rules again, alone, for [`Scope::Images`].
    images: Vec<Box<dyn ValidatingPolicy>>,
}

/// Which part of the chain a door asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: what the runtime doors ask, where no one else mutates or validates.
    All,
    /// The mutation phase only (a `/mutate` webhook call: kube-apiserver validates later).
    Mutation,
    /// The validation phase only, of the object as it comes (`/validate`).
    Validation,
    /// The image rules only (an ImageReview).
    Images,
}

impl Scope {
    fn runs(self, stage: &Stage) -> bool {
        matches!(
            (self, stage),
            (Scope::All, _)
                | (
                    Scope::Mutation,
                    Stage::MutatingPolicies(_) | Stage::MutatingWebhooks(_)
                )
                | (
                    Scope::Validation,
                    Stage::ValidatingPolicies(_) | Stage::ValidatingWebhooks(_)
                )
        )
    }
}

/// One step of the chain, in Kubernetes order.
enum Stage {
    MutatingPolicies(Vec<Box<dyn MutatingPolicy>>),
    // Mutation phase. In-process mutating policies (MutatingAdmissionPolicy, defaults)
    // go here, before the webhooks.
    MutatingWebhooks(Vec<Webhook>),
    // Validation phase: in-process policies (built-in rules; later Pod Security and
    // ValidatingAdmissionPolicy), then the webhooks.
    ValidatingPolicies(Vec<Box<dyn ValidatingPolicy>>),
    ValidatingWebhooks(Vec<Webhook>),
}

impl Decider {
    /// Builds the chain from a loaded config: webhooks keep their config order within each
    /// kind. Reads credential files and system CA roots; opens no connection.
    pub fn new(config: &Config) -> Result<Self, CoreError> {
        let mut mutating = Vec::new();
        let mut validating = Vec::new();
        for w in &config.webhooks {
            let hook = Webhook::new(w)?;
            match w.kind {
                WebhookKind::Mutating => mutating.push(hook),
                WebhookKind::Validating => validating.push(hook),
            }
        }
        let mut policies: Vec<Box<dyn ValidatingPolicy>> = Vec::new();
        // Pod Security acts only where a namespace's labels ask for a level.
        let pod_security_labels = config.namespaces.values().any(|n| {
            n.labels
                .keys()
                .any(|k| k.starts_with("pod-security.kubernetes.io/"))
        });
        if pod_security_labels {
            policies.push(Box::new(policies::PodSecurity));
        }
        let mut images: Vec<Box<dyn ValidatingPolicy>> = Vec::new();
        if let Some(rules) = policies::Images::new(&config.images) {
            images.push(Box::new(rules.clone()));
            policies.push(Box::new(rules));
        }
        let mut mutating_policies: Vec<Box<dyn MutatingPolicy>> =
            policies::RuntimeClass::new(&config.runtime_class)
                .into_iter()
                .map(|p| Box::new(p) as Box<dyn MutatingPolicy>)
                .collect();
        if let Some(dir) = &config.policy_dir {
            let set = load_policy_dir(dir)?;
            // MutatingAdmissionPolicy: after the built-in rule, before the webhooks.
            if let Some(mutating) = set.mutating() {
                mutating_policies.push(Box::new(mutating));
            }
            if !set.is_empty() {
                policies.push(Box::new(set));
            }
        }
        let stages = vec![
            Stage::MutatingPolicies(mutating_policies),
            Stage::MutatingWebhooks(mutating),
            Stage::ValidatingPolicies(policies),
            Stage::ValidatingWebhooks(validating),
        ];
        Ok(Self {
            stages,
            mode: config.mode,
            exemptions: config.exemptions.clone(),
            break_glass: config.break_glass.clone(),
            namespaces: config.namespaces.clone(),
            log: None,
            cache: config
                .cache
                .as_ref()
                .map(|c| (cache::DecisionCache::new(c), c.clone())),
            metrics: Arc::new(Metrics::new()),
            images,
        })
    }

    /// The same core, recording every [`Decider::admit`] in the configured decision log.
    pub fn with_decision_log(mut self, config: &log::DecisionLogConfig) -> std::io::Result<Self> {
        self.log = log::DecisionLog::open(config)?.map(Arc::new);
        Ok(self)
    }

    /// The same core, writing to `log` (a reloaded core keeps its predecessor's log).
    pub fn with_shared_log(mut self, log: Option<Arc<log::DecisionLog>>) -> Self {
        self.log = log;
        self
    }

    pub fn decision_log(&self) -> Option<Arc<log::DecisionLog>> {
        self.log.clone()
    }

    /// The same core, counting into `metrics` (which outlive reloads of the core).
    pub fn with_metrics(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// `breakGlass.label`.
    pub fn break_glass_label(&self) -> &str {
        &self.break_glass.label
    }

    /// A namespace's labels: those configured under `namespaces:` (the `"*"` entry for a
    /// namespace not listed), plus the name label Kubernetes always sets.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .get(namespace)
            .or_else(|| self.namespaces.get(ANY_NAMESPACE))
            .map(|n| n.labels.clone())
            .unwrap_or_default();
        labels.extend(crate::policy::matching::name_label(namespace));
        labels
    }

    /// What a door calls: decides — or finds the decision in the cache — and records it
    /// (door, caller, verdict, every policy's result, latency) in the decision log and the
    /// metrics before returning it.
    pub async fn admit(&self, door: &str, request: &AdmissionRequest) -> Verdict {
        self.admit_scoped(door, request, Scope::All).await
    }

    /// [`Decider::admit`] for part of the chain.
    pub async fn admit_scoped(
        &self,
        door: &str,
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

    /// True when no policy source is configured: every request is allowed unchanged.
    pub fn is_empty(&self) -> bool {
        self.stages.iter().all(|s| match s {
            Stage::MutatingWebhooks(h) | Stage::ValidatingWebhooks(h) => h.is_empty(),
            Stage::ValidatingPolicies(p) => p.is_empty(),
            Stage::MutatingPolicies(p) => p.is_empty(),
        })
    }

    /// Asks every applicable policy about `request`. Never fails: problems reaching a
    /// policy become part of the verdict according to its failure policy.
    pub async fn decide(&self, request: &AdmissionRequest) -> Verdict {
        self.decide_and_tell(request, Scope::All).await.0
    }

    /// [`Decider::decide`] for part of the chain, and whether a webhook that is not
    /// `cache: true` took part.
    async fn decide_and_tell(&self, request: &AdmissionRequest, scope: Scope) -> (Verdict, bool) {
        if let Some(pass) = exempt::pass(&self.exemptions, &self.break_glass, request) {
            return (passed(pass), false);
        }
        let mut run = Run::new(
            request,
            self.namespace_labels(&request.namespace),
            self.mode,
            &self.metrics,
        );
        if scope == Scope::Images {
            judge(&self.images, &mut run);
        }
        for stage in self.stages.iter().filter(|s| scope.runs(s)) {
            match stage {
                Stage::MutatingWebhooks(hooks) => mutate(hooks, &mut run).await,
                Stage::ValidatingPolicies(policies) => judge(policies, &mut run),
                Stage::MutatingPolicies(policies) => change(policies, &mut run),
                Stage::ValidatingWebhooks(hooks) => validate(hooks, &mut run).await,
            }
            if run.is_refused() {
                break;
            }
        }
        let uncacheable = run.uncacheable;
        let verdict = run.finish();
        tracing::debug!(
            uid = %request.uid,
            allowed = verdict.allowed,
            mutated = verdict.mutated.is_some(),
            policies = verdict.trail.len(),
            "admission decided"
        );
        (verdict, uncacheable)
    }
}

/// Every policy document in `dir`, compiled once.
fn load_policy_dir(dir: &std::path::Path) -> Result<crate::policy::vap::PolicySet, CoreError> {
    let error = |message: String| CoreError::PolicyDir {
        dir: dir.display().to_string(),
        message,
    };
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| error(e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    paths.sort();
    let mut documents = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| error(format!("{}: {e}", path.display())))?;
        documents.push((path, text));
    }
    crate::policy::vap::PolicySet::from_documents(&documents).map_err(|e| error(e.to_string()))
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
    let mut verdict = Verdict {
        allowed: true,
        ..Verdict::default()
    };
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
    door: &str,
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
    let patch: Vec<String> = match (object, &verdict.mutated) {
        (Some(before), Some(after)) => json_patch::diff(before, after)
            .0
            .iter()
            .map(|op| op.path().to_string())
            .collect(),
        _ => Vec::new(),
    };
    serde_json::json!({
        "time": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        "door": door,
        "uid": request.uid,
        "operation": request.operation.as_str(),
        "kind": request.kind.kind,
        "subResource": request.sub_resource,
        "namespace": request.namespace,
        "name": request.name,
        "images": images,
        "caller": request.user_info,
        "allowed": verdict.allowed,
        "code": verdict.status.as_ref().and_then(|s| s.code),
        "message": verdict.message(),
        "policies": verdict.trail,
        "warnings": verdict.warnings,
        "auditAnnotations": verdict.audit_annotations,
        "patch": patch,
        "cached": cached,
        "latencyMicros": latency.as_micros() as u64,
    })
}

/// Mutating webhooks: sequential, each sees the previous ones' patches.
async fn mutate(hooks: &[Webhook], run: &mut Run<'_>) {
    // Upstream webhookReinvokeContext: IfNeeded webhooks called before a change are
    // called once more after the first round.
    let mut invoked_reinvocable = Vec::new();
    let mut reinvoke = std::collections::BTreeSet::new();
    for (index, hook) in hooks.iter().enumerate() {
        let request = run.current();
        if !hook.matches(&request, &run.namespace_labels) {
            continue;
        }
        let reply = call(hook, &request, run).await;
        let changed = settle(run, hook, index, 0, reply);
        if run.is_refused() {
            return;
        }
        if changed {
            reinvoke.extend(invoked_reinvocable.drain(..));
        }
        if hook.reinvoke_if_needed() {
            invoked_reinvocable.push(index);
        }
    }
    for index in reinvoke {
        let hook = &hooks[index];
        let request = run.current();
        if !hook.matches(&request, &run.namespace_labels) {
            continue;
        }
        let reply = call(hook, &request, run).await;
        settle(run, hook, index, 1, reply);
        if run.is_refused() {
            return;
        }
    }
}

/// Validating webhooks: all called at once; answers are folded in config order.
async fn validate(hooks: &[Webhook], run: &mut Run<'_>) {
    let request = run.current();
    let called: Vec<(usize, &Webhook)> = hooks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.matches(&request, &run.namespace_labels))
        .collect();
    run.uncacheable |= called.iter().any(|(_, h)| !h.cacheable());
    let metrics = run.metrics;
    let replies =
        futures_util::future::join_all(called.iter().map(|(_, h)| timed(h, &request, metrics)))
            .await;
    for ((index, hook), reply) in called.into_iter().zip(replies) {
        settle(run, hook, index, 0, reply);
    }
}

/// Calls a mutating webhook, noting what the cache and the metrics need to know.
async fn call(hook: &Webhook, request: &AdmissionRequest, run: &mut Run<'_>) -> Reply {
    run.uncacheable |= !hook.cacheable();
    timed(hook, request, run.metrics).await
}

async fn timed(hook: &Webhook, request: &AdmissionRequest, metrics: &Metrics) -> Reply {
    let started = Instant::now();
    let reply = hook.call(request).await;
    let result = match &reply {
        Reply::CallFailed(CallError::Timeout { .. }) => Some(CallResult::Timeout),
        Reply::CallFailed(_) => Some(CallResult::Error),
        Reply::Answered(_) => Some(CallResult::Answered),
        Reply::DryRunUnsupported => None,
    };
    if let Some(result) = result {
        metrics.webhook_called(hook.name(), result, started.elapsed());
    }
    reply
}

/// In-process mutating policies, in order, each seeing the previous ones' changes.
fn change(policies: &[Box<dyn MutatingPolicy>], run: &mut Run<'_>) {
    for policy in policies {
        let name = policy.name();
        let request = run.current();
        let mutation = match policy.mutate(&request, &run.namespace_labels) {
            Mutation::Ignored { errors, patch } => {
                tracing::warn!(policy = %name, ?errors, "policy failed; ignored (failurePolicy: Ignore)");
                run.record(name, Outcome::Ignored, errors.join("; "));
                patch.map_or(Mutation::Skip, Mutation::Patch)
            }
            mutation => mutation,
        };
        match mutation {
            Mutation::Skip | Mutation::Ignored { .. } => {}
            Mutation::Allow => run.record(name, Outcome::Allowed, ""),
            Mutation::Patch(patch) if run.effective(policy.mode()) != Mode::Enforce => {
                let mode = run.effective(policy.mode());
                run.record(
                    name,
                    Outcome::Allowed,
                    format!("would apply {patch:?}; not applied in mode {mode:?}"),
                );
            }
            Mutation::Patch(patch) => {
                run.apply_patch(name, &patch);
            }
            Mutation::Deny(message) => {
                let message = format!("policy {name:?} denied the request: {message}");
                run.record(name, Outcome::Denied, &message);
                let status = failure_status(403, "Forbidden", message);
                if run.refuse_by(policy.mode(), name, Refusal::Denied, status) {
                    return;
                }
            }
        }
    }
}

/// In-process validating policies, in order; the first refusal ends the phase.
fn judge(policies: &[Box<dyn ValidatingPolicy>], run: &mut Run<'_>) {
    let request = run.current();
    for policy in policies {
        let name = policy.name();
        let judgement = policy.validate(&request, &run.namespace_labels);
        run.verdict.warnings.extend(judgement.warnings);
        for (key, value) in judgement.audit_annotations {
            run.annotate(key, value);
        }
        match judgement.answer {
            Answer::Skip => {}
            Answer::Allow => run.record(name, Outcome::Allowed, ""),
            Answer::Deny(message) => {
                let message = format!("policy {name:?} denied the request: {message}");
                run.record(name, Outcome::Denied, &message);
                let status = failure_status(403, "Forbidden", message);
                if run.refuse_by(policy.mode(), name, Refusal::Denied, status) {
                    return;
                }
            }
            Answer::Error(error) => {
                let message = format!("policy {name:?} could not judge the request: {error}");
                run.record(name, Outcome::Failed, &message);
                let status = failure_status(500, "InternalError", message);
                if run.refuse_by(policy.mode(), name, Refusal::Failed, status) {
                    return;
                }
            }
        }
    }
}

/// Folds one webhook reply into the run, with kube-apiserver's wording. Returns whether
/// the object changed.
fn settle(run: &mut Run<'_>, hook: &Webhook, index: usize, round: u8, reply: Reply) -> bool {
    let name = hook.name();
    match reply {
        Reply::DryRunUnsupported => {
            let message = format!("admission webhook {name:?} does not support dry run");
            run.record(name, Outcome::Failed, &message);
            run.refuse(Refusal::Failed, failure_status(400, "BadRequest", message));
            false
        }
        Reply::CallFailed(error) if hook.fails_open() => {
            tracing::warn!(webhook = %name, %error, "failed calling webhook, failing open");
            run.record(name, Outcome::Ignored, error.to_string());
            let phase = if hook.is_mutating() {
                "mutation"
            } else {
                "validating"
            };
            run.annotate(
                format!("failed-open.{phase}.webhook.admission.k8s.io/round_{round}_index_{index}"),
                name.to_owned(),
            );
            false
        }
        Reply::CallFailed(error) => {
            tracing::warn!(webhook = %name, %error, "failed calling webhook, failing closed");
            run.record(name, Outcome::Failed, error.to_string());
            let message = format!("failed calling webhook {name:?}: {error}");
            let status = failure_status(500, "InternalError", message);
            run.refuse_by(hook.mode(), name, Refusal::Failed, status);
            false
        }
        Reply::Answered(answer) => {
            for (key, value) in answer.audit_annotations {
                run.annotate(format!("{name}/{key}"), value);
            }
            run.verdict.warnings.extend(answer.warnings);
            if !answer.allowed {
                let status = denial_status(name, answer.status);
                run.record(name, Outcome::Denied, &status.message);
                run.refuse_by(hook.mode(), name, Refusal::Denied, status);
                return false;
            }
            match answer.patch {
                Some(patch) if !patch.is_empty() && run.effective(hook.mode()) != Mode::Enforce => {
                    let mode = run.effective(hook.mode());
                    let message = format!(
                        "would apply {} patch operation(s); not applied in mode {mode:?}",
                        patch.len()
                    );
                    run.record(name, Outcome::Allowed, message);
                    false
                }
                Some(patch) if !patch.is_empty() => run.apply_patch(name, &patch),
                _ => {
                    run.record(name, Outcome::Allowed, "");
                    false
                }
            }
        }
    }
}

/// Upstream `webhookerrors.ToStatusErr`, without the `pods "x" is forbidden: ` prefix
/// (the door adds its own context).
fn denial_status(name: &str, status: Option<Status>) -> Status {
    let status = status.unwrap_or_default();
    let code = status.code.filter(|c| *c != 0).unwrap_or(403);
    let denied_by = format!("admission webhook {name:?} denied the request");
    let message = if !status.message.is_empty() {
        format!("{denied_by}: {}", status.message)
    } else if !status.reason.is_empty() {
        format!("{denied_by}: {}", status.reason)
    } else {
        format!("{denied_by} without explanation")
    };
    let reason = match (status.reason.is_empty(), code) {
        (false, _) => status.reason,
        (true, 500) => "InternalError".into(),
        (true, _) => "Forbidden".into(),
    };
    Status {
        code: Some(code),
        message,
        reason,
        status: "Failure".into(),
    }
}

fn failure_status(code: i32, reason: &str, message: String) -> Status {
    Status {
        code: Some(code),
        message,
        reason: reason.into(),
        status: "Failure".into(),
    }
}

/// A request's progress through the chain: the object as mutated so far and everything
/// the policies said. Every stage reports through these methods.
struct Run<'a> {
    request: &'a AdmissionRequest,
    namespace_labels: BTreeMap<String, String>,
    mode_override: Option<Mode>,
    object: Option<Value>,
    verdict: Verdict,
    metrics: &'a Metrics,
    /// A webhook without `cache: true` was called: the verdict must not be cached.
    uncacheable: bool,
}

impl<'a> Run<'a> {
    fn new(
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
            metrics,
            uncacheable: false,
        }
    }

    /// The request as the next policy should see it.
    fn current(&self) -> Cow<'a, AdmissionRequest> {
        if self.object == self.request.object {
            Cow::Borrowed(self.request)
        } else {
            Cow::Owned(AdmissionRequest {
                object: self.object.clone(),
                ..self.request.clone()
            })
        }
    }

    fn is_refused(&self) -> bool {
        self.verdict.refusal.is_some()
    }

    fn record(&mut self, policy: &str, outcome: Outcome, message: impl Into<String>) {
        self.verdict.trail.push(PolicyResult {
            policy: policy.into(),
            outcome,
            message: message.into(),
        });
    }

    fn annotate(&mut self, key: String, value: String) {
        self.verdict.audit_annotations.insert(key, value);
    }

    /// The mode a policy runs in: the global override if set, else its own.
    fn effective(&self, mode: Mode) -> Mode {
        self.mode_override.unwrap_or(mode)
    }

    /// A policy's refusal, as its mode has it: enforced (returns true), a warning, or an
    /// audit annotation (`portcullis.dev/audit.POLICY`).
    fn refuse_by(&mut self, mode: Mode, policy: &str, refusal: Refusal, status: Status) -> bool {
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
    fn refuse(&mut self, refusal: Refusal, status: Status) {
        if self.verdict.refusal.is_none() {
            self.verdict.refusal = Some(refusal);
            self.verdict.status = Some(status);
        }
    }

    /// Applies a mutating policy's JSON Patch. A patch that cannot be applied fails
    /// closed whatever the failure policy, as upstream (it is an internal error there).
    fn apply_patch(&mut self, policy: &str, patch: &json_patch::Patch) -> bool {
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

    fn finish(self) -> Verdict {
        let mut verdict = self.verdict;
        verdict.allowed = verdict.refusal.is_none();
        if verdict.allowed && self.object != self.request.object {
            verdict.mutated = self.object;
        }
        verdict
    }
}
