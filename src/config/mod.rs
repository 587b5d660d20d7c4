//! The one config file every door reads (YAML). Unknown keys are errors naming file, line
//! and key; values are validated into typed settings once, at load.

pub mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use webhook::WebhookConfig;

use crate::core::cache::CacheConfig;
use crate::core::exempt::{BreakGlass, Exemptions};
use crate::core::log::DecisionLogConfig;
use crate::hook::config::{EventsConfig, HookConfig};
use crate::metrics::MetricsConfig;
use crate::policy::images::ImageRules;
use crate::policy::runtime_class::RuntimeClassRule;
use crate::serve::config::ServeConfig;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Admission webhooks, in `ValidatingWebhookConfiguration`/`MutatingWebhookConfiguration`
    /// `webhooks[]` form plus `kind`.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Directory of Kubernetes-style YAML objects: ValidatingAdmissionPolicies, their
    /// bindings and params (every `*.yaml`, `*.yml`, `*.json`; several documents a file).
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// Built-in image rules (docs/policies.md).
    #[serde(default)]
    pub images: ImageRules,
    /// Built-in runtime-class rule (docs/policies.md).
    #[serde(default)]
    pub runtime_class: RuntimeClassRule,
    /// Global override of every policy's mode, for rollout.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Requests not judged at all.
    #[serde(default)]
    pub exemptions: Exemptions,
    /// A labelled container let through for listed callers while enabled.
    #[serde(default)]
    pub break_glass: BreakGlass,
    /// Per containerd namespace, like Namespace objects: their labels (Pod Security levels,
    /// selectors of webhooks).
    #[serde(default)]
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// Where every decision is recorded.
    #[serde(default)]
    pub decision_log: DecisionLogConfig,
    /// The decision cache; absent, every request is decided afresh.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `portcullis serve`: the webhook server's listeners.
    #[serde(default)]
    pub serve: ServeConfig,
    /// `portcullis hook` and `portcullis runc`: how they decide.
    #[serde(default)]
    pub hook: HookConfig,
    /// Lifecycle events the daemon serves.
    #[serde(default)]
    pub events: EventsConfig,
    /// How OCI runtime specs are read at every door: what may pass that policies cannot
    /// judge (docs/mapping.md, docs/security.md).
    #[serde(default)]
    pub spec: SpecConfig,
}

/// `spec:` — the escape hatches of the OCI spec conversion. Empty by default: a spec that
/// uses anything listed here is refused, or shown as privileged, unless it is listed.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecConfig {
    /// OCI hook binaries (`hooks.*[].path`, exact absolute paths) trusted to run on the
    /// host as root; a spec with any other hook is shown as privileged.
    #[serde(default)]
    pub allowed_hooks: Vec<String>,
    /// Docker or containers/storage data roots besides `/var/lib/docker` and
    /// `/var/lib/containers/storage` (`dockerd --data-root`, `podman --root`): a container
    /// root filesystem at `<root>/overlay2/<id>/merged` or `<root>/overlay/<id>/merged` is the
    /// container's own; any other `root.path` outside the bundle is shown as a hostPath.
    #[serde(default)]
    pub storage_roots: Vec<String>,
    /// Spec fields this build does not know (dotted, `linux.netDevices`) to let through
    /// unjudged; any other unknown field refuses the spec.
    #[serde(default)]
    pub allowed_fields: Vec<String>,
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

/// `namespaces.NAME:` — what a Namespace object would say about a containerd namespace.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceConfig {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `proxy:` — the containerd door.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Socket the proxy listens on.
    #[serde(default = "default_listen")]
    pub listen: PathBuf,
    /// `MODE[:USER:GROUP]`, mode in octal.
    #[serde(default = "default_listen_mode")]
    pub listen_mode: String,
    /// The real containerd socket.
    #[serde(default = "default_containerd")]
    pub containerd: PathBuf,
    #[serde(default)]
    pub conversion: Conversion,
    /// RuntimeClass name → containerd runtime name.
    #[serde(default)]
    pub runtime_classes: BTreeMap<String, String>,
    /// Docker Engine API socket, to resolve the image of containers dockerd creates.
    #[serde(default)]
    pub docker: Option<PathBuf>,
    /// CRI calls (`runtime.v1.RuntimeService`, `v1alpha2`) that create, change or exec
    /// into containers: containerd's CRI plugin makes those containers in-process, out of
    /// the proxy's sight, so they are refused unless `relay` says to pass them unchecked.
    #[serde(default)]
    pub cri: CriMode,
    /// What `Tasks/Create` may choose beyond the stored container (docs/security.md).
    #[serde(default)]
    pub tasks: TaskRules,
}

/// `proxy.cri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CriMode {
    #[default]
    Refuse,
    Relay,
}

/// `proxy.tasks:` — allow-lists for the parts of `Tasks/Create` and `Tasks/Exec` that run
/// something on the host as root. Empty (nothing allowed) by default, but for runc state
/// roots, where the standard ones are allowed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaskRules {
    /// runc state roots (`Options.root`; the shim adds the namespace) a caller may name:
    /// dockerd names `<exec-root>/runtime-runc`.
    #[serde(default = "default_runc_roots")]
    pub runc_roots: Vec<String>,
    /// `CreateTaskRequest.runtime_path`: shim binaries a caller may name.
    #[serde(default)]
    pub runtime_paths: Vec<String>,
    /// runc `Options.binary_name`: runtime binaries a caller may name.
    #[serde(default)]
    pub runc_binaries: Vec<String>,
    /// `binary://` and `file://` stdio URIs (exact, without the query) the shim may run or
    /// write as root.
    #[serde(default)]
    pub stdio: Vec<String>,
    /// Let `Tasks/Create` restore from a checkpoint.
    #[serde(default)]
    pub checkpoints: bool,
}

