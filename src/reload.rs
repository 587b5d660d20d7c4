//! Hot reload: the config file and the policy directory are watched, and a new decision
//! core replaces the serving one atomically when they change (or on SIGHUP). A new version
//! that does not load — bad YAML, an unknown key, a CEL compile error — is rejected with
//! one error log line and `portcullis_config_reloads_total{result="failure"}`, and the last
//! good core keeps serving; requests in flight finish on the core they started with.
//!
//! Watching is by polling file metadata (modification time, size, inode) once a second:
//! it needs no inotify limits and sees every way a file is replaced, including the
//! symlink swap Kubernetes uses for mounted ConfigMaps.
//!
//! `proxy:`, `serve:`, `decisionLog:`, `metrics:` and `events:` are read at start only
//! (sockets, files and listeners are open); a change there is logged as needing a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::config::{
    Config, DecisionLogConfig, EventsConfig, MetricsConfig, ProxyConfig, ServeConfig,
};
use crate::core::Decider;
use crate::metrics::SharedMetrics;

/// The decision core serving now; doors load it once per request.
pub type LiveDecider = Arc<ArcSwap<Decider>>;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// Files change in several writes; a change is acted on once they have been still this long.
const SETTLE: Duration = Duration::from_millis(200);

pub struct Reloader {
    path: PathBuf,
    live: LiveDecider,
    metrics: SharedMetrics,
    generation: u64,
    /// The restart-only sections as loaded at start.
    fixed: Fixed,
    /// The policy directory of the last config loaded.
    policy_dir: Option<PathBuf>,
    seen: Fingerprint,
}

/// The sections read at start only (open sockets, files and listeners).
#[derive(PartialEq)]
struct Fixed {
    proxy: ProxyConfig,
    serve: ServeConfig,
    decision_log: DecisionLogConfig,
    metrics: MetricsConfig,
    events: EventsConfig,
}

impl Fixed {
    fn of(config: &Config) -> Self {
        Self {
            proxy: config.proxy.clone(),
            serve: config.serve.clone(),
            decision_log: config.decision_log.clone(),
            metrics: config.metrics.clone(),
            events: config.events.clone(),
        }
    }

    /// The names of the sections that differ between `self` and `other`.
    fn changed(&self, other: &Fixed) -> Vec<&'static str> {
        [
            ("proxy", self.proxy != other.proxy),
            ("serve", self.serve != other.serve),
            ("decisionLog", self.decision_log != other.decision_log),
            ("metrics", self.metrics != other.metrics),
            ("events", self.events != other.events),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
}

/// What is known of the watched files: each path with its metadata, if it exists.
#[derive(PartialEq, Eq, Default, Debug)]
struct Fingerprint(Vec<(PathBuf, Option<Stamp>)>);

/// Modification time, size and inode.
type Stamp = (SystemTime, u64, u64);

impl Fingerprint {
    fn take(config: &Path, policy_dir: Option<&Path>) -> Self {
        let mut paths = vec![config.to_path_buf()];
        if let Some(dir) = policy_dir {
            paths.push(dir.to_path_buf());
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut files: Vec<PathBuf> =
                    entries.filter_map(|e| Some(e.ok()?.path())).collect();
                files.sort();
                paths.extend(files);
            }
        }
        Self(
            paths
                .into_iter()
                .map(|p| {
                    // `metadata` follows symlinks: a swapped ConfigMap link is a change.
                    let meta = std::fs::metadata(&p).ok().map(|m| {
                        use std::os::unix::fs::MetadataExt;
                        (
                            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                            m.len(),
                            m.ino(),
                        )
                    });
                    (p, meta)
                })
                .collect(),
        )
    }
}

impl Reloader {
    /// Watches `path`, from which `config` (serving as `live`) was loaded.
    pub fn new(path: &Path, config: &Config, live: LiveDecider, metrics: SharedMetrics) -> Self {
        // `config` may carry command-line overrides (`--listen`...); what a reloaded file
        // is compared with is the file as it was read.
        let as_read = Config::load(path).ok();
        Self {
            path: path.to_path_buf(),
            seen: Fingerprint::take(path, policy_dir(config)),
            fixed: Fixed::of(as_read.as_ref().unwrap_or(config)),
            policy_dir: policy_dir(config).map(Path::to_path_buf),
            live,
            metrics,
            generation: 1,
        }
    }

    /// Watches until dropped: reloads when the files change or SIGHUP arrives.
    pub async fn run(mut self) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sighup = signal(SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "cannot watch for SIGHUP; reloading on file changes only"))
            .ok();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let signalled = tokio::select! {
                _ = tick.tick() => false,
                () = hangup(&mut sighup) => true,
            };
            let now = self.fingerprint();
            if !signalled && now == self.seen {
                continue;
            }
            if !signalled {
                // Let a writer finish: act only on files that stay still.
                tokio::time::sleep(SETTLE).await;
                if self.fingerprint() != now {
                    continue;
                }
            }
            self.seen = now;
            self.reload().await;
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::take(&self.path, self.policy_dir.as_deref())
    }

    /// Builds a core from the files as they are now and swaps it in, or keeps the old one.
    pub async fn reload(&mut self) {
        let path = self.path.clone();
        let current = self.live.load_full();
        let metrics = self.metrics.clone();
        let built = tokio::task::spawn_blocking(move || {
            let config = Config::load(&path).map_err(|e| e.to_string())?;
            let decider = Decider::new(&config)
                .map_err(|e| e.to_string())?
                .with_shared_log(current.decision_log())
                .with_metrics(metrics);
            Ok::<_, String>((config, decider))
        })
        .await
        .unwrap_or_else(|e| Err(format!("loading panicked: {e}")));
        match built {
            Ok((config, decider)) => {
                self.generation += 1;
                self.live.store(Arc::new(decider));
                if self.policy_dir.as_deref() != policy_dir(&config) {
                    self.policy_dir = policy_dir(&config).map(Path::to_path_buf);
                    self.seen = self.fingerprint();
                }
                self.metrics.reloaded(true, self.generation);
                tracing::info!(config = %self.path.display(), generation = self.generation, "config reloaded");
                for section in self.fixed.changed(&Fixed::of(&config)) {
                    tracing::warn!(
                        section,
                        "this section changed; it takes effect at the next restart"
                    );
                }
            }
            Err(error) => {
                self.metrics.reloaded(false, self.generation);
                tracing::error!(config = %self.path.display(), %error, generation = self.generation, "config reload rejected; the last good config keeps serving");
            }
        }
    }
}

