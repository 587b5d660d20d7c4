//! Pod Security Standards: the `baseline` and `restricted` levels, evaluated exactly as
//! Kubernetes' Pod Security Admission does (k8s.io/pod-security-admission, `policy/`).
//!
//! Every check keeps the versions in which upstream changed its behaviour
//! (`policy/check_*.go`, `VersionedCheck.MinimumVersion`), so `restricted:v1.24` judges a
//! Pod as a 1.24 namespace label would. Reasons and details carry upstream's wording, so
//! [`message`] reads like the API server's own denial.
//!
//! The checks read the v1 Pod as JSON, absent and `null` fields meaning Go's zero value
//! or nil. A field of the wrong type (which the API server would refuse to decode) makes
//! [`evaluate`] answer [`InvalidPod`], and the caller fails closed.
//!
//! docs/policies.md ("Pod Security Standards") is the user-facing description; keep it in
//! step with this module.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

mod admission;
mod baseline;
mod profiles;
mod restricted;
mod shape;
mod view;

pub use admission::register;

#[cfg(test)]
mod tests;

/// The newest policy version any check knows (`registry.go` `maxVersion`): `latest` and
/// every newer version mean this one.
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standard level (`pod-security.kubernetes.io/enforce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// No checks at all.
    Privileged,
    Baseline,
    /// Baseline, minus the baseline checks a restricted check replaces, plus the
    /// restricted checks.
    Restricted,
}

/// A policy version (`pod-security.kubernetes.io/enforce-version`): `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    /// `v1.<minor>`; a minor newer than [`LATEST_MINOR`] is judged as [`LATEST_MINOR`].
    V(u32),
}

impl Version {
    /// The minor whose checks apply, clamped to [`LATEST_MINOR`] as upstream clamps to
    /// its `maxVersion`.
    pub fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::V(minor) => minor.min(LATEST_MINOR),
        }
    }
}

/// A level and the version of it to apply, written `restricted:latest` or `baseline:v1.30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

/// A level, version or `level:version` that upstream would not accept either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLevelVersion {
    #[error("invalid Pod Security level {0} (want privileged, baseline or restricted)")]
    Level(String),
    #[error("invalid Pod Security version {0} (want latest or v1.<minor>, such as v1.30)")]
    Version(String),
}

impl FromStr for Level {
    type Err = InvalidLevelVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(InvalidLevelVersion::Level(super::quote(s))),
        }
    }
}

impl FromStr for Version {
    type Err = InvalidLevelVersion;

    /// `latest`, or `v1.<minor>` without leading zeros (upstream `api.ParseVersion`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let invalid = || InvalidLevelVersion::Version(super::quote(s));
        let minor = s.strip_prefix("v1.").ok_or_else(invalid)?;
        let well_formed = minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || (!minor.is_empty() && !minor.starts_with('0')));
        if !well_formed {
            return Err(invalid());
        }
        minor.parse().map(Version::V).map_err(|_| invalid())
    }
}

impl FromStr for LevelVersion {
    type Err = InvalidLevelVersion;

    /// `level:version`, or a bare level meaning `level:latest`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (level, version) = match s.split_once(':') {
            Some((level, version)) => (level.parse()?, version.parse()?),
            None => (s.parse()?, Version::Latest),
        };
        Ok(LevelVersion { level, version })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V(minor) => write!(f, "v1.{minor}"),
        }
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// One check the Pod fails, in upstream's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Upstream's check ID: `hostNamespaces`, `capabilities_restricted`, ….
    pub id: &'static str,
    /// `ForbiddenReason`: `host namespaces`.
    pub reason: String,
    /// `ForbiddenDetail`: `hostNetwork=true` (may be empty).
    pub detail: String,
}

/// The Pod has a field of the wrong type, so there is no telling how the kubelet would
/// read it; the API server would not have decoded it at all. Fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Pod Security checks need a well-formed v1 Pod: {}", .0.join("; "))]
pub struct InvalidPod(pub Vec<String>);

/// The checks `lv` applies that `pod` (a v1 Pod as JSON) fails, in upstream's order
/// (baseline check IDs sorted, then restricted ones). Empty means admitted.
pub fn evaluate(lv: &LevelVersion, pod: &Value) -> Result<Vec<CheckResult>, InvalidPod> {
    if lv.level == Level::Privileged {
        return Ok(Vec::new());
    }
    let problems = shape::problems(pod);
    if !problems.is_empty() {
        return Err(InvalidPod(problems));
    }
    let pod = view::Pod::new(pod);
    let minor = lv.version.effective_minor();

    // Each check's newest revision at this version; a check newer than it does not apply.
    let applicable = |check: &'static Check| {
        check
            .versions
            .iter()
            .rev()
            .find(|v| v.since <= minor)
            .map(|v| (check.id, v))
    };
    let baseline_checks = baseline::CHECKS.iter().filter_map(applicable);
    let restricted_checks: Vec<_> = match lv.level {
        Level::Restricted => restricted::CHECKS.iter().filter_map(applicable).collect(),
        _ => Vec::new(),
    };
    let overridden = |id: &str| {
        restricted_checks
            .iter()
            .any(|(_, v)| v.overrides.contains(&id))
    };

    let mut failures = Vec::new();
    for (id, versioned) in baseline_checks
        .filter(|(id, _)| !overridden(id))
        .chain(restricted_checks.iter().copied())
    {
        if let Some(Forbidden { reason, detail }) = (versioned.check)(&pod) {
            failures.push(CheckResult { id, reason, detail });
        }
    }
    Ok(failures)
}

/// Upstream's denial: `violates PodSecurity "restricted:latest": host namespaces
/// (hostNetwork=true), privileged (container "c" must not set securityContext.privileged=true)`.
pub fn message(lv: &LevelVersion, failures: &[CheckResult]) -> String {
    let details: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.detail)
            }
        })
        .collect();
    format!("violates PodSecurity \"{lv}\": {}", details.join(", "))
}

/// What a failing check says (`CheckResult` without `Allowed`).
struct Forbidden {
    reason: String,
    detail: String,
}

impl Forbidden {
    fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Self> {
        Some(Forbidden {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}

type CheckFn = fn(&view::Pod) -> Option<Forbidden>;

/// One check and its upstream revisions (`policy.Check`).
struct Check {
    id: &'static str,
    /// Oldest first; each applies from its `since` up to the next one's.
    versions: &'static [Versioned],
}

/// `policy.VersionedCheck`.
struct Versioned {
    /// `MinimumVersion`: the first policy minor (of 1.x) this revision applies to.
    since: u32,
    check: CheckFn,
    /// `OverrideCheckIDs`: baseline checks this (restricted) revision replaces.
    overrides: &'static [&'static str],
}

const fn since(since: u32, check: CheckFn) -> Versioned {
    Versioned {
        since,
        check,
        overrides: &[],
    }
}