impl Default for TaskRules {
    fn default() -> Self {
        Self {
            runc_roots: default_runc_roots(),
            runtime_paths: Vec::new(),
            runc_binaries: Vec::new(),
            stdio: Vec::new(),
            checkpoints: false,
        }
    }
}

fn default_runc_roots() -> Vec<String> {
    [
        "/run/containerd/runc",
        "/run/docker/runtime-runc",
        "/var/run/docker/runtime-runc",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            listen_mode: default_listen_mode(),
            containerd: default_containerd(),
            conversion: Conversion::default(),
            runtime_classes: BTreeMap::new(),
            docker: None,
            cri: CriMode::default(),
            tasks: TaskRules::default(),
        }
    }
}

fn default_listen() -> PathBuf {
    PathBuf::from("/run/portcullis/containerd.sock")
}
fn default_listen_mode() -> String {
    "0660".into()
}
fn default_containerd() -> PathBuf {
    PathBuf::from("/run/containerd/containerd.sock")
}

/// What object policies see for a container request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// A v1 Pod, so Kubernetes policies work unchanged.
    #[default]
    Pod,
    /// The containerd request itself (proto3 JSON, spec decoded).
    Raw,
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

    /// Parses config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // An empty file is a valid, empty config (serde would see `null`).
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.into(),
            field: field.into(),
            message,
        };
        crate::net::listener::ListenMode::parse(&self.proxy.listen_mode)
            .map_err(|e| invalid("proxy.listenMode", e.to_string()))?;
        self.images
            .validate()
            .map_err(|e| invalid(&e.field, e.message))?;
        for (i, field) in self.spec.allowed_fields.iter().enumerate() {
            let name =
                |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric());
            if !field.split('.').all(name) {
                return Err(invalid(
                    &format!("spec.allowedFields[{i}]"),
                    format!("{field:?} is not a dotted spec field path such as `linux.netDevices` (no indexes: `mounts.uidMappings` covers every mount)"),
                ));
            }
        }
        for (i, hook) in self.spec.allowed_hooks.iter().enumerate() {
            if !hook.starts_with('/') || hook.split('/').any(|p| p == "..") {
                return Err(invalid(
                    &format!("spec.allowedHooks[{i}]"),
                    format!("{hook:?} is not an absolute path without `..`; hooks are matched by exact path"),
                ));
            }
        }
        // A reserved or empty fallback would rewrite Pods onto the very runtime the rule
        // keeps them off; refuse it at load rather than at the first Pod.
        self.runtime_class
            .validate()
            .map_err(|e| invalid("runtimeClass.fallbackRuntime", e))?;
        for (i, l) in self.serve.listeners.iter().enumerate() {
            l.validate()
                .map_err(|e| invalid(&format!("serve.listeners[{i}]"), e))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            w.validate()
                .map_err(|e| invalid(&format!("webhooks[{i}].{}", e.field), e.message))?;
            if !names.insert(w.name.as_str()) {
                return Err(invalid(
                    &format!("webhooks[{i}].name"),
                    format!("duplicate webhook name {:?}; names must be unique", w.name),
                ));
            }
        }
        Ok(())
    }
}

/// Durations in config files, in humantime form (`5m`, `30s`, `250ms`).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("portcullis.yaml"))
    }

    #[test]
    fn a_reserved_fallback_runtime_is_refused_at_load_naming_the_field() {
        let err = parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: runc\n")
            .unwrap_err();
        let ConfigError::Invalid { field, message, .. } = &err else {
            panic!("expected Invalid, got {err}");
        };
        assert_eq!(field, "runtimeClass.fallbackRuntime");
        assert!(message.contains("itself reserved"), "{message}");
        assert!(err.to_string().contains("portcullis.yaml"), "{err}");
        let empty = parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: \"\"\n")
            .unwrap_err();
        assert!(
            empty.to_string().contains("runtimeClass.fallbackRuntime"),
            "{empty}"
        );
        let fine =
            parse("runtimeClass:\n  reservedRuntimes: [runc]\n  fallbackRuntime: kata\n").unwrap();
        assert_eq!(fine.runtime_class.fallback_runtime.as_deref(), Some("kata"));
    }

    #[test]
    fn spec_escape_hatches_must_name_what_they_allow() {
        let parse = |text: &str| Config::parse(text, Path::new("c.yaml"));
        assert!(parse("spec: {allowedFields: [linux.netDevices, mounts.uidMappings], allowedHooks: [/usr/bin/hook]}").is_ok());
        for (text, field) in [
            (
                "spec: {allowedFields: ['mounts[3].uidMappings']}",
                "spec.allowedFields[0]",
            ),
            ("spec: {allowedFields: [linux.]}", "spec.allowedFields[0]"),
            ("spec: {allowedFields: ['']}", "spec.allowedFields[0]"),
            ("spec: {allowedHooks: [hook]}", "spec.allowedHooks[0]"),
            (
                "spec: {allowedHooks: [/usr/../tmp/x]}",
                "spec.allowedHooks[0]",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
