//! One configured admission webhook: when it applies ([`crate::policy::matching`]), how to reach
//! it ([`super::client`]) and what its answer means for the request. The chain in
//! [`super`] decides what to do with a [`Reply`].

use std::collections::BTreeMap;

use crate::config::webhook::{
    FailurePolicy, ReinvocationPolicy, SideEffectClass, WebhookConfig, WebhookKind,
};
use crate::policy::matching;
use crate::review::wire::{self, ReviewVersion, WebhookAnswer};
use crate::review::AdmissionRequest;

use super::client::{CallError, WebhookClient};
use super::CoreError;

pub struct Webhook {
    config: WebhookConfig,
    version: ReviewVersion,
    client: WebhookClient,
}

/// What came of calling a webhook.
pub enum Reply {
    Answered(WebhookAnswer),
    /// The webhook could not be asked or answered badly; `failurePolicy` applies.
    CallFailed(CallError),
    /// A dry-run request to a webhook that may have side effects: refused, never called
    /// (kube-apiserver answers 400 whatever the `failurePolicy`).
    DryRunUnsupported,
}

impl Webhook {
    pub fn new(config: &WebhookConfig) -> Result<Self, CoreError> {
        let name = config.name.clone();
        config
            .validate()
            .map_err(|error| CoreError::InvalidWebhook {
                name: name.clone(),
                error,
            })?;
        let version =
            ReviewVersion::choose(config.admission_review_versions.iter().map(String::as_str))
                .ok_or_else(|| CoreError::Setup {
                    name: name.clone(),
                    message: "admissionReviewVersions: must include at least one of v1, v1beta1"
                        .into(),
                })?;
        let client = WebhookClient::new(config).map_err(|e| CoreError::Setup {
            name: name.clone(),
            message: e.to_string(),
        })?;
        if config.rules.is_empty() {
            tracing::warn!(webhook = %name, "webhook has no rules and will never be called (as in Kubernetes)");
        }
        Ok(Self {
            config: config.clone(),
            version,
            client,
        })
    }

    /// Whether decisions it took part in may be cached (`cache: true`).
    pub fn cacheable(&self) -> bool {
        self.config.cache
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_mutating(&self) -> bool {
        self.config.kind == WebhookKind::Mutating
    }

    pub fn fails_open(&self) -> bool {
        self.config.failure_policy == FailurePolicy::Ignore
    }

    pub fn mode(&self) -> crate::config::Mode {
        self.config.mode
    }

    pub fn reinvoke_if_needed(&self) -> bool {
        self.config.reinvocation_policy == Some(ReinvocationPolicy::IfNeeded)
    }

    /// Pure: whether this webhook applies to `request` (as patched so far) in a namespace
    /// with `namespace_labels`.
    pub fn matches(
        &self,
        request: &AdmissionRequest,
        namespace_labels: &BTreeMap<String, String>,
    ) -> bool {
        matching::should_call_in(&self.config, request, namespace_labels)
    }

    /// Sends `request` and checks the answer. Never panics; every failure is a [`Reply`].
    pub async fn call(&self, request: &AdmissionRequest) -> Reply {
        if request.dry_run == Some(true) {
            match self.config.side_effects {
                None => return Reply::CallFailed(CallError::SideEffectsNil),
                Some(SideEffectClass::None | SideEffectClass::NoneOnDryRun) => {}
                Some(SideEffectClass::Some | SideEffectClass::Unknown) => {
                    return Reply::DryRunUnsupported
                }
            }
        }
        match self.exchange(request).await {
            Ok(answer) => Reply::Answered(answer),
            Err(e) => Reply::CallFailed(e),
        }
    }

    async fn exchange(&self, request: &AdmissionRequest) -> Result<WebhookAnswer, CallError> {
        let body = wire::encode_review(request, self.version).map_err(CallError::Encode)?;
        let bytes = self.client.post(body).await?;
        Ok(wire::decode_response(
            &bytes,
            self.version,
            &request.uid,
            self.is_mutating(),
        )?)
    }
}
