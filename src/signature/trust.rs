//! The trust policy: `ImageVerificationPolicy` documents of `policyDir`, parsed strictly
//! and checked at load (globs valid, keys readable and of a supported type), then matched
//! against images and namespaces without I/O (docs/image-verification.md).
//!
//! ```yaml
//! apiVersion: portcullis.dev/v1alpha1
//! kind: ImageVerificationPolicy
//! metadata: {name: signed-prod}
//! spec:
//!   images: [{glob: "registry.example/prod/**"}]
//!   namespaceSelector: {matchLabels: {tier: prod}}
//!   mode: enforce                # enforce | warn | audit
//!   failurePolicy: Fail          # Fail | Ignore
//!   allow: [{glob: "registry.example/base@sha256:*"}, {digest: "sha256:…"}]
//!   authorities:
//!   - name: release-key
//!     key: {data: "-----BEGIN PUBLIC KEY-----…"}   # or {file: key.pub}
//!     rekor: {key: {file: rekor.pub}}              # optional
//!   - name: notary                                 # a Notation authority
//!     notation:
//!       trustStore: {certificates: {file: ca.pem}} # or {data: PEM}
//!       trustedIdentities: ["x509.subject: C=US, O=Example, CN=signer"]  # or ["*"]
//!       signatureVerification: {level: strict}     # strict | permissive | audit | skip
//! ```
//!
//! The spec is closed (`deny_unknown_fields`): a misspelt key is an error with file and
//! line. `metadata` is open, as the API server's is. Key files are read when the policies
//! load, relative to the policy file's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::config::policy_dir::{LoadError, LoadIssue};

use super::cosign::KeyAuthority;
use super::glob::{Glob, InvalidGlob};
use super::key::PublicKey;
use super::notation::NotationAuthority;
use crate::config::policy_dir::{
    is_portcullis_kind, yaml_documents, IMAGE_VERIFICATION_POLICY_KIND, PORTCULLIS_API_GROUP,
    SIGSTORE_POLICY_API_GROUP,
};
use crate::config::webhook::{FailurePolicy, LabelSelector};
use crate::config::Mode;
use crate::policy::quote;

pub const API_VERSION: &str = "portcullis.dev/v1alpha1";

/// One `ImageVerificationPolicy`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    pub name: String,
    /// The file it was read from, for messages.
    pub file: PathBuf,
    pub images: Vec<Glob>,
    pub namespace_selector: Option<LabelSelector>,
    pub mode: Mode,
    pub failure_policy: FailurePolicy,
    pub allow: Vec<Allow>,
    pub authorities: Vec<Authority>,
}

/// An `allow` entry: images that pass this policy without a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    Glob(Glob),
    Digest(String),
}

/// A named authority: a cosign key, or a Notation trust store and identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub name: String,
    pub kind: AuthorityKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityKind {
    Key(KeyAuthority),
    Notation(NotationAuthority),
}

impl Authority {
    /// The cosign key, for a key authority.
    pub fn key(&self) -> Option<&KeyAuthority> {
        match &self.kind {
            AuthorityKind::Key(k) => Some(k),
            AuthorityKind::Notation(_) => None,
        }
    }

    /// The Notation trust store and identities, for a notation authority.
    pub fn notation(&self) -> Option<&NotationAuthority> {
        match &self.kind {
            AuthorityKind::Notation(n) => Some(n),
            AuthorityKind::Key(_) => None,
        }
    }
}

impl TrustPolicy {
    /// Whether the policy applies to an image of these names (see `glob::names`) in a
    /// namespace of these labels. An absent or empty selector selects every namespace.
    pub fn applies(&self, names: &[String], namespace_labels: &BTreeMap<String, String>) -> bool {
        self.images.iter().any(|g| g.matches_any(names))
            && self
                .namespace_selector
                .as_ref()
                .is_none_or(|s| s.matches(namespace_labels))
    }