/// The policy directory `config` was loaded with.
fn policy_dir(config: &Config) -> Option<&Path> {
    config.policy_dir.as_ref().map(|d| d.path.as_path())
}

/// Resolves at each SIGHUP; never, if there is no signal stream.
async fn hangup(sighup: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(s) = sighup {
        if s.recv().await.is_some() {
            return;
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{AdmissionRequest, Operation};

    fn pod(image: &str) -> AdmissionRequest {
        let mut r = AdmissionRequest::pod(Operation::Create);
        r.object =
            Some(serde_json::json!({"spec": {"containers": [{"name": "c", "image": image}]}}));
        r
    }

    struct Setup {
        dir: tempfile::TempDir,
        live: LiveDecider,
        metrics: SharedMetrics,
        reloader: Reloader,
    }

    fn setup(config: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let config = Config::load(&path).unwrap();
        let metrics = SharedMetrics::default();
        let decider = Decider::new(&config).unwrap();
        let live: LiveDecider = Arc::new(ArcSwap::from_pointee(decider));
        let reloader = Reloader::new(&path, &config, live.clone(), metrics.clone());
        Setup {
            dir,
            live,
            metrics,
            reloader,
        }
    }

    async fn allowed(live: &LiveDecider, image: &str) -> bool {
        live.load_full().decide(&pod(image)).await.is_allowed()
    }

    #[test]
    fn a_change_to_a_start_only_section_is_reported_as_needing_a_restart() {
        let fixed = |text: &str| Fixed::of(&Config::parse(text, Path::new("c.yaml")).unwrap());
        let base = fixed("");
        for (text, section) in [
            ("proxy: {listenMode: '0600'}\n", "proxy"),
            ("serve: {maxRequestBytes: 1024}\n", "serve"),
            ("decisionLog: {stdout: true}\n", "decisionLog"),
            ("metrics: {listen: '127.0.0.1:9464'}\n", "metrics"),
            ("events: {socket: /run/portcullis/events.sock}\n", "events"),
        ] {
            assert_eq!(base.changed(&fixed(text)), vec![section], "{text}");
        }
        assert!(base
            .changed(&fixed("images: {disallowLatest: true}\n"))
            .is_empty());
    }

    #[tokio::test]
    async fn a_good_version_replaces_the_core_and_a_broken_one_is_rejected() {
        let mut s = setup("images: {disallowLatest: false}\n");
        assert!(allowed(&s.live, "busybox").await);

        std::fs::write(
            s.dir.path().join("config.yaml"),
            "images: {disallowLatest: true}\n",
        )
        .unwrap();
        s.reloader.reload().await;
        assert!(!allowed(&s.live, "busybox").await);

        std::fs::write(
            s.dir.path().join("config.yaml"),
            "images: {disallowLatest: true, bogus: 1}\n",
        )
        .unwrap();
        s.reloader.reload().await;
        assert!(
            !allowed(&s.live, "busybox").await,
            "the last good config keeps serving"
        );
        let text = s.metrics.encode();
        for line in [
            r#"portcullis_config_reloads_total{result="success"} 1"#,
            r#"portcullis_config_reloads_total{result="failure"} 1"#,
            "portcullis_config_last_reload_successful 0",
            "portcullis_config_generation 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[tokio::test]
    async fn a_change_in_the_policy_dir_is_noticed_by_the_watcher() {
        let s = setup("");
        let dir = s.dir.path().join("policies");
        std::fs::create_dir(&dir).unwrap();
        let config = format!("policyDir: {}\n", dir.display());
        std::fs::write(s.dir.path().join("config.yaml"), config).unwrap();
        let live = s.live.clone();
        let watcher = tokio::spawn(s.reloader.run());
        let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-busybox}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]}
  validations: [{expression: "object.spec.containers.all(c, !c.image.startsWith('busybox'))"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-busybox}
spec: {policyName: no-busybox, validationActions: [Deny]}
"#;
        // First the config change (a new policyDir) is picked up, then the policy in it.
        tokio::time::sleep(POLL * 2).await;
        std::fs::write(dir.join("policy.yaml"), policy).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while allowed(&live, "busybox:1").await {
            assert!(
                std::time::Instant::now() < deadline,
                "the policy was never loaded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        watcher.abort();
        assert!(s
            .metrics
            .encode()
            .contains("portcullis_config_generation 3"));
    }
}
