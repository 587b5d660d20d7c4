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
//!
//! A policy whose authorities are all cosign keys is judged on the image's `.sig` tag
//! alone; one with a `notation` authority judges each authority on its own signatures
//! (cosign layers or Notation referrers), and only what could not be read, when nothing
//! verified, makes it unverifiable.

use std::fmt;

use super::cosign::{check_layer, Fetched, Signatures, Verified, NOT_BY_KEY};
use super::notation::{self, Level, NotationAuthority, NotationSignatures, NotationVerified};
use super::trust::{Authority, AuthorityKind, TrustPolicy};
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
    /// The signer's identity: the leaf certificate's subject of a Notation signature.
    pub signer: Option<String>,
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
    /// The cosign signatures; `None` when none was needed (no applicable policy that
    /// does not allow-list the image has a key authority).
    pub signatures: Option<Result<&'a Signatures, &'a str>>,
    /// The Notation signatures; `None` when none was needed (no such policy has a
    /// `notation` authority).
    pub notation: Option<Result<&'a NotationSignatures, &'a str>>,
    /// Now, in Unix seconds: when certificates and Notation signatures must be valid.
    pub now: i64,
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
            signer: None,
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
    if policy.authorities.iter().any(|a| a.notation().is_some()) {
        return judge_each_authority(policy, &what, subject);
    }
    let fetched = match (subject.digest, subject.signatures) {
        (Err(why), _) | (Ok(_), Some(Err(why))) => Err(why.to_string()),
        (Ok(_), None) => Err("its signatures were not fetched".to_string()),
        (Ok(digest), Some(Ok(signatures))) => {
            judge_signatures(policy, &what, subject, digest, signatures)
        }
    };
    fetched.unwrap_or_else(|why| unverifiable(policy, &what, subject, &why))
}

/// The report of a policy whose registry reads failed with `why`, as its failurePolicy says.
fn unverifiable(policy: &TrustPolicy, what: &str, subject: &Subject, why: &str) -> Report {
    let ignored = policy.failure_policy == FailurePolicy::Ignore;
    let failure_policy = if ignored { "Ignore" } else { "Fail" };
    let detail = format!(
        "{what}: cannot verify {} (failurePolicy {failure_policy}): {why}",
        subject.image
    );
    Report::new(policy, Outcome::Unverifiable { ignored }, detail)
}

