//! Image signatures in the chain (docs/image-verification.md): every image of the Pod a
//! request carries is verified against the `ImageVerificationPolicy` documents
//! ([`signature::Verifier`]) in the request's namespace, before the validating policies,
//! as the core asks webhooks: the verifier needs the network, so it is not a pure policy.
//!
//! One cache serves every door of a process (and, through the daemon, every process):
//! verdicts are kept by image and namespace labels, verdicts that admit for
//! `imageVerification.cacheAllowSeconds` and the others for `cacheDenySeconds`, and
//! concurrent asks for one image share one verification (moka's `get_with`), so a
//! kubelet pulling a refused image in its back-off loop costs one registry verification
//! per `cacheDenySeconds` (`portcullis_image_verifications_total` counts them,
//! `portcullis_image_verification_cache_lookups_total` the hits). A reload builds a new core, and with it an empty cache: a
//! verdict never outlives the trust policies it was made under.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;

use super::run::Run;
use super::status::failure_status;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::review::pod_view::pod_view;
use crate::review::{Outcome as Said, Refusal};
use crate::signature::{Decision, ImageRef, Outcome, Verdict, Verifier};

/// The name signatures go by in the trail, the metrics and refusals.
pub const NAME: &str = "image-signatures";
/// Images remembered at once.
const CACHE_ENTRIES: u64 = 10_000;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    image: String,
    digest: Option<String>,
    namespace_labels: BTreeMap<String, String>,
}

/// The verifier of a config, and its verdicts.
pub(super) struct Signatures {
    verifier: Verifier,
    cache: Cache<Key, Arc<Verdict>>,
}

/// Verdicts that admit live `allow`, the others `deny`.
struct ByDecision {
    allow: Duration,
    deny: Duration,
}

impl moka::Expiry<Key, Arc<Verdict>> for ByDecision {
    fn expire_after_create(&self, _: &Key, verdict: &Arc<Verdict>, _: Instant) -> Option<Duration> {
        Some(match verdict.decision {
            Decision::Allowed | Decision::Warn(_) => self.allow,
            Decision::Refused(_) => self.deny,
        })
    }
}

impl Signatures {
    /// The verifier of `config`'s trust policies; `None` when there are none. Fails on a
    /// policy that does not load (the file, the line, the field).
    pub(super) fn new(config: &Config) -> Result<Option<Self>, String> {
        let verifier = Verifier::new(config)?;
        if verifier.is_empty() {
            return Ok(None);
        }
        let ttl = &config.image_verification;
        let cache = Cache::builder()
            .max_capacity(CACHE_ENTRIES)
            .expire_after(ByDecision {
                allow: ttl.cache_allow,
                deny: ttl.cache_deny,
            })
            .build();
        Ok(Some(Self { verifier, cache }))
    }

    /// One image's verdict: the cached one, else one verification shared by every
    /// concurrent ask.
    async fn verdict(
        &self,
        image: &ImageRef,
        digest: Option<&str>,
        labels: &BTreeMap<String, String>,
        metrics: &Metrics,
    ) -> Arc<Verdict> {
        let key = Key {
            image: image.to_string(),
            digest: digest.map(str::to_owned),
            namespace_labels: labels.clone(),
        };
        let verifier = &self.verifier;
        let entry = self
            .cache
            .entry(key)
            .or_insert_with(async move {
                let started = Instant::now();
                let verdict = verifier.verify(image, digest, labels).await;
                let result = match verdict.decision {
                    Decision::Allowed => "allowed",
                    Decision::Warn(_) => "warned",
                    Decision::Refused(_) => "refused",
                };
                metrics.image_verified(result, started.elapsed());
                Arc::new(verdict)
            })
            .await;
        metrics.image_verification_lookup(!entry.is_fresh());
        entry.into_value()
    }

    /// Verifies the images of the request's Pod; the first refusal refuses the request.
    pub(super) async fn judge(&self, run: &mut Run<'_>) {
        let (images, held) = {
            let request = run.current();
            let images = pod_view(&request)
                .map(|v| images(&v.pod))
                .unwrap_or_default();
            (images, request.image_digests.clone())
        };
        let labels = run.namespace_labels.clone();
        for (container, image) in images {
            let parsed = match ImageRef::parse(&image) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let message = format!(
                        "policy {NAME:?} could not judge the request: container {container:?}: \
                         image {image:?} is not a reference: {e}"
                    );
                    run.record(NAME, Said::Failed, &message);
                    run.refuse(
                        Refusal::Failed,
                        failure_status(500, "InternalError", message),
                    );
                    return;
                }
            };
            // The digest the runtime holds, when the door found it: what runs is what is
            // verified. A name pinned to another digest is not what runs.
            let digest = held.get(&container).map(String::as_str);
            if let (Some(runs), Some(named)) = (digest, parsed.digest.as_deref()) {
                if runs != named {
                    let message = format!(
                        "policy {NAME:?} denied the request: container {container:?}: image \
                         {image:?} names {named}, but the runtime holds {runs} under that name"
                    );
                    run.record(NAME, Said::Denied, &message);
                    run.refuse(Refusal::Denied, failure_status(403, "Forbidden", message));
                    return;
                }
            }
            let verdict = self.verdict(&parsed, digest, &labels, run.metrics).await;
            run.annotate(
                format!("portcullis.dev/image-verification.{container}"),
                verdict.summary.clone(),
            );
            run.image_verification
                .insert(container.clone(), report(&verdict));
            match &verdict.decision {
                Decision::Allowed => run.record(NAME, Said::Allowed, &verdict.summary),
                Decision::Warn(warning) => {
                    run.record(NAME, Said::Allowed, &verdict.summary);
                    run.verdict.warnings.push(warning.clone());
                }
                Decision::Refused(reason) => {
                    let message = format!("policy {NAME:?} denied the request: {reason}");
                    run.record(NAME, Said::Denied, &message);
                    run.refuse(Refusal::Denied, failure_status(403, "Forbidden", message));
                    return;
                }
            }
        }
    }
}

/// A verdict as the policies after the check see it (`imageVerification.<container>`).
fn report(v: &Verdict) -> serde_json::Value {
    let decision = match v.decision {
        Decision::Allowed => "Allowed",
        Decision::Warn(_) => "Warn",
        Decision::Refused(_) => "Refused",
    };
    let reports: Vec<serde_json::Value> = v
        .reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "policy": r.policy,
                "mode": format!("{:?}", r.mode).to_lowercase(),
                "outcome": outcome(r.outcome),
                "authority": r.authority,
                "keyId": r.key_id,
                "signature": r.signature,
                "rekorLogIndex": r.rekor_log_index,
                "signer": r.signer,
                "detail": r.detail,
            })
        })
        .collect();
    serde_json::json!({
        "image": v.image,
        "digest": v.digest,
        "decision": decision,
        "summary": v.summary,
        "reports": reports,
    })
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Verified => "Verified",
        Outcome::AllowListed => "AllowListed",
        Outcome::NotVerified => "NotVerified",
        Outcome::Unverifiable { ignored: true } => "UnverifiableIgnored",
        Outcome::Unverifiable { ignored: false } => "Unverifiable",
    }
}

/// `(container name, image)` of every container, init and ephemeral container.
fn images(pod: &serde_json::Value) -> Vec<(String, String)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| pod["spec"][*list].as_array())
        .flatten()
        .filter_map(|c| {
            let image = c["image"].as_str()?;
            let name = c["name"].as_str().unwrap_or_default();
            Some((name.to_owned(), image.to_owned()))
        })
        .collect()
}
