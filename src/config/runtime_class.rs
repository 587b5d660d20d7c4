//! `runtimeClass:` — the built-in runtime-class rule's settings, checked at load. What
//! the rule does with a Pod is `policy::runtime_class`.

use serde::Deserialize;

use super::Mode;

/// `runtimeClass:` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeClassRule {
    /// RuntimeClass names no Pod may use as they stand.
    #[serde(default)]
    pub reserved_runtimes: Vec<String>,
    /// Where Pods asking for a reserved runtime are sent instead; unset means refuse them.
    #[serde(default)]
    pub fallback_runtime: Option<String>,
    /// Whether a Pod without `runtimeClassName` (the runtime's default) counts as reserved.
    #[serde(default)]
    pub default_runtime_reserved: bool,
    #[serde(default)]
    pub mode: Mode,
}

impl RuntimeClassRule {
    pub fn is_active(&self) -> bool {
        !self.reserved_runtimes.is_empty() || self.default_runtime_reserved
    }

    /// Checked at load: the fallback must not itself be reserved.
    pub fn validate(&self) -> Result<(), String> {
        match &self.fallback_runtime {
            Some(f) if self.reserved_runtimes.contains(f) => Err(format!(
                "fallbackRuntime {f:?} is itself reserved; pick a runtime not in reservedRuntimes"
            )),
            Some(f) if f.is_empty() => {
                Err("fallbackRuntime is empty; remove it to refuse instead".into())
            }
            _ => Ok(()),
        }
    }
}