/// The report of a cosign layer `v` of `authority` that verified.
fn key_report(
    policy: &TrustPolicy,
    what: &str,
    image: &str,
    authority: &Authority,
    v: Verified,
) -> Report {
    let detail = format!(
        "{what}: {image} is signed by authority {} (key {}, signature {})",
        quote(&authority.name),
        v.key_id,
        v.layer
    );
    Report {
        authority: Some(authority.name.clone()),
        key_id: Some(v.key_id),
        signature: Some(v.layer),
        rekor_log_index: v.rekor.map(|r| r.log_index),
        ..Report::new(policy, Outcome::Verified, detail)
    }
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
        let Some(key) = authority.key() else {
            continue;
        };
        match by_authority(key, layers, digest) {
            Ok(v) => return Ok(key_report(policy, what, subject.image, authority, v)),
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
    authority: &super::cosign::KeyAuthority,
    layers: &[Fetched],
    digest: &str,
) -> Result<Verified, String> {
    let mut reasons = Vec::new();
    for fetched in layers {
        let Ok(content) = &fetched.content else {
            continue;
        };
        match check_layer(&fetched.layer, content, digest, authority) {
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

/// Why an authority was not satisfied.
enum Failure {
    /// Its signatures could not be read (failurePolicy decides, when nothing verified).
    Unreadable(String),
    /// In words, after "has no signature by authority X: ".
    NotVerified(String),
}

/// A policy with a `notation` authority: each authority judged on its own signatures.
fn judge_each_authority(policy: &TrustPolicy, what: &str, subject: &Subject) -> Report {
    let digest = match subject.digest {
        Ok(d) => d,
        Err(why) => return unverifiable(policy, what, subject, why),
    };
    let mut failures = Vec::new();
    for authority in &policy.authorities {
        let failure = match &authority.kind {
            AuthorityKind::Key(key) => match by_key(key, subject.signatures, digest) {
                Ok(v) => return key_report(policy, what, subject.image, authority, v),
                Err(f) => f,
            },
            AuthorityKind::Notation(n) if n.level == Level::Skip => {
                let detail = format!(
                    "{what}: {} is accepted by authority {} without verification \
                     (notation signatureVerification level skip)",
                    subject.image,
                    quote(&authority.name)
                );
                return Report {
                    authority: Some(authority.name.clone()),
                    ..Report::new(policy, Outcome::Verified, detail)
                };
            }
            AuthorityKind::Notation(n) => match by_notation(n, subject, digest) {
                Ok(v) => return notation_report(policy, what, subject.image, authority, v),
                Err(f) => f,
            },
        };
        failures.push((authority.name.as_str(), failure));
    }
    let unreadable = failures.iter().find_map(|(_, f)| match f {
        Failure::Unreadable(why) => Some(why.as_str()),
        Failure::NotVerified(_) => None,
    });
    if let Some(why) = unreadable {
        return unverifiable(policy, what, subject, why);
    }
    let each: Vec<String> = failures
        .iter()
        .map(|(a, f)| match f {
            Failure::NotVerified(why) | Failure::Unreadable(why) => format!("{}: {why}", quote(a)),
        })
        .collect();
    let detail = match each.as_slice() {
        [one] => format!(
            "{what}: {} has no signature by authority {one}",
            subject.image
        ),
        _ => format!(
            "{what}: {} has no signature by any of its authorities: {}",
            subject.image,
            each.join("; ")
        ),
    };
    Report::new(policy, Outcome::NotVerified, detail)
}

/// A cosign key authority in a policy judged authority by authority.
fn by_key(
    key: &super::cosign::KeyAuthority,
    signatures: Option<Result<&Signatures, &str>>,
    digest: &str,
) -> Result<Verified, Failure> {
    let signatures = match signatures {
        None => {
            return Err(Failure::Unreadable(
                "its cosign signatures were not fetched".into(),
            ))
        }
        Some(Err(why)) => return Err(Failure::Unreadable(why.to_string())),
        Some(Ok(s)) => s,
    };
    let Some(layers) = &signatures.layers else {
        return Err(Failure::NotVerified(format!(
            "{} does not exist",
            signatures.tag
        )));
    };
    by_authority(key, layers, digest).map_err(|why| {
        match layers.iter().find_map(|f| f.content.as_ref().err()) {
            Some(e) => Failure::Unreadable(format!(
                "a signature of {} could not be read: {e}",
                signatures.tag
            )),
            None => Failure::NotVerified(format!("{} {why}", signatures.tag)),
        }
    })
}

/// The first Notation signature valid under `authority`, or why none is.
fn by_notation(
    authority: &NotationAuthority,
    subject: &Subject,
    digest: &str,
) -> Result<NotationVerified, Failure> {
    let found = match subject.notation {
        None => {
            return Err(Failure::Unreadable(
                "its Notation signatures were not fetched".into(),
            ))
        }
        Some(Err(why)) => return Err(Failure::Unreadable(why.to_string())),
        Some(Ok(s)) => s,
    };
    let mut reasons = Vec::new();
    let mut unreadable = Vec::new();
    for f in &found.signatures {
        match &f.content {
            Err(e) => unreadable.push(e.as_str()),
            Ok((manifest, bytes)) => {
                match notation::check(&f.digest, manifest, bytes, digest, authority, subject.now) {
                    Ok(v) => return Ok(v),
                    Err(why) => reasons.push(format!("{} {why}", f.digest)),
                }
            }
        }
    }
    let count = match found.signatures.len() {
        0 => {
            return Err(Failure::NotVerified(format!(
                "{} has no Notation signature",
                found.source
            )))
        }
        1 => "1 Notation signature".to_string(),
        n => format!("{n} Notation signatures"),
    };
    if let Some(first) = unreadable.first() {
        return Err(Failure::Unreadable(format!(
            "{} of the {count} of {} could not be read (no other verifies): {first}",
            unreadable.len(),
            found.source
        )));
    }
    let more = match reasons.len().saturating_sub(LAYERS_DESCRIBED) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    reasons.truncate(LAYERS_DESCRIBED);
    Err(Failure::NotVerified(format!(
        "{} has {count}, none valid: {}{more}",
        found.source,
        reasons.join("; ")
    )))
}

fn notation_report(
    policy: &TrustPolicy,
    what: &str,
    image: &str,
    authority: &Authority,
    v: NotationVerified,
) -> Report {
    let logged = match v.logged.as_slice() {
        [] => String::new(),
        logged => format!(
            "; logged, not enforced at this level: {}",
            logged.join("; ")
        ),
    };
    let detail = format!(
        "{what}: {image} is signed by authority {} (Notation, signer {}, signature {}){logged}",
        quote(&authority.name),
        quote(&v.signer),
        v.signature
    );
    Report {
        authority: Some(authority.name.clone()),
        signature: Some(v.signature),
        signer: Some(v.signer),
        ..Report::new(policy, Outcome::Verified, detail)
    }
}

#[cfg(test)]
mod tests;
