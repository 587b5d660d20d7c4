//! The one config file every door reads (YAML).
//!
//! This module is a leaf: it imports nothing else of this crate, only std and external crates.
//! Every section's settings live here, one file a section (`proxy.rs`, `serve.rs`,
//! `webhook/`, `images.rs`, ...); what the program does with them (matching exemptions,
//! judging images, opening the decision log, binding sockets) lives with the code that
//! does it and reads the settings from here.
//!
//! Loading is two stages, as ripgrep turns its arguments into settings:
//!
//! 1. **Parse**: serde reads the text into a [`RawConfig`]. Unknown keys are errors
//!    naming file, line and key (`deny_unknown_fields` everywhere); durations are parsed
//!    here already ([`duration`]). Strings that have a type of their own (listen modes)
//!    are still strings.
//! 2. **Validate**: [`Config::from_raw`] turns it into a [`Config`]: every section is
//!    checked there and nowhere else, `MODE[:USER:GROUP]` strings become [`ListenMode`]s,
//!    and the files of `policyDir` are read ([`PolicyDir`]). Errors name the file, the
//!    field (`serve.listeners[0]`) and what is wrong.
//!
//! [`Config::load`] and [`Config::parse`] do both; they are the way to get a `Config`
//! from text. `Config::default()` is the empty file's config, for code and tests.

mod cache;
mod decision_log;
pub mod duration;
mod exemptions;
mod gatekeeper;
mod hook;
pub mod image_verification;
pub mod images;
mod listen;
mod metrics;
mod namespaces;
pub mod policy_dir;
mod proxy;
mod runtime_class;
mod serve;
mod spec;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use cache::CacheConfig;
pub use decision_log::DecisionLogConfig;
pub use exemptions::{BreakGlass, Exemptions};
pub use gatekeeper::{GatekeeperConfig, GatekeeperEngine};
pub use hook::{EventsConfig, HookConfig};
pub use image_verification::{ImageVerificationConfig, RawImageVerification};
pub use images::{ImageRules, InvalidImageRules};
pub use listen::{ListenMode, ListenModeError};
pub use metrics::MetricsConfig;
pub use namespaces::NamespaceConfig;
pub use policy_dir::PolicyDir;
pub use proxy::{Conversion, CriMode, KubeletDirs, ProxyConfig, RawProxyConfig, TaskRules};
pub use runtime_class::RuntimeClassRule;
pub use serve::{ListenerConfig, RawListenerConfig, RawServeConfig, ServeConfig, TlsConfig};
pub use spec::SpecConfig;
pub use webhook::WebhookConfig;

/// The whole file, validated and typed.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub proxy: ProxyConfig,
    /// Admission webhooks, in `ValidatingWebhookConfiguration`/`MutatingWebhookConfiguration`
    /// `webhooks[]` form plus `kind`.
    pub webhooks: Vec<WebhookConfig>,
    /// Directory of Kubernetes-style YAML objects: ValidatingAdmissionPolicies, their
    /// bindings and params (every `*.yaml`, `*.yml`, `*.json`; several documents a file),
    /// read when the config is loaded.
    pub policy_dir: Option<PolicyDir>,
    /// How the Gatekeeper templates and constraints of `policyDir` run (docs/gatekeeper.md).
    pub gatekeeper: GatekeeperConfig,
    /// Built-in image rules (docs/policies.md).
    pub images: ImageRules,
    /// How image signatures are fetched from registries (docs/image-verification.md); the
    /// trust policies are `policyDir` documents.
    pub image_verification: ImageVerificationConfig,
    /// Built-in runtime-class rule (docs/policies.md).
    pub runtime_class: RuntimeClassRule,
    /// Global override of every policy's mode, for rollout.
    pub mode: Option<Mode>,
    /// Requests not judged at all.
    pub exemptions: Exemptions,
    /// A labelled container let through for listed callers while enabled.
    pub break_glass: BreakGlass,
    /// Per containerd namespace, like Namespace objects: their labels (Pod Security levels,
    /// selectors of webhooks).
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// Where every decision is recorded.
    pub decision_log: DecisionLogConfig,
    /// The decision cache; absent, every request is decided afresh.
    pub cache: Option<CacheConfig>,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `portcullis serve`: the webhook server's listeners.
    pub serve: ServeConfig,
    /// `portcullis hook` and `portcullis runc`: how they decide.
    pub hook: HookConfig,
    /// Lifecycle events the daemon serves.
    pub events: EventsConfig,
    /// How OCI runtime specs are read at every door: what may pass that policies cannot
    /// judge (docs/mapping.md, docs/security.md).
    pub spec: SpecConfig,
}

