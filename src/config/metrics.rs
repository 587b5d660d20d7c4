//! `metrics:` — the Prometheus endpoint (what is counted is the top-level `metrics` module).

use serde::Deserialize;

/// `metrics:` settings.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsConfig {
    /// `HOST:PORT` to serve `/metrics` on (plain HTTP), e.g. `127.0.0.1:9464`.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}
