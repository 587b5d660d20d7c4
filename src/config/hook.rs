//! `hook:` and `events:` — the hook door's settings, and where lifecycle events go.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `hook:` settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HookConfig {
    /// A `serve` unix listener to decide through (shared cache, decision log, one config).
    /// Unset, or unreachable: the hook decides in-process from the config file.
    #[serde(default)]
    pub daemon_socket: Option<PathBuf>,
    /// How long the daemon may take, e.g. `2s` (the default).
    #[serde(default = "default_timeout", with = "super::duration")]
    pub timeout: Duration,
    /// Admit when no decision can be made at all (daemon down and the config unusable).
    #[serde(default)]
    pub fail_open: bool,
    /// This node runs CRI-O, which sets `io.kubernetes.pod.namespace` on the containers it
    /// makes: let that annotation choose the namespace whose rules apply. Off by default:
    /// anywhere else whoever writes the spec chooses the annotation.
    #[serde(default)]
    pub cri_o: bool,
    /// Let `portcullis runc restore` through, judged by its bundle alone: the restored
    /// process comes from a checkpoint image the wrapper cannot read. Off by default.
    #[serde(default)]
    pub allow_restore: bool,
}

impl Default for HookConfig {
    fn default() -> Self {
        Self {
            daemon_socket: None,
            timeout: default_timeout(),
            fail_open: false,
            cri_o: false,
            allow_restore: false,
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

/// `events:` settings (daemon side).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventsConfig {
    /// Unix socket serving lifecycle events as JSON lines to every connected subscriber.
    #[serde(default)]
    pub socket: Option<PathBuf>,
}
