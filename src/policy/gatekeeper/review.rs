//! One request through the Constraints that match it, at one enforcement point: the
//! Rego ones on `regorus`, the CEL ones in one batch on the CEL threads, all within the
//! time limit. The process `Config` exempts namespaces first, as Gatekeeper's webhook
//! and audit skip them.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::compile::Code;
use super::enforcement::{Action, Point};
use super::load::Found;
use super::matching::{check_wildcard, wildcard_matches, Namespace, Objects};
use super::rego::RegoInput;
use super::types::GatekeeperConfig;
use super::Gatekeeper;
use crate::config::policy_dir::LoadIssue;
use crate::review::AdmissionRequest;

/// One violation of one Constraint, with the action it takes at the point asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The Constraint's kind and name.
    pub kind: String,
    pub constraint: String,
    pub action: Action,
    pub message: String,
}

impl Violation {
    /// Gatekeeper's form of a violation in denials and warnings: `[name] message`.
    pub fn line(&self) -> String {
        format!("[{}] {}", self.constraint, self.message)
    }
}

/// What the Constraints say about one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Review {
    /// How many Constraints matched and were evaluated.
    pub matched: usize,
    pub violations: Vec<Violation>,
    /// Evaluations that failed or overran: the request cannot be judged.
    pub errors: Vec<String>,
}

impl Gatekeeper {
    /// Judges `request` (in a namespace labelled `labels`) at `point`. Pure but for time.
    pub fn review(
        &self,
        request: &AdmissionRequest,
        labels: &BTreeMap<String, String>,
        point: Point,
    ) -> Review {
        let mut review = Review::default();
        if self.exempt(request, point) {
            return review;
        }
        let namespace = (!request.namespace.is_empty()).then(|| Namespace {
            name: &request.namespace,
            labels,
        });
        let objects = Objects::of(request.object.as_ref(), request.old_object.as_ref());
        let matched: Vec<usize> = (0..self.constraints.len())
            .filter(|&i| self.applies(i, request, &objects, namespace.as_ref(), point))
            .collect();
        review.matched = matched.len();
        if matched.is_empty() {
            return review;
        }
        let deadline = Instant::now() + self.time_limit;
        // The request's Namespace: `input.review.namespaceObject` and CEL's `namespaceObject`.
        let namespace_object = if request.namespace.is_empty() {
            Value::Null
        } else {
            super::namespace_object(&request.namespace, labels)
        };
        let mut found: Vec<(usize, Vec<String>)> = Vec::new();
        self.run_rego(
            request,
            &namespace_object,
            &matched,
            deadline,
            &mut found,
            &mut review.errors,
        );
        self.run_cel(request, &namespace_object, &matched, &mut found);
        found.sort_by_key(|(i, _)| *i);
        for (i, messages) in found {
            let c = &self.constraints[i];
            for &action in c.actions(point) {
                review.violations.extend(messages.iter().map(|m| Violation {
                    kind: c.kind.clone(),
                    constraint: c.name.clone(),
                    action,
                    message: m.clone(),
                }));
            }
        }
        review
    }

    /// Whether Constraint `i` is evaluated for `request` at `point`.
    fn applies(
        &self,
        i: usize,
        request: &AdmissionRequest,
        objects: &Objects,
        namespace: Option<&Namespace>,
        point: Point,
    ) -> bool {
        let c = &self.constraints[i];
        let t = &self.templates[c.template];
        let operation = request.operation.as_str();
        // Gatekeeper's webhook is registered for resources, not their subresources.
        request
            .sub_resource
            .as_deref()
            .unwrap_or_default()
            .is_empty()
            && t.operations.iter().any(|o| o == "*" || o == operation)
            && !c.actions(point).is_empty()
            && objects.matched_by(&c.match_, namespace)
    }

    fn run_rego(
        &self,
        request: &AdmissionRequest,
        namespace_object: &Value,
        matched: &[usize],
        deadline: Instant,
        found: &mut Vec<(usize, Vec<String>)>,
        errors: &mut Vec<String>,
    ) {
        let rego: Vec<usize> = matched
            .iter()
            .copied()
            .filter(|&i| {
                matches!(
                    self.templates[self.constraints[i].template].code,
                    Code::Rego(_)
                )
            })
            .collect();
        if rego.is_empty() {
            return;
        }
        let input = match review_json(request, namespace_object).and_then(|r| RegoInput::new(&r)) {
            Ok(input) => input,
            Err(e) => {
                errors.push(format!("the request cannot be given to Rego: {e}"));
                return;
            }
        };
        for i in rego {
            let c = &self.constraints[i];
            let Code::Rego(program) = &self.templates[c.template].code else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match program.violations(&input, &c.parameters, left) {
                Ok(v) if v.is_empty() => {}
                Ok(v) => found.push((i, v.into_iter().map(|v| v.msg).collect())),
                Err(e) => errors.push(format!("[{}] {e}", c.name)),
            }
        }
    }

