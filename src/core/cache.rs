//! The decision cache: an identical request under the same policies gets the same
//! verdict, from memory, until its TTL runs out — `allowTTL` for admissions, `denyTTL` for
//! refusals, as Kubernetes' ImagePolicyWebhook caches its backend's answers.
//!
//! Every [`super::Decider`] has its own cache, so a reload (a new policy generation) starts
//! empty. What is never stored: verdicts in which a policy could not be evaluated (a
//! timeout now may be an answer in a second), and verdicts a webhook took part in unless
//! that webhook says `cache: true` — a webhook may answer the same request differently.

use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::CacheConfig;
use crate::review::{AdmissionRequest, Outcome, Verdict};

/// The caller's process id is in `userInfo.extra` for policies to see, but two runs of
/// `ctr` are the same caller: it is left out of the key, or nothing would ever hit.
const PID_KEY: &str = "portcullis.dev/pid";

pub struct DecisionCache {
    entries: Cache<Vec<u8>, Entry>,
}

#[derive(Clone)]
struct Entry {
    verdict: Verdict,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<Vec<u8>, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &Vec<u8>, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl DecisionCache {
    pub fn new(config: &CacheConfig) -> Self {
        let entries = Cache::builder()
            .max_capacity(config.max_size_mib.saturating_mul(1 << 20))
            .weigher(|key: &Vec<u8>, entry: &Entry| {
                let verdict = entry.verdict.mutated().map_or(0, |m| m.to_string().len());
                u32::try_from(key.len() + verdict + 512).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        Self { entries }
    }

    /// The key of `request`: the request as it would be sent to a webhook, without its
    /// uid and the caller's pid. `None` if it cannot be serialised (it is then not cached).
    pub fn key(request: &AdmissionRequest) -> Option<Vec<u8>> {
        let mut request = request.clone();
        request.uid.clear();
        request.user_info.extra.remove(PID_KEY);
        let mut key = serde_json::to_vec(&request).ok()?;
        // Not on the wire, but part of what is decided: the digests the runtime holds.
        key.extend(serde_json::to_vec(&request.image_digests).ok()?);
        Some(key)
    }

    pub fn get(&self, key: &[u8]) -> Option<Verdict> {
        self.entries.get(key).map(|e| e.verdict)
    }

    /// Remembers `verdict` for `key` if it may be: see the module documentation.
    /// `uncacheable` is true when a webhook without `cache: true` was asked.
    pub fn put(&self, key: Vec<u8>, verdict: &Verdict, uncacheable: bool, config: &CacheConfig) {
        // Exemption and break-glass passes (`Skipped`) cost nothing to decide again, and
        // every break-glass use must reach the log as one.
        let unsure = verdict.trail.iter().any(|r| {
            matches!(
                r.outcome,
                Outcome::Failed | Outcome::Ignored | Outcome::Skipped
            )
        });
        if uncacheable || unsure {
            return;
        }
        let ttl = if verdict.is_allowed() {
            config.allow_ttl
        } else {
            config.deny_ttl
        };
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(
            key,
            Entry {
                verdict: verdict.clone(),
                ttl,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{Decision, Operation, PolicyResult, Refusal, Status};

    fn request(image: &str, pid: &str) -> AdmissionRequest {
        let mut r = AdmissionRequest::pod(Operation::Create);
        r.object = Some(serde_json::json!({"spec": {"containers": [{"image": image}]}}));
        r.user_info.extra.insert(PID_KEY.into(), vec![pid.into()]);
        r
    }

    fn verdict(allowed: bool, outcome: Outcome) -> Verdict {
        let decision = if allowed {
            Decision::Allowed { mutated: None }
        } else {
            Decision::Refused {
                refusal: Refusal::Denied,
                status: Status::default(),
            }
        };
        Verdict {
            decision,
            trail: vec![PolicyResult {
                policy: "images".into(),
                outcome,
                message: String::new(),
            }],
            ..Verdict::default()
        }
    }

    #[test]
    fn the_same_request_from_another_process_hits_and_another_object_misses() {
        let config = CacheConfig::default();
        let cache = DecisionCache::new(&config);
        let key = DecisionCache::key(&request("busybox:1.36", "10")).unwrap();
        cache.put(key, &verdict(true, Outcome::Allowed), false, &config);
        let same = DecisionCache::key(&request("busybox:1.36", "11")).unwrap();
        assert!(cache.get(&same).is_some_and(|v| v.is_allowed()));
        let other = DecisionCache::key(&request("busybox:1.37", "10")).unwrap();
        assert!(cache.get(&other).is_none());
    }

    #[test]
    fn failures_and_uncacheable_webhooks_are_not_stored() {
        let config = CacheConfig::default();
        let cache = DecisionCache::new(&config);
        let key = DecisionCache::key(&request("a", "1")).unwrap();
        cache.put(
            key.clone(),
            &verdict(false, Outcome::Failed),
            false,
            &config,
        );
        cache.put(
            key.clone(),
            &verdict(true, Outcome::Ignored),
            false,
            &config,
        );
        cache.put(key.clone(), &verdict(true, Outcome::Allowed), true, &config);
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn refusals_expire_after_the_deny_ttl() {
        let config = CacheConfig {
            deny_ttl: Duration::from_millis(50),
            ..CacheConfig::default()
        };
        let cache = DecisionCache::new(&config);
        let denied = DecisionCache::key(&request("a", "1")).unwrap();
        let allowed = DecisionCache::key(&request("b", "1")).unwrap();
        cache.put(
            denied.clone(),
            &verdict(false, Outcome::Denied),
            false,
            &config,
        );
        cache.put(
            allowed.clone(),
            &verdict(true, Outcome::Allowed),
            false,
            &config,
        );
        assert!(cache.get(&denied).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get(&denied).is_none());
        assert!(cache.get(&allowed).is_some());
    }

    #[test]
    fn ttls_parse_as_durations_and_bad_ones_say_why() {
        let c: CacheConfig = serde_saphyr::from_str("{allowTTL: 2m, denyTTL: 0s}").unwrap();
        assert_eq!(c.allow_ttl, Duration::from_secs(120));
        assert_eq!(c.deny_ttl, Duration::ZERO);
        let e = serde_saphyr::from_str::<CacheConfig>("{allowTTL: soon}").unwrap_err();
        assert!(e.to_string().contains("\"soon\" is not a duration"), "{e}");
    }
}