/// The whole file as written: stage one of loading. Sections whose values have a type of
/// their own hold them as text (`proxy`, `serve`), `policyDir` is only a path; the other
/// sections are already their final types.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    #[serde(default)]
    pub proxy: RawProxyConfig,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// Kinds kept in `policyDir` on purpose that no reader takes.
    #[serde(default)]
    pub policy_dir_ignore: Vec<policy_dir::IgnoredKind>,
    #[serde(default)]
    pub gatekeeper: GatekeeperConfig,
    #[serde(default)]
    pub images: ImageRules,
    #[serde(default)]
    pub image_verification: RawImageVerification,
    #[serde(default)]
    pub runtime_class: RuntimeClassRule,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub exemptions: Exemptions,
    #[serde(default)]
    pub break_glass: BreakGlass,
    #[serde(default)]
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    #[serde(default)]
    pub decision_log: DecisionLogConfig,
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub serve: RawServeConfig,
    #[serde(default)]
    pub hook: HookConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub spec: SpecConfig,
}

/// How a policy's refusals take effect: `enforce` refuses the request, `warn` lets it
/// through with a warning, `audit` lets it through and records the refusal (dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
    Audit,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` only names the source in errors (and `policyDir` is
    /// read as written, relative to the working directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // An empty file is a valid, empty config (serde would see `null`).
        let raw = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        Self::from_raw(raw, path)
    }

    /// Stage two: the one place every section is validated and typed, and `policyDir`
    /// read. `path` names the source in errors.
    pub fn from_raw(raw: RawConfig, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.into(),
            field: field.into(),
            message,
        };
        let proxy = raw
            .proxy
            .typed()
            .map_err(|e| invalid("proxy.listenMode", e.to_string()))?;
        raw.images
            .validate()
            .map_err(|e| invalid(&e.field, e.message))?;
        raw.spec
            .validate()
            .map_err(|(field, message)| invalid(&field, message))?;
        // A reserved or empty fallback would rewrite Pods onto the very runtime the rule
        // keeps them off; refuse it at load rather than at the first Pod.
        raw.runtime_class
            .validate()
            .map_err(|e| invalid("runtimeClass.fallbackRuntime", e))?;
        let serve = raw
            .serve
            .typed()
            .map_err(|(i, e)| invalid(&format!("serve.listeners[{i}]"), e))?;
        webhook::validate_all(&raw.webhooks)
            .map_err(|(field, message)| invalid(&field, message))?;
        let image_verification = raw
            .image_verification
            .typed()
            .map_err(|(field, message)| invalid(&field, message))?;
        raw.gatekeeper
            .validate()
            .map_err(|(field, message)| invalid(&field, message))?;
        let policy_dir = match &raw.policy_dir {
            Some(dir) => Some(PolicyDir {
                ignored_kinds: raw.policy_dir_ignore.clone(),
                ..PolicyDir::read(dir).map_err(|e| invalid("policyDir", e))?
            }),
            None => None,
        };
        Ok(Self {
            proxy,
            webhooks: raw.webhooks,
            policy_dir,
            gatekeeper: raw.gatekeeper,
            images: raw.images,
            image_verification,
            runtime_class: raw.runtime_class,
            mode: raw.mode,
            exemptions: raw.exemptions,
            break_glass: raw.break_glass,
            namespaces: raw.namespaces,
            decision_log: raw.decision_log,
            cache: raw.cache,
            metrics: raw.metrics,
            serve,
            hook: raw.hook,
            events: raw.events,
            spec: raw.spec,
        })
    }
}