    fn run_cel(
        &self,
        request: &AdmissionRequest,
        namespace_object: &Value,
        matched: &[usize],
        found: &mut Vec<(usize, Vec<String>)>,
    ) {
        let Some(set) = &self.cel else {
            return;
        };
        let (indices, bindings): (Vec<usize>, Vec<usize>) = matched
            .iter()
            .filter_map(|&i| self.bindings[i].map(|b| (i, b)))
            .unzip();
        if bindings.is_empty() {
            return;
        }
        let results = set.evaluate_bindings(request, namespace_object, &bindings);
        for (i, result) in indices.into_iter().zip(results) {
            if !result.violations.is_empty() {
                found.push((i, result.violations));
            }
        }
    }

    /// Whether the process `Config` exempts the request's namespace at `point`.
    fn exempt(&self, request: &AdmissionRequest, point: Point) -> bool {
        let excluded = match point {
            Point::Webhook => &self.excluded_webhook,
            Point::Audit => &self.excluded_audit,
        };
        let namespace = if crate::policy::matching::is_namespace_resource(request) {
            &request.name
        } else {
            &request.namespace
        };
        !namespace.is_empty() && excluded.iter().any(|p| wildcard_matches(p, namespace))
    }
}

/// `input.review`: the AdmissionRequest as Gatekeeper's webhook passes it, with the
/// request's Namespace as `namespaceObject` (as Gatekeeper's Rego driver adds it).
fn review_json(request: &AdmissionRequest, namespace_object: &Value) -> Result<Value, String> {
    let mut review = serde_json::to_value(request).map_err(|e| e.to_string())?;
    if let (Some(map), false) = (review.as_object_mut(), namespace_object.is_null()) {
        map.insert("namespaceObject".into(), namespace_object.clone());
    }
    Ok(review)
}

/// The excluded namespaces of the process `Config`s: (admission, audit).
pub(super) fn exemptions(
    configs: &[Found<GatekeeperConfig>],
    issues: &mut Vec<LoadIssue>,
) -> (Vec<String>, Vec<String>) {
    let (mut webhook, mut audit) = (Vec::new(), Vec::new());
    for f in configs {
        let what = format!("Config {}", crate::policy::quote(&f.object.metadata.name));
        let mut issue = |m: String| issues.push(super::compile::issue(f, &what, m));
        for (i, m) in f.object.spec.match_.iter().enumerate() {
            for (j, ns) in m.excluded_namespaces.iter().enumerate() {
                if let Err(e) = check_wildcard(ns) {
                    issue(format!("spec.match[{i}].excludedNamespaces[{j}]: {e}"));
                }
            }
            for (j, p) in m.processes.iter().enumerate() {
                let (to_webhook, to_audit) = match p.as_str() {
                    "*" => (true, true),
                    "webhook" => (true, false),
                    "audit" => (false, true),
                    // Nothing of these runs here: mutation and sync exemptions are moot.
                    "mutation-webhook" | "sync" => (false, false),
                    other => {
                        issue(format!(
                            "spec.match[{i}].processes[{j}]: {other:?}; use *, audit, \
                             webhook, mutation-webhook or sync"
                        ));
                        (false, false)
                    }
                };
                if to_webhook {
                    webhook.extend(m.excluded_namespaces.iter().cloned());
                }
                if to_audit {
                    audit.extend(m.excluded_namespaces.iter().cloned());
                }
            }
        }
        let sync = f.object.spec.sync.iter().flat_map(|s| s.sync_only.iter());
        for (i, s) in sync.enumerate() {
            if !(s.group.is_empty() && s.version == "v1" && s.kind == "Namespace") {
                issue(format!(
                    "spec.sync.syncOnly[{i}]: {}/{}/{} cannot be replicated: there is no API \
                     server here, and data.inventory holds only the Namespaces of the \
                     config's namespaces:; remove the entry (templates reading other kinds \
                     from data.inventory see nothing)",
                    s.group, s.version, s.kind
                ));
            }
        }
    }
    (webhook, audit)
}
