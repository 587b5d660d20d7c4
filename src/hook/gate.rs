//! The hook door's decision, shared by `portcullis hook` and `portcullis runc`: through the
//! daemon when `hook.daemonSocket` is set and answers; otherwise in-process from the config
//! file; when neither can decide, closed unless `hook.failOpen`.
//!
//! Mutation cannot be applied below the runtime (the container is being created from a
//! spec already written): a verdict that would change the container is admitted unchanged
//! and reported as a warning.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::daemon::Daemon;
use crate::config::{Config, HookConfig};
use crate::convert::PodOptions;
use crate::core::log::DecisionLog;
use crate::core::Decider;
use crate::review::{AdmissionRequest, Door};

/// The config file as the hook could read it.
pub struct Gate {
    /// The whole config, or why it cannot be used.
    config: Result<Config, String>,
    /// `hook:` — from the config, or read alone from a config that is otherwise invalid,
    /// so `failOpen` still holds.
    pub hook: HookConfig,
    /// Which door this is, for the decision log and the metrics: the hook, or the runc
    /// wrapper.
    door: Door,
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Daemon,
    InProcess,
    /// Nothing could decide; `hook.failOpen` admitted.
    FailOpen,
    /// Nothing could decide; closed.
    FailClosed,
}

/// The hook's answer, with everything it should tell on stderr.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// The refusal (or, failing open, why no decision could be made).
    pub message: String,
    pub warnings: Vec<String>,
    /// A policy would have changed the container: the JSON Patch, as text.
    pub mutation: Option<String>,
    pub via: Via,
    /// What went wrong on the way (daemon unreachable, ...), for stderr.
    pub notes: Vec<String>,
}

impl Gate {
    pub fn load(path: &Path) -> Self {
        match Config::load(path) {
            Ok(config) => Self::from_config(config),
            Err(e) => Self {
                hook: lenient_hook(path).unwrap_or_default(),
                config: Err(format!("{e}")),
                door: Door::Hook,
            },
        }
    }

    pub fn from_config(config: Config) -> Self {
        Self {
            hook: config.hook.clone(),
            config: Ok(config),
            door: Door::Hook,
        }
    }

    /// The same gate, deciding as `door` (the hook door unless told).
    pub fn at(mut self, door: Door) -> Self {
        self.door = door;
        self
    }

    /// How bundles are converted (`proxy.runtimeClasses`, as for the proxy).
    pub fn pod_options(&self) -> PodOptions {
        PodOptions {
            kubernetes_namespace: self.hook.cri_o,
            ..self
                .config
                .as_ref()
                .map(PodOptions::new)
                .unwrap_or_default()
        }
    }

    /// No decision can be made (bad state, unreadable bundle, ...): closed unless failOpen.
    pub fn undecidable(&self, why: String) -> Decision {
        let via = if self.hook.fail_open {
            Via::FailOpen
        } else {
            Via::FailClosed
        };
        Decision {
            allowed: self.hook.fail_open,
            message: why,
            warnings: Vec::new(),
            mutation: None,
            via,
            notes: Vec::new(),
        }
    }

    /// A refusal by the door's own rule, not by a policy: `failOpen` does not apply, since
    /// nothing failed.
    pub fn refuse(&self, why: String) -> Decision {
        Decision {
            allowed: false,
            message: why,
            warnings: Vec::new(),
            mutation: None,
            via: Via::InProcess,
            notes: Vec::new(),
        }
    }

    pub async fn decide(&self, request: &AdmissionRequest) -> Decision {
        let mut notes = Vec::new();
        if let Some(socket) = &self.hook.daemon_socket {
            match Daemon::new(socket)
                .admit(self.door, request, self.hook.timeout)
                .await
            {
                Ok(answer) => {
                    let mutation = answer
                        .patch
                        .filter(|p| !p.0.is_empty())
                        .map(|p| serde_json::to_string(&p).unwrap_or_default());
                    return Decision {
                        allowed: answer.allowed,
                        message: answer.status.map(|s| s.message).unwrap_or_default(),
                        warnings: answer.warnings,
                        mutation,
                        via: Via::Daemon,
                        notes,
                    };
                }
                Err(e) => notes.push(format!(
                    "the daemon did not decide ({e}); deciding in-process from the config file"
                )),
            }
        }
        let decider = self
            .config
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|c| Ok((c, Decider::new(c).map_err(|e| e.to_string())?)));
        match decider {
            Ok((config, decider)) => {
                let log = DecisionLog::open(&config.decision_log).unwrap_or_else(|e| {
                    notes.push(format!("decision log not written: {e}"));
                    None
                });
                let decider = decider.with_shared_log(log.map(Arc::new));
                let verdict = decider.admit(self.door, request).await;
                let mutation = match (&request.object, verdict.mutated()) {
                    (Some(before), Some(after)) => Some(
                        serde_json::to_string(&json_patch::diff(before, after)).unwrap_or_default(),
                    ),
                    _ => None,
                };
                Decision {
                    allowed: verdict.is_allowed(),
                    message: verdict.message().to_owned(),
                    warnings: verdict.warnings,
                    mutation,
                    via: Via::InProcess,
                    notes,
                }
            }
            Err(e) => {
                let mut d = self.undecidable(format!("cannot decide: config: {e}"));
                d.notes = notes;
                d
            }
        }
    }
}

