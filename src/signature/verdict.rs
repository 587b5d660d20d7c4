//! The judgement, without I/O: given the policies that apply to an image and what the
//! registry said (its digest, its signatures, or why it could not say), what is decided
//! and why (docs/image-verification.md, "Decisions").
//!
//! Every applicable policy must be satisfied (policies AND), each by its allow list or
//! by a valid signature of any one of its authorities (authorities OR), as in
//! policy-controller. A policy that is not satisfied refuses in `enforce` mode, warns in
//! `warn` mode and is only reported in `audit` mode. When the registry could not be read,
//! `failurePolicy: Fail` counts the policy as not satisfied and `Ignore` as satisfied,
//! both with the reason in the report.

use std::fmt;

use super::cosign::{check_layer, Fetched, Signatures, Verified, NOT_BY_KEY};
use super::trust::{Authority, TrustPolicy};
use crate::config::webhook::FailurePolicy;
use crate::config::Mode;
use crate::policy::quote;

/// At most this many layers are described one by one in a reason.
const LAYERS_DESCRIBED: usize = 4;

/// What the verifier decided about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The image as judged: `registry/repository[:tag][@digest]`.
    pub image: String,
    /// The digest verified (given, or resolved from the tag); `None` when it could not be
    /// resolved.
    pub digest: Option<String>,
    pub decision: Decision,
    /// One line for logs and for `verify-image`'s stdout: what was decided and by whom,
    /// or that no policy applies.
    pub summary: String,
    /// What each applicable policy found, in policy order.
    pub reports: Vec<Report>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Allowed, with this warning (a `warn` policy not satisfied).
    Warn(String),
    /// Refused for this reason (an `enforce` policy not satisfied).
    Refused(String),
}

/// What one policy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub policy: String,
    /// The policy's mode as applied (the config's `mode:` overrides it).
    pub mode: Mode,
    pub outcome: Outcome,
    /// The authority whose signature satisfied the policy.
    pub authority: Option<String>,
    /// `sha256:<hex>` of the authority's public key (SubjectPublicKeyInfo).
    pub key_id: Option<String>,
    /// The digest of the signature layer that verified.
    pub signature: Option<String>,
    /// The Rekor log index of that signature, when the authority required a bundle.
    pub rekor_log_index: Option<i64>,
    /// In words: what satisfied the policy, or why nothing did.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A signature of one of the authorities verified.
    Verified,
    /// An `allow` entry matched.
    AllowListed,
    /// No valid signature.
    NotVerified,
    /// The registry could not be read; `ignored` under `failurePolicy: Ignore`.
    Unverifiable { ignored: bool },
}

impl Outcome {
    /// Whether the policy is satisfied.
    pub fn passes(self) -> bool {
        matches!(
            self,
            Outcome::Verified | Outcome::AllowListed | Outcome::Unverifiable { ignored: true }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Verified => "verified",
            Outcome::AllowListed => "allow-listed",
            Outcome::NotVerified => "not verified",
            Outcome::Unverifiable { ignored: true } => "unverifiable, ignored",
            Outcome::Unverifiable { ignored: false } => "unverifiable",
        })
    }
}

/// What the registry told us, or did not.
pub struct Subject<'a> {
    /// `registry/repository[:tag][@digest]`.
    pub image: &'a str,
    /// The names globs are matched against (`glob::names`).
    pub names: &'a [String],
    /// The digest, or why it could not be resolved.
    pub digest: Result<&'a str, &'a str>,
    /// The signatures; `None` when none was needed (every policy allow-lists the image).
    pub signatures: Option<Result<&'a Signatures, &'a str>>,
}

/// The verdict of `policies` (those that apply) on `subject`; `mode_override` is the
/// config's global `mode:`.
pub fn judge(policies: &[&TrustPolicy], subject: &Subject, mode_override: Option<Mode>) -> Verdict {
    let digest = subject.digest.ok().map(str::to_string);
    if policies.is_empty() {
        return Verdict {
            image: subject.image.to_string(),
            digest,
            decision: Decision::Allowed,
            summary: format!("no ImageVerificationPolicy applies to {}", subject.image),
            reports: Vec::new(),
        };
    }
    let reports: Vec<Report> = policies
        .iter()
        .map(|p| {
            let mut report = judge_policy(p, subject);
            report.mode = mode_override.unwrap_or(p.mode);
            report
        })
        .collect();
    let failures = |mode: Mode| -> Vec<String> {
        reports
            .iter()
            .filter(|r| r.mode == mode && !r.outcome.passes())
            .map(|r| r.detail.clone())
            .collect()
    };
    let (refusals, warnings) = (failures(Mode::Enforce), failures(Mode::Warn));
    let decision = if !refusals.is_empty() {
        Decision::Refused(refusals.join("; "))
    } else if !warnings.is_empty() {
        Decision::Warn(warnings.join("; "))
    } else {
        Decision::Allowed
    };
    let summary = reports
        .iter()
        .map(|r| format!("{} ({}): {}", r.outcome, r.mode_name(), r.detail))
        .collect::<Vec<_>>()
        .join("; ");
    Verdict {
        image: subject.image.to_string(),
        digest,
        decision,
        summary,
        reports,
    }
}

