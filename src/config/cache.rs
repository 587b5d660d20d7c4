//! `cache:` — the decision cache's settings (the cache itself is `core::cache`).

use std::time::Duration;

use serde::Deserialize;

/// `cache:` settings. Absent, nothing is cached.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CacheConfig {
    /// How long an admission is remembered, e.g. `5m` (the default).
    #[serde(
        rename = "allowTTL",
        default = "default_allow_ttl",
        with = "super::duration"
    )]
    pub allow_ttl: Duration,
    /// How long a refusal is remembered, e.g. `30s` (the default).
    #[serde(
        rename = "denyTTL",
        default = "default_deny_ttl",
        with = "super::duration"
    )]
    pub deny_ttl: Duration,
    /// Upper bound on the memory the cached requests and verdicts take, in MiB.
    #[serde(rename = "maxSizeMiB", default = "default_max_mib")]
    pub max_size_mib: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            allow_ttl: default_allow_ttl(),
            deny_ttl: default_deny_ttl(),
            max_size_mib: default_max_mib(),
        }
    }
}

fn default_allow_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_deny_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_max_mib() -> u64 {
    64
}
