//! The decision core: one [`AdmissionRequest`] in, one [`Verdict`] out, asked of every
//! configured policy source in Kubernetes' admission order.
//!
//! - [`Decider`] (here and in `decider`) is what a door calls: exemptions, the decision
//!   cache, the chain, then the decision log and the metrics.
//! - `chain` runs the stages in kube-apiserver's order — the mutation phase (in-process
//!   mutating policies: runtime class, MutatingAdmissionPolicy; then mutating webhooks),
//!   then the validation phase (Pod Security, image rules, ValidatingAdmissionPolicy; then
//!   validating webhooks) — and `run` folds each answer into the verdict.
//! - `webhook` and `client` call admission webhooks; `status` words refusals as
//!   kube-apiserver does.
//!
//! The policies themselves live in [`crate::policy`] and are built by its registry; the
//! core knows them only through the [`policy::admission`](crate::policy::admission)
//! traits. Those that can take long (CEL) run on the blocking pool, behind a bound
//! (`blocking`), never on an async worker.

pub(crate) mod cache;
pub(crate) mod exempt;
pub(crate) mod log;

mod blocking;
mod chain;
mod client;
mod decider;
mod run;
// A webhook patch applied as the chain applies it, for the fuzz target (`crate::fuzzing`).
pub(crate) use run::patched;
mod signatures;
mod status;
pub(crate) mod tls;
mod tls_verify;
mod webhook;

#[cfg(test)]
mod operate_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::webhook::{InvalidWebhook, WebhookKind};
use crate::config::{
    BreakGlass, CacheConfig, Config, DecisionLogConfig, Exemptions, Mode, NamespaceConfig,
};
use crate::metrics::{Metrics, SharedMetrics};
use crate::policy::registry;
use crate::review::{AdmissionRequest, Verdict};

use blocking::Blocking;
pub use chain::Scope;
use chain::Stage;
pub use client::{CallError, MAX_RESPONSE_BYTES};
use webhook::Webhook;

/// Why a [`Decider`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("webhook {name:?}: {error}")]
    InvalidWebhook { name: String, error: InvalidWebhook },
    #[error("webhook {name:?}: {message}")]
    Setup { name: String, message: String },
    /// A policy source refused its config; the message names the key or file.
    #[error("{0}")]
    Policy(String),
}

/// The `namespaces:` key whose labels a namespace not listed gets: a caller chooses its
/// containerd namespace, so without it an unlisted namespace has no Pod Security level.
pub const ANY_NAMESPACE: &str = "*";

/// The one decision core every door asks. Build it once and share it (`Arc`); webhook
/// connections are pooled inside. It runs on a Tokio runtime with timers enabled
/// (`enable_all`, as every door builds it): webhook calls and CEL evaluations are timed.
pub struct Decider {
    stages: Vec<Stage>,
    mode: Option<Mode>,
    exemptions: Exemptions,
    break_glass: BreakGlass,
    namespaces: BTreeMap<String, NamespaceConfig>,
    log: Option<Arc<log::DecisionLog>>,
    cache: Option<(cache::DecisionCache, CacheConfig)>,
    metrics: SharedMetrics,
    /// The image rules again, alone, for [`Scope::Images`].
    images: Vec<Arc<dyn crate::policy::ValidatingPolicy>>,
    /// The images' signatures, for [`Scope::Images`] too; `None` without trust policies.
    signatures: Option<Arc<signatures::Signatures>>,
    blocking: Blocking,
}

impl Decider {
    /// Builds the chain from a loaded config: the registry's policies, then the webhooks in
    /// their config order within each kind. Reads credential files and system CA roots;
    /// opens no connection.
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
        let policies = registry::build(config).map_err(CoreError::Policy)?;
        let signatures = signatures::Signatures::new(config)
            .map_err(CoreError::Policy)?
            .map(Arc::new);
        let mut stages = vec![
            Stage::MutatingPolicies(policies.mutating),
            Stage::MutatingWebhooks(mutating),
        ];
        stages.extend(signatures.clone().map(Stage::ImageSignatures));
        stages.push(Stage::ValidatingPolicies(policies.validating));
        stages.push(Stage::ValidatingWebhooks(validating));
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
            images: policies.images,
            signatures,
            blocking: Blocking::new(),
        })
    }

    /// The same core, recording every [`Decider::admit`] in the configured decision log.
    pub fn with_decision_log(mut self, config: &DecisionLogConfig) -> std::io::Result<Self> {
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

    /// Whether image signatures are verified (trust policies are loaded): doors then look
    /// up the digests the runtime holds ([`AdmissionRequest::image_digests`]).
    ///
    /// [`AdmissionRequest::image_digests`]: crate::review::AdmissionRequest::image_digests
    pub fn verifies_signatures(&self) -> bool {
        self.signatures.is_some()
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

    /// True when no policy source is configured: every request is allowed unchanged.
    pub fn is_empty(&self) -> bool {
        self.stages.iter().all(Stage::is_empty)
    }

    /// Asks every applicable policy about `request`, without cache, log or metrics.
    /// Never fails: problems reaching a policy become part of the verdict according to its
    /// failure policy.
    pub async fn decide(&self, request: &AdmissionRequest) -> Verdict {
        self.decide_and_tell(request, Scope::All).await.0
    }

    /// Audit, as Gatekeeper's audit: every in-process validating policy judges `request`
    /// (an object that exists already) and says every violation, with what it would do
    /// at admission; nothing is refused, nothing mutated, no webhook called. Synchronous
    /// and possibly slow (Rego, CEL): async callers run it through `spawn_blocking`.
    pub fn audit(&self, request: &AdmissionRequest) -> Vec<crate::policy::Finding> {
        let labels = self.namespace_labels(&request.namespace);
        self.stages
            .iter()
            .filter_map(|stage| match stage {
                Stage::ValidatingPolicies(policies) => Some(policies),
                _ => None,
            })
            .flatten()
            .flat_map(|policy| policy.audit(request, &labels))
            .collect()
    }
}