impl Report {
    fn new(policy: &TrustPolicy, outcome: Outcome, detail: String) -> Report {
        Report {
            policy: policy.name.clone(),
            mode: policy.mode,
            outcome,
            authority: None,
            key_id: None,
            signature: None,
            rekor_log_index: None,
            detail,
        }
    }

    fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

fn judge_policy(policy: &TrustPolicy, subject: &Subject) -> Report {
    let what = format!("ImageVerificationPolicy {}", quote(&policy.name));
    if let Some(allow) = policy.allowed_by(subject.names, subject.digest.ok()) {
        let detail = format!("{what}: {} is allowed by {allow}", subject.image);
        return Report::new(policy, Outcome::AllowListed, detail);
    }
    if policy.authorities.is_empty() {
        let detail = format!(
            "{what}: {} is not in the policy's allow list, and the policy names no authority",
            subject.image
        );
        return Report::new(policy, Outcome::NotVerified, detail);
    }
    let fetched = match (subject.digest, subject.signatures) {
        (Err(why), _) | (Ok(_), Some(Err(why))) => Err(why.to_string()),
        (Ok(_), None) => Err("its signatures were not fetched".to_string()),
        (Ok(digest), Some(Ok(signatures))) => {
            judge_signatures(policy, &what, subject, digest, signatures)
        }
    };
    fetched.unwrap_or_else(|why| {
        let ignored = policy.failure_policy == FailurePolicy::Ignore;
        let failure_policy = if ignored { "Ignore" } else { "Fail" };
        let detail = format!(
            "{what}: cannot verify {} (failurePolicy {failure_policy}): {why}",
            subject.image
        );
        Report::new(policy, Outcome::Unverifiable { ignored }, detail)
    })
}

/// The report of a policy on the signatures found; `Err` is why they could not be read.
fn judge_signatures(
    policy: &TrustPolicy,
    what: &str,
    subject: &Subject,
    digest: &str,
    signatures: &Signatures,
) -> Result<Report, String> {
    let Some(layers) = &signatures.layers else {
        let detail = format!(
            "{what}: {} is not signed: {} does not exist",
            subject.image, signatures.tag
        );
        return Ok(Report::new(policy, Outcome::NotVerified, detail));
    };
    let mut failures = Vec::new();
    for authority in &policy.authorities {
        match by_authority(authority, layers, digest) {
            Ok(v) => {
                let detail = format!(
                    "{what}: {} is signed by authority {} (key {}, signature {})",
                    subject.image,
                    quote(&authority.name),
                    v.key_id,
                    v.layer
                );
                return Ok(Report {
                    authority: Some(authority.name.clone()),
                    key_id: Some(v.key_id),
                    signature: Some(v.layer),
                    rekor_log_index: v.rekor.map(|r| r.log_index),
                    ..Report::new(policy, Outcome::Verified, detail)
                });
            }
            Err(why) => failures.push((authority.name.as_str(), why)),
        }
    }
    let unreadable: Vec<&str> = layers
        .iter()
        .filter_map(|f| f.content.as_ref().err().map(String::as_str))
        .collect();
    if let Some(first) = unreadable.first() {
        return Err(format!(
            "{} of the {} signatures of {} could not be read (no other verifies): {first}",
            unreadable.len(),
            layers.len(),
            signatures.tag
        ));
    }
    let detail = match failures.as_slice() {
        [(authority, why)] => format!(
            "{what}: {} has no signature by authority {}: {} {why}",
            subject.image,
            quote(authority),
            signatures.tag
        ),
        _ => {
            let each: Vec<String> = failures
                .iter()
                .map(|(a, why)| format!("{}: {why}", quote(a)))
                .collect();
            format!(
                "{what}: {} has no signature by any of its authorities in {}: {}",
                subject.image,
                signatures.tag,
                each.join("; ")
            )
        }
    };
    Ok(Report::new(policy, Outcome::NotVerified, detail))
}

/// The first layer that is a valid signature by `authority`, or why none is, as the end
/// of a sentence starting with the tag ("has 2 signatures, none verifies with the key").
fn by_authority(
    authority: &Authority,
    layers: &[Fetched],
    digest: &str,
) -> Result<Verified, String> {
    let mut reasons = Vec::new();
    for fetched in layers {
        let Ok(content) = &fetched.content else {
            continue;
        };
        match check_layer(&fetched.layer, content, digest, &authority.key) {
            Ok(v) => return Ok(v),
            Err(why) => reasons.push((fetched.layer.digest.as_str(), why)),
        }
    }
    let count = match layers.len() {
        0 => return Err("has no signatures".into()),
        1 => "has 1 signature".to_string(),
        n => format!("has {n} signatures"),
    };
    if reasons.iter().all(|(_, why)| why == NOT_BY_KEY) {
        return Err(match layers.len() {
            1 => format!("{count}, it does not verify with the key"),
            _ => format!("{count}, none verifies with the key"),
        });
    }
    let described: Vec<String> = reasons
        .iter()
        .take(LAYERS_DESCRIBED)
        .map(|(layer, why)| format!("{layer} {why}"))
        .collect();
    let more = match reasons.len().saturating_sub(LAYERS_DESCRIBED) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    Err(format!(
        "{count}, none valid: {}{more}",
        described.join("; ")
    ))
}

#[cfg(test)]
mod tests;
