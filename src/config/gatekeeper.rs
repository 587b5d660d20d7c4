//! `gatekeeper:` — how the Gatekeeper ConstraintTemplates and Constraints of `policyDir`
//! are run (the policies themselves are `policy::gatekeeper`), and the daemon's periodic
//! audit of what already runs.

use std::time::Duration;

use serde::Deserialize;

/// One engine a ConstraintTemplate's code can be written for (`spec.targets[].code[].engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum GatekeeperEngine {
    /// CEL validations (`code[].engine: K8sNativeValidation`).
    K8sNativeValidation,
    /// Rego (`targets[].rego`, or `code[].engine: Rego`).
    Rego,
}

/// `gatekeeper:` settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatekeeperConfig {
    /// The engines to run templates on, in order of preference: a template runs on the
    /// first one it has code for; one with code for none of these is a load error. Rego
    /// first by default — on regorus's VM it decides the library's templates several
    /// times faster than CEL (BENCHMARKS.md); Gatekeeper itself prefers CEL.
    #[serde(default = "default_engines")]
    pub engines: Vec<GatekeeperEngine>,
    /// How long the Gatekeeper policies may spend on one request, all constraints
    /// together (`500ms` by default). Past it, the request is refused.
    #[serde(default = "default_time_limit", with = "super::duration")]
    pub time_limit: Duration,
    /// `portcullis daemon`: audit the runtime's containers this often (`10m`); absent,
    /// the daemon does not audit (`portcullis audit` does, on demand).
    #[serde(default, with = "optional_duration")]
    pub audit_interval: Option<Duration>,
}

impl Default for GatekeeperConfig {
    fn default() -> Self {
        Self {
            engines: default_engines(),
            time_limit: default_time_limit(),
            audit_interval: None,
        }
    }
}

impl GatekeeperConfig {
    /// `(field, message)` of the first setting that cannot work.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.engines.is_empty() {
            return Err((
                "gatekeeper.engines".into(),
                "must name at least one engine: K8sNativeValidation, Rego".into(),
            ));
        }
        for (i, engine) in self.engines.iter().enumerate() {
            if self.engines[..i].contains(engine) {
                return Err((
                    format!("gatekeeper.engines[{i}]"),
                    format!("{engine:?} is listed twice"),
                ));
            }
        }
        if self.time_limit.is_zero() {
            return Err((
                "gatekeeper.timeLimit".into(),
                "must be more than zero, e.g. 500ms".into(),
            ));
        }
        if self
            .audit_interval
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err((
                "gatekeeper.auditInterval".into(),
                "must be at least 1s, e.g. 10m".into(),
            ));
        }
        Ok(())
    }
}

fn default_engines() -> Vec<GatekeeperEngine> {
    vec![
        GatekeeperEngine::Rego,
        GatekeeperEngine::K8sNativeValidation,
    ]
}

fn default_time_limit() -> Duration {
    Duration::from_millis(500)
}

mod optional_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::super::duration::deserialize(d).map(Some)
    }
}
