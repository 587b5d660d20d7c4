//! The verifier the doors call: the trust policies loaded once, a registry client, and
//! `verify`, which fetches only what the applicable policies need and leaves the
//! judgement to [`verdict::judge`](super::verdict::judge).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cosign::Signatures;
use super::glob;
use super::notation::NotationSignatures;
use super::registry::Registry;
use super::trust::{self, Authority, TrustPolicy};
use super::verdict::{judge, Subject, Verdict};
use crate::config::{Config, Mode};
use crate::policy::reference::ImageRef;

/// Verifies images against the `ImageVerificationPolicy` documents of a config. Cheap to
/// clone; build one per config (re)load.
#[derive(Clone)]
pub struct Verifier {
    policies: Arc<Vec<TrustPolicy>>,
    mode_override: Option<Mode>,
    registry: Registry,
}

impl Verifier {
    /// Loads the trust policies of `config.policyDir` (reading their key files) and builds
    /// the registry client of `config.imageVerification`. The error names the file, the
    /// line, the policy and the field; every problem found is listed, one a line.
    pub fn new(config: &Config) -> Result<Verifier, String> {
        let docs = config
            .policy_dir
            .as_ref()
            .map(|d| d.documents.as_slice())
            .unwrap_or_default();
        let policies = trust::load(docs, &|path| std::fs::read(path)).map_err(|e| e.to_string())?;
        Ok(Verifier {
            policies: Arc::new(policies),
            mode_override: config.mode,
            registry: Registry::new(&config.image_verification)?,
        })
    }

    /// The loaded policies, in file order.
    pub fn policies(&self) -> &[TrustPolicy] {
        &self.policies
    }

    /// Whether any policy is loaded; with none, every image is allowed without I/O.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Verifies `image` (its digest `digest`, or the one its tag points to when `None`)
    /// for a namespace with `namespace_labels` (`Decider::namespace_labels`: the
    /// configured labels and `kubernetes.io/metadata.name`). Never fails: what could not
    /// be read is judged by each policy's `failurePolicy`.
    pub async fn verify(
        &self,
        image: &ImageRef,
        digest: Option<&str>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Verdict {
        let in_namespace: Vec<&TrustPolicy> = self
            .policies
            .iter()
            .filter(|p| {
                p.namespace_selector
                    .as_ref()
                    .is_none_or(|s| s.matches(namespace_labels))
            })
            .collect();
        // A tag is resolved only when some policy could apply: the digest is what is
        // verified, and what digest-pinned globs and allow entries match.
        let digest = digest.or(image.digest.as_deref());
        let digest: Result<String, String> = match (digest, in_namespace.is_empty()) {
            (Some(d), _) => Ok(d.to_string()),
            (None, true) => Err("not resolved: no policy applies".into()),
            (None, false) => self.registry.resolve(image).await,
        };
        let names = glob::names(
            &image.registry,
            &image.repository,
            image.tag.as_deref(),
            digest.as_deref().ok(),
        );
        let applicable: Vec<&TrustPolicy> = in_namespace
            .into_iter()
            .filter(|p| p.applies(&names, namespace_labels))
            .collect();
        // Signatures are fetched only for the policies that do not allow-list the image,
        // and only of the kinds their authorities need.
        let needs = |kind: fn(&Authority) -> bool| match &digest {
            Ok(d) => applicable
                .iter()
                .any(|p| p.authorities.iter().any(kind) && p.allowed_by(&names, Some(d)).is_none()),
            Err(_) => false,
        };
        let (wants_cosign, wants_notation) = (
            needs(|a| a.key().is_some()),
            needs(|a| a.notation().is_some()),
        );
        let signatures: Option<Result<Signatures, String>> = match &digest {
            Ok(d) if wants_cosign => Some(self.registry.signatures(image, d).await),
            _ => None,
        };
        let notation: Option<Result<NotationSignatures, String>> = match &digest {
            Ok(d) if wants_notation => Some(self.registry.notation_signatures(image, d).await),
            _ => None,
        };
        let shown = shown(image, digest.as_deref().ok());
        let subject = Subject {
            image: &shown,
            names: &names,
            digest: digest.as_deref().map_err(String::as_str),
            signatures: signatures
                .as_ref()
                .map(|s| s.as_ref().map_err(String::as_str)),
            notation: notation
                .as_ref()
                .map(|s| s.as_ref().map_err(String::as_str)),
            now: unix_now(),
        };
        judge(&applicable, &subject, self.mode_override)
    }
}

/// Now, in Unix seconds.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `registry/repository[:tag][@digest]`.
fn shown(image: &ImageRef, digest: Option<&str>) -> String {
    let mut s = format!("{}/{}", image.registry, image.repository);
    if let Some(tag) = &image.tag {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
    s
}