    /// The `allow` entry that lets the image through, if any.
    pub fn allowed_by(&self, names: &[String], digest: Option<&str>) -> Option<&Allow> {
        self.allow.iter().find(|a| match a {
            Allow::Glob(g) => g.matches_any(names),
            Allow::Digest(d) => Some(d.as_str()) == digest,
        })
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allow::Glob(g) => write!(f, "glob {}", quote(&g.written)),
            Allow::Digest(d) => write!(f, "digest {d}"),
        }
    }
}

// ------------------------------------------------------------------------ the format

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // apiVersion and kind are read through `Header`.
struct RawPolicy {
    api_version: String,
    kind: String,
    metadata: RawMetadata,
    spec: RawSpec,
    #[serde(default)]
    status: Option<IgnoredAny>,
}

/// The part of `metav1.ObjectMeta` we read; other keys are accepted and ignored.
#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    images: Vec<RawImage>,
    #[serde(default)]
    namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    failure_policy: FailurePolicy,
    #[serde(default)]
    allow: Vec<RawAllow>,
    #[serde(default)]
    authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    glob: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    glob: Option<Spanned<String>>,
    #[serde(default)]
    digest: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    name: Spanned<String>,
    #[serde(default)]
    key: Option<RawKey>,
    #[serde(default)]
    rekor: Option<RawRekor>,
    /// Notation trust store, identities and level.
    #[serde(default)]
    notation: Option<Spanned<RawNotation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNotation {
    trust_store: RawTrustStore,
    trusted_identities: Vec<String>,
    #[serde(default)]
    signature_verification: Option<RawVerification>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustStore {
    certificates: RawKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerification {
    level: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    data: Option<Spanned<String>>,
    #[serde(default)]
    file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRekor {
    key: RawKey,
}

// ------------------------------------------------------------------------ loading

/// Reads the trust policies among `policyDir`'s documents (`(file, text)`, several
/// documents a file). `read` reads key files (`std::fs::read` in the program, a fake in
/// tests): loading does no other I/O. Other documents are left to their readers; any
/// document of the `portcullis.dev` group or of kind `ImageVerificationPolicy` is ours,
/// and an error if it is not a valid `portcullis.dev/v1alpha1` `ImageVerificationPolicy`.
pub fn load(
    docs: &[(PathBuf, String)],
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<TrustPolicy>, LoadError> {
    let mut loader = Loader {
        file: PathBuf::new(),
        issues: Vec::new(),
        read,
    };
    let mut policies: Vec<TrustPolicy> = Vec::new();
    for (file, text) in docs {
        loader.file = file.clone();
        for doc in yaml_documents(text) {
            let Some(policy) = loader.document(&doc) else {
                continue;
            };
            if policies.iter().any(|p| p.name == policy.name) {
                let m = format!(
                    "{IMAGE_VERIFICATION_POLICY_KIND} {} is defined twice",
                    quote(&policy.name)
                );
                loader.issue(None, m);
            } else {
                policies.push(policy);
            }
        }
    }
    if loader.issues.is_empty() {
        Ok(policies)
    } else {
        Err(LoadError {
            issues: loader.issues,
        })
    }
}

struct Loader<'a> {
    file: PathBuf,
    issues: Vec<LoadIssue>,
    read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
}

impl Loader<'_> {
    fn issue(&mut self, line: Option<u64>, message: String) {
        self.issues.push(LoadIssue {
            file: self.file.clone(),
            line: line.filter(|&l| l > 0),
            message,
        });
    }

    /// One YAML document: a trust policy, or `None` (not ours, or not valid: an issue).
    fn document(&mut self, doc: &str) -> Option<TrustPolicy> {
        // Documents that do not parse at all are the other readers' to report.
        let header: Header = serde_saphyr::from_str::<Option<Header>>(doc).ok()??;
        if !is_portcullis_kind(&header.api_version, &header.kind) {
            return None;
        }
        if header.api_version.split('/').next() == Some(SIGSTORE_POLICY_API_GROUP) {
            let m = format!(
                "{} of apiVersion {} is sigstore policy-controller's, which Portcullis does not \
                 read; write it as an {IMAGE_VERIFICATION_POLICY_KIND} of {API_VERSION} \
                 (same images globs and key authorities; docs/image-verification.md)",
                quote(&header.kind),
                quote(&header.api_version)
            );
            self.issue(None, m);
            return None;
        }
        if header.kind != IMAGE_VERIFICATION_POLICY_KIND {
            let m = format!(
                "kind {} of apiVersion {}: {PORTCULLIS_API_GROUP} has one kind, \
                 {IMAGE_VERIFICATION_POLICY_KIND}",
                quote(&header.kind),
                quote(&header.api_version)
            );
            self.issue(None, m);
            return None;
        }
        if header.api_version != API_VERSION {
            let m = format!(
                "{IMAGE_VERIFICATION_POLICY_KIND}: apiVersion {} is not supported; use {API_VERSION}",
                quote(&header.api_version)
            );
            self.issue(None, m);
            return None;
        }
        match serde_saphyr::from_str::<RawPolicy>(doc) {
            Ok(raw) => self.policy(raw),
            Err(e) => {
                self.issue(None, format!("{IMAGE_VERIFICATION_POLICY_KIND}: {e}"));
                None
            }
        }
    }

    /// Checks a parsed policy; every problem is an issue, the policy `None` if any.
    fn policy(&mut self, raw: RawPolicy) -> Option<TrustPolicy> {
        let before = self.issues.len();
        let name = raw.metadata.name;
        let what = format!("{IMAGE_VERIFICATION_POLICY_KIND} {}", quote(&name));
        if name.is_empty() {
            self.issue(None, format!("{what}: metadata.name must be set"));
        }
        let spec = raw.spec;
        if spec.images.is_empty() {
            let m = format!(
                "{what}: spec.images is empty, so the policy would match no image; \
                 to require signatures on every image, use [{{glob: \"**\"}}]"
            );
            self.issue(None, m);
        }
        let images = (spec.images.iter().enumerate())
            .filter_map(|(i, img)| self.glob(&what, &format!("spec.images[{i}].glob"), &img.glob))
            .collect();
        if let Some(Err(e)) = spec
            .namespace_selector
            .as_ref()
            .map(LabelSelector::validate)
        {
            let m = format!("{what}: spec.namespaceSelector.{}: {}", e.field, e.message);
            self.issue(None, m);
        }
        let allow = self.allow(&what, &spec.allow);
        let authorities = self.authorities(&what, &spec.authorities);
        if spec.authorities.is_empty() && spec.allow.is_empty() {
            let m = format!(
                "{what}: spec.authorities is empty and nothing is allowed, so every matched \
                 image would be refused; name at least one authority (or allow digests)"
            );
            self.issue(None, m);
        }
        (self.issues.len() == before).then(|| TrustPolicy {
            name,
            file: self.file.clone(),
            images,
            namespace_selector: spec.namespace_selector,
            mode: spec.mode,
            failure_policy: spec.failure_policy,
            allow,
            authorities,
        })
    }

    fn glob(&mut self, what: &str, field: &str, glob: &Spanned<String>) -> Option<Glob> {
        match Glob::parse(&glob.value) {
            Ok(g) => Some(g),
            Err(InvalidGlob(e)) => {
                self.issue(
                    Some(glob.referenced.line()),
                    format!("{what}: {field}: {e}"),
                );
                None
            }
        }
    }

    fn allow(&mut self, what: &str, raw: &[RawAllow]) -> Vec<Allow> {
        let mut allow = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let field = format!("spec.allow[{i}]");
            match (&entry.glob, &entry.digest) {
                (Some(glob), None) => {
                    let glob = self.glob(what, &format!("{field}.glob"), glob);
                    allow.extend(glob.map(Allow::Glob));
                }
                (None, Some(digest)) if is_sha256_digest(&digest.value) => {
                    allow.push(Allow::Digest(digest.value.clone()));
                }
                (None, Some(digest)) => {
                    let m = format!(
                        "{what}: {field}.digest: {} is not sha256:<64 lowercase hex digits>",
                        quote(&digest.value)
                    );
                    self.issue(Some(digest.referenced.line()), m);
                }
                _ => self.issue(
                    None,
                    format!("{what}: {field}: set exactly one of glob and digest"),
                ),
            }
        }
        allow
    }

    fn authorities(&mut self, what: &str, raw: &[RawAuthority]) -> Vec<Authority> {
        let mut names = BTreeSet::new();
        let mut authorities = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            let field = format!("spec.authorities[{i}]");
            let line = Some(a.name.referenced.line());
            if a.name.value.is_empty() || !names.insert(a.name.value.clone()) {
                let m = format!(
                    "{what}: {field}.name: {} is empty or not unique",
                    quote(&a.name.value)
                );
                self.issue(line, m);
            }
            let what = format!("{what}: {field} ({})", a.name.value);
            let key = match (&a.key, &a.notation, &a.rekor) {
                (None, Some(notation), None) => {
                    let kind = self.notation(&what, notation);
                    authorities.extend(kind.map(|n| Authority {
                        name: a.name.value.clone(),
                        kind: AuthorityKind::Notation(n),
                    }));
                    continue;
                }
                (Some(key), None, _) => key,
                (None, None, _) => {
                    let m = format!(
                        "{what}: needs a key ({{data: PEM}} or {{file: PATH}}) or a notation \
                         trust store"
                    );
                    self.issue(line, m);
                    continue;
                }
                _ => {
                    let m = format!(
                        "{what}: set exactly one of key (with its optional rekor) and notation"
                    );
                    self.issue(line, m);
                    continue;
                }
            };
            let key = self.key(&what, "key", key);
            let rekor = match &a.rekor {
                Some(r) => self.key(&what, "rekor.key", &r.key).map(Some),
                None => Some(None),
            };
            if let (Some(key), Some(rekor)) = (key, rekor) {
                authorities.push(Authority {
                    name: a.name.value.clone(),
                    kind: AuthorityKind::Key(KeyAuthority { key, rekor }),
                });
            }
        }
        authorities
    }

    /// A `notation:` authority: its trust store read and its identities parsed.
    fn notation(&mut self, what: &str, raw: &Spanned<RawNotation>) -> Option<NotationAuthority> {
        let line = raw.referenced.line();
        let raw = &raw.value;
        let field = "notation.trustStore.certificates";
        let (pem, _, _) = self.source(what, field, &raw.trust_store.certificates)?;
        let level = raw
            .signature_verification
            .as_ref()
            .map_or("strict", |v| v.level.as_str());
        match NotationAuthority::new(&pem, &raw.trusted_identities, level) {
            Ok(n) => Some(n),
            Err((field, e)) => {
                self.issue(Some(line), format!("{what}: notation.{field}: {e}"));
                None
            }
        }
    }

    /// The bytes of a `{data}` or `{file}` source, its line and which it was.
    fn source(
        &mut self,
        what: &str,
        field: &str,
        raw: &RawKey,
    ) -> Option<(Vec<u8>, u64, &'static str)> {
        Some(match (&raw.data, &raw.file) {
            (Some(data), None) => (
                data.value.as_bytes().to_vec(),
                data.referenced.line(),
                "data",
            ),
            (None, Some(file)) => {
                let path = self
                    .file
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&file.value);
                match (self.read)(&path) {
                    Ok(pem) => (pem, file.referenced.line(), "file"),
                    Err(e) => {
                        let m = format!("{what}: {field}.file: {}: {e}", path.display());
                        self.issue(Some(file.referenced.line()), m);
                        return None;
                    }
                }
            }
            _ => {
                self.issue(
                    None,
                    format!("{what}: {field}: set exactly one of data and file"),
                );
                return None;
            }
        })
    }

    /// A `{data}` or `{file}` key, read and checked.
    fn key(&mut self, what: &str, field: &str, raw: &RawKey) -> Option<PublicKey> {
        let (pem, line, source) = self.source(what, field, raw)?;
        match PublicKey::from_pem(&pem) {
            Ok(key) => Some(key),
            Err(e) => {
                let m =
                    format!("{what}: {field}.{source}: {e}; give the PEM public key (cosign.pub)");
                self.issue(Some(line), m);
                None
            }
        }
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests;
