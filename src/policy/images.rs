//! `images:` — the built-in image rules (what kube-image-bouncer does), as one pure check
//! over a v1 Pod: every container's image is parsed and normalised once
//! ([`ImageRef`]), then judged on its normalised form, so `nginx`, `library/nginx` and
//! `index.docker.io/library/nginx:latest` are the same image to every rule.
//!
//! docs/policies.md ("Built-in image rules") is the user-facing description; keep it in
//! step with this file.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::reference::{ImageRef, DEFAULT_REGISTRY, DEFAULT_TAG};
use super::{glob, quote};
use crate::config::ImageRules;

/// The object handed to [`check`] is not something the rules can read; the caller should
/// fail closed rather than allow it unseen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the image rules need a v1 Pod: {0}")]
pub struct NotAPod(String);

/// Which rule a [`Violation`] breaks; serialised (and displayed) as its config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Rule {
    /// The image is not a valid reference (checked whenever any rule is on).
    #[serde(rename = "images.reference")]
    Reference,
    #[serde(rename = "images.disallowLatest")]
    DisallowLatest,
    #[serde(rename = "images.allowedRegistries")]
    AllowedRegistries,
    #[serde(rename = "images.requireDigest")]
    RequireDigest,
    #[serde(rename = "images.deny")]
    Deny,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Reference => "images.reference",
            Rule::DisallowLatest => "images.disallowLatest",
            Rule::AllowedRegistries => "images.allowedRegistries",
            Rule::RequireDigest => "images.requireDigest",
            Rule::Deny => "images.deny",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container of the Pod: `container "web" (spec.containers[0])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub name: String,
    /// `spec.containers`, `spec.initContainers` or `spec.ephemeralContainers`.
    pub field: &'static str,
    pub index: usize,
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {} ({}[{}])",
            quote(&self.name),
            self.field,
            self.index
        )
    }
}

/// One broken rule for one container, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub container: ContainerRef,
    /// The image as the Pod spells it (empty when the runtime did not say).
    pub image: String,
    /// A sentence naming the container and the image, and the fix when there is one.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

const CONTAINER_LISTS: [(&str, &str); 3] = [
    ("containers", "spec.containers"),
    ("initContainers", "spec.initContainers"),
    ("ephemeralContainers", "spec.ephemeralContainers"),
];

/// Judges the image of every container, init container and ephemeral container of a v1
/// Pod (JSON, as the converter or the API server produced it). `Ok(vec![])` allows.
///
/// Errs when `pod` is not a Pod (another kind, no `spec.containers` list): the rules
/// cannot see its images, and the caller should fail closed. When no rule is on, every
/// object is allowed without looking at it.
pub fn check(rules: &ImageRules, pod: &Value) -> Result<Vec<Violation>, NotAPod> {
    if !rules.is_active() {
        return Ok(Vec::new());
    }
    match pod.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "Pod" => {}
        Some(kind) => return Err(NotAPod(format!("the object is of kind {kind}"))),
    }
    let spec = pod
        .get("spec")
        .and_then(Value::as_object)
        .ok_or_else(|| NotAPod("the object has no spec".into()))?;
    if !spec.get("containers").is_some_and(Value::is_array) {
        return Err(NotAPod("spec.containers is missing or not a list".into()));
    }
    let mut out = Vec::new();
    for (key, field) in CONTAINER_LISTS {
        let list = match spec.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(_) => return Err(NotAPod(format!("{field} is not a list"))),
        };
        for (index, c) in list.iter().enumerate() {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let container = ContainerRef {
                name: name.to_owned(),
                field,
                index,
            };
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            check_image(rules, &container, image, &mut out);
        }
    }
    Ok(out)
}

/// All violations as one denial message, `; `-separated, in Pod order.
pub fn message(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_image(
    rules: &ImageRules,
    container: &ContainerRef,
    image: &str,
    out: &mut Vec<Violation>,
) {
    let mut push = |rule, message| {
        out.push(Violation {
            rule,
            container: container.clone(),
            image: image.to_owned(),
            message,
        })
    };

    if image.is_empty() {
        return unknown_image(rules, container, &mut push);
    }

    let r = match ImageRef::parse(image) {
        Ok(r) => r,
        Err(e) => {
            let problem = format!(
                "{container}: image {} is not a valid reference: {e}",
                quote(image)
            );
            return push(Rule::Reference, problem);
        }
    };
    known_image(rules, container, image, &r, &mut push);
}

/// The rules on an image the runtime did not report (an empty `image`).
fn unknown_image(
    rules: &ImageRules,
    container: &ContainerRef,
    push: &mut impl FnMut(Rule, String),
) {
    // A runtime request that did not name its image: no rule that needs to know the
    // image can be satisfied. `deny` only refuses what it recognises, so it passes.
    let unknown = format!("the image of {container} is unknown (the runtime did not report it)");
    if rules.disallow_latest {
        push(
            Rule::DisallowLatest,
            format!("{unknown}, so it cannot be shown to be pinned"),
        );
    }
    if !rules.allowed_registries.is_empty() {
        push(
            Rule::AllowedRegistries,
            format!("{unknown}, so its registry cannot be checked"),
        );
    }
    if rules.require_digest {
        push(
            Rule::RequireDigest,
            format!("{unknown}, so it cannot be shown to carry a digest"),
        );
    }
}

/// The rules on an image whose reference parsed, in rule order.
fn known_image(
    rules: &ImageRules,
    container: &ContainerRef,
    image: &str,
    r: &ImageRef,
    push: &mut impl FnMut(Rule, String),
) {
    // `"nginx" (docker.io/library/nginx:latest)`: what was written, and what it means.
    let full = r.to_string();
    let shown = if image == full {
        quote(image)
    } else {
        format!("{} ({full})", quote(image))
    };
    let short = r.familiar_name();

    if rules.disallow_latest && r.digest.is_none() && r.tag.as_deref() == Some(DEFAULT_TAG) {
        let problem = if r.tag_is_implied() {
            "has no tag, so it means :latest"
        } else {
            "uses the tag latest"
        };
        push(
            Rule::DisallowLatest,
            format!(
                "{container}: image {shown} {problem} (pin a version tag such as \
                 {short}:<version>, or a digest)"
            ),
        );
    }
    if !rules.allowed_registries.is_empty()
        && !rules
            .allowed_registries
            .iter()
            .any(|entry| registry_allows(entry, r))
    {
        push(
            Rule::AllowedRegistries,
            format!(
                "{container}: image {shown} comes from registry {}, which is not allowed \
                 (allowed registries are: {})",
                r.registry,
                rules.allowed_registries.join(", ")
            ),
        );
    }
    if rules.require_digest && r.digest.is_none() {
        push(
            Rule::RequireDigest,
            format!(
                "{container}: image {shown} is not pinned by digest (use {}@sha256:<digest>, \
                 with the digest the registry reports)",
                r.familiar()
            ),
        );
    }
    let candidates = if rules.deny.is_empty() {
        Vec::new()
    } else {
        deny_candidates(image, r)
    };
    if let Some(pattern) = rules
        .deny
        .iter()
        .find(|p| candidates.iter().any(|c| glob::matches(p, c)))
    {
        push(
            Rule::Deny,
            format!(
                "{container}: image {shown} matches the denied pattern {}",
                quote(pattern)
            ),
        );
    }
}

/// The strings `images.deny` patterns are matched against; a pattern denies the image
/// when it matches any of them as a whole. For `busybox:1.36@sha256:D`:
///
/// - the image as written: `busybox:1.36@sha256:D`;
/// - the normalised name bare, with tag, with digest, with both:
///   `docker.io/library/busybox`, `docker.io/library/busybox:1.36`,
///   `docker.io/library/busybox@sha256:D`, `docker.io/library/busybox:1.36@sha256:D`;
/// - the same four with the familiar name (`busybox`, `busybox:1.36`, …).
///
/// The tag is the normalised one, so `nginx` is also seen as `nginx:latest`.
pub fn deny_candidates(image: &str, r: &ImageRef) -> Vec<String> {
    let mut out = vec![image.to_owned()];
    for name in [r.name(), r.familiar_name()] {
        if let Some(tag) = &r.tag {
            out.push(format!("{name}:{tag}"));
        }
        if let Some(digest) = &r.digest {
            out.push(format!("{name}@{digest}"));
            if let Some(tag) = &r.tag {
                out.push(format!("{name}:{tag}@{digest}"));
            }
        }
        out.push(name);
    }
    out
}

/// `entry` is `host[:port]` (the registry must equal it) or `host[:port]/prefix` (the
/// repository must also be `prefix` or start with `prefix/`). Hosts compare ASCII
/// case-insensitively, as DNS does; `index.docker.io` is `docker.io`.
fn registry_allows(entry: &str, r: &ImageRef) -> bool {
    let (host, prefix) = match entry.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix.trim_end_matches('/'))),
        None => (entry, None),
    };
    let host = if host.eq_ignore_ascii_case("index.docker.io") {
        DEFAULT_REGISTRY
    } else {
        host
    };
    if !host.eq_ignore_ascii_case(&r.registry) {
        return false;
    }
    match prefix {
        None | Some("") => true,
        Some(prefix) => {
            r.repository == prefix
                || r.repository
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

mod admission;
pub use admission::register;

#[cfg(test)]
mod tests;
