//! The OCI state a runtime writes to a hook's stdin, and the hook stage it was called at.
//!
//! runtime-spec `runtime.md#state` and `config.md#posix-platform-hooks`: the state carries
//! `ociVersion`, `id`, `status` (`creating`, `created`, `running`, `stopped`), `pid`,
//! `bundle` and `annotations`; the full spec is `<bundle>/config.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The state JSON, as far as the hook reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default)]
    pub oci_version: String,
    pub id: String,
    #[serde(default)]
    pub status: String,
    /// Absent once the container has stopped.
    #[serde(default)]
    pub pid: Option<u32>,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Why the state on stdin cannot be used. The hook fails closed on it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the OCI state from stdin: {0}")]
    Read(#[from] std::io::Error),
    #[error("the OCI state on stdin is not valid JSON with id and bundle: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("the OCI state on stdin has an empty {0}")]
    Empty(&'static str),
}

impl State {
    pub fn parse(text: &str) -> Result<Self, StateError> {
        let state: State = serde_json::from_str(text)?;
        if state.id.is_empty() {
            return Err(StateError::Empty("id"));
        }
        if state.bundle.as_os_str().is_empty() {
            return Err(StateError::Empty("bundle"));
        }
        Ok(state)
    }
}

/// The hook stages the door acts at (runtime-spec `config.md#posix-platform-hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "camelCase")]
pub enum Stage {
    /// After the runtime environment is created, before pivot_root: admit or refuse.
    CreateRuntime,
    /// The deprecated stage old runtimes call at the same point: admit or refuse.
    Prestart,
    /// After the container is deleted: report only, never fail.
    Poststop,
}

impl Stage {
    /// The stage a state's `status` implies: `creating`/`created` are the creation hooks,
    /// `stopped` is poststop.
    pub fn from_status(status: &str) -> Option<Self> {
        match status {
            "creating" | "created" => Some(Stage::CreateRuntime),
            "stopped" => Some(Stage::Poststop),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::CreateRuntime => "createRuntime",
            Stage::Prestart => "prestart",
            Stage::Poststop => "poststop",
        }
    }

    /// Whether the door decides at this stage (and may refuse).
    pub fn decides(self) -> bool {
        !matches!(self, Stage::Poststop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/runtime-specs/podman"
    );

    #[test]
    fn reads_podman_state() {
        let text = std::fs::read_to_string(format!("{FIXTURES}/privileged.state.json")).unwrap();
        let s = State::parse(&text).unwrap();
        assert_eq!(s.status, "creating");
        assert!(s.pid.is_some());
        assert!(s.bundle.ends_with("userdata"));
        assert_eq!(s.annotations["io.container.manager"], "libpod");
        assert_eq!(Stage::from_status(&s.status), Some(Stage::CreateRuntime));
    }

    #[test]
    fn bad_state_is_a_clear_error() {
        let e = State::parse("not json").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = State::parse(r#"{"id": "x"}"#).unwrap_err().to_string();
        assert!(e.contains("bundle"), "{e}");
        let e = State::parse(r#"{"id": "", "bundle": "/b"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty id"), "{e}");
        // A stopped container has no pid.
        let s = State::parse(r#"{"id": "x", "bundle": "/b", "status": "stopped"}"#).unwrap();
        assert_eq!(
            (s.pid, Stage::from_status(&s.status)),
            (None, Some(Stage::Poststop))
        );
        assert_eq!(Stage::from_status("running"), None);
    }
}