/// `hook:` alone from a config file that does not load as a whole.
fn lenient_hook(path: &Path) -> Option<HookConfig> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: Value = serde_saphyr::from_str(&text).ok()?;
    serde_json::from_value(doc.get("hook")?.clone()).ok()
}

/// What the hook writes to stderr for a decision, one line each, `portcullis: ` first.
/// The refusal comes first, so error views that keep a prefix or one line still show it.
pub fn report_lines(d: &Decision, what: &str) -> Vec<String> {
    let mut lines = Vec::new();
    match (d.allowed, d.via) {
        (false, _) => lines.push(format!("portcullis: {}", d.message)),
        (true, Via::FailOpen) => lines.push(format!(
            "portcullis: {}; admitted because hook.failOpen is set",
            d.message
        )),
        _ => {}
    }
    lines.extend(d.notes.iter().map(|n| format!("portcullis: {n}")));
    for w in &d.warnings {
        lines.push(format!("portcullis: warning: {w}"));
    }
    if let Some(patch) = &d.mutation {
        lines.push(format!(
            "portcullis: warning: a policy would change {what} ({patch}); changes cannot be applied by a runtime hook, admitted unchanged"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{AdmissionRequest, Operation};
    use serde_json::json;

    fn request(privileged: bool) -> AdmissionRequest {
        let mut r = AdmissionRequest::pod(Operation::Create);
        r.namespace = "podman".into();
        r.name = "c".into();
        r.object = Some(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "c", "namespace": "podman"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "securityContext": {"privileged": privileged}}]}}));
        r
    }

    fn gate(yaml: &str) -> (tempfile::TempDir, Gate) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let gate = Gate::load(&path);
        (dir, gate)
    }

    fn decide(gate: &Gate, r: &AdmissionRequest) -> Decision {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(gate.decide(r))
    }

    const BASELINE: &str =
        "namespaces:\n  podman:\n    labels:\n      pod-security.kubernetes.io/enforce: baseline\n";

    #[test]
    fn decides_in_process() {
        let (_d, g) = gate(BASELINE);
        assert!(decide(&g, &request(false)).allowed);
        let d = decide(&g, &request(true));
        assert!(!d.allowed);
        assert_eq!(d.via, Via::InProcess);
        let lines = report_lines(&d, "container c");
        assert!(
            lines.last().unwrap().starts_with("portcullis: "),
            "{lines:?}"
        );
        assert!(lines.last().unwrap().contains("privileged"), "{lines:?}");
    }

    #[test]
    fn daemon_down_falls_back_in_process() {
        let yaml = format!(
            "{BASELINE}hook:\n  daemonSocket: /nonexistent/portcullis.sock\n  timeout: 1s\n"
        );
        let (_d, g) = gate(&yaml);
        let d = decide(&g, &request(true));
        assert_eq!((d.allowed, d.via), (false, Via::InProcess));
        assert!(
            d.notes[0].contains("/nonexistent/portcullis.sock"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn unusable_config_fails_closed_unless_open() {
        let (_d, g) = gate("nonsense: [\n");
        let d = decide(&g, &request(false));
        assert_eq!((d.allowed, d.via), (false, Via::FailClosed));
        assert!(d.message.contains("cannot decide"), "{}", d.message);

        // The rest of the file is invalid, but hook.failOpen still reads.
        let (_d, g) = gate("unknownField: 1\nhook:\n  failOpen: true\n");
        let d = decide(&g, &request(false));
        assert_eq!((d.allowed, d.via), (true, Via::FailOpen));
        assert!(report_lines(&d, "c")[0].contains("failOpen"));
    }

    #[test]
    fn mutation_is_reported_and_admitted() {
        let d = Decision {
            allowed: true,
            message: String::new(),
            warnings: vec!["w".into()],
            mutation: Some("[]".into()),
            via: Via::Daemon,
            notes: vec![],
        };
        let lines = report_lines(&d, "container c");
        assert_eq!(lines[0], "portcullis: warning: w");
        assert!(lines[1].contains("cannot be applied"));
    }
}
