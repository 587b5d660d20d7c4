//! `decisionLog:` — where every decision is recorded (the log itself is `core::log`).

use std::path::PathBuf;

use serde::Deserialize;

/// `decisionLog:` settings.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionLogConfig {
    /// Append-only JSON-lines file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Also write each record to standard output.
    #[serde(default)]
    pub stdout: bool,
    /// `fdatasync` each batch before acknowledging it (default true).
    #[serde(default = "yes")]
    pub fsync: bool,
    /// How long a decision waits for its record to be acknowledged, e.g. `1s`, `250ms`.
    #[serde(default)]
    pub timeout: Option<String>,
}

fn yes() -> bool {
    true
}
