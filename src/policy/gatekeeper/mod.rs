//! OPA Gatekeeper's ConstraintTemplates and Constraints from `policyDir`, evaluated in
//! process at every door, on hosts with no API server: Rego with `regorus`, the
//! `K8sNativeValidation` (CEL) form on the engine of `policy::vap`. Gatekeeper's
//! contract is kept: the Rego input (`input.review`, `input.parameters`,
//! `data.inventory`), the CEL variables (`anyObject`, `params`), `spec.match`, the
//! enforcement actions and their points, the process `Config`'s namespace exemptions,
//! and the denial format `[constraint] message`. docs/gatekeeper.md says what differs.
//!
//! - [`types`]: the YAML shapes; `load`: documents in, every Gatekeeper kind read or
//!   refused; `compile`: templates and Constraints checked and compiled once.
//! - `schema`: a Constraint's parameters against its template's openAPIV3Schema.
//! - `rego`: the Rego engine; `cel`: templates as generated ValidatingAdmissionPolicies.
//! - `matching`: `spec.match`; `enforcement`: `enforcementAction` and its scopes.
//! - `review`: one request through the matched Constraints; `admission`: the seam to
//!   the decision core.

pub mod enforcement;
pub mod types;

mod admission;
mod cel;
mod compile;
mod load;
mod matching;
mod rego;
#[cfg(test)]
mod rego_tests;
mod review;
mod schema;
#[cfg(test)]
mod schema_tests;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

pub use admission::register;
use compile::{Constraint, Template};
pub use enforcement::{Action, Point};

use crate::config::policy_dir::{LoadError, LoadIssue};
use crate::config::GatekeeperEngine;
use crate::policy::vap::PolicySet;

/// The templates and Constraints of a `policyDir`, compiled; immutable, shared.
pub struct Gatekeeper {
    templates: Vec<Template>,
    constraints: Vec<Constraint>,
    /// Each Constraint's binding in `cel` (CEL templates only).
    bindings: Vec<Option<usize>>,
    cel: Option<PolicySet>,
    /// Namespaces the process `Config` exempts, per enforcement point.
    excluded_webhook: Vec<String>,
    excluded_audit: Vec<String>,
    time_limit: Duration,
}

/// What [`Gatekeeper::load`] needs beside the documents.
pub struct Settings<'a> {
    /// `policyDirIgnore`.
    pub ignored: &'a [(String, String)],
    pub engines: &'a [GatekeeperEngine],
    /// The config's namespaces and their labels: `data.inventory`'s Namespaces.
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub time_limit: Duration,
}

impl Gatekeeper {
    /// Reads the Gatekeeper documents of `docs`; `None` when there are none.
    pub fn load(
        docs: &[(PathBuf, String)],
        settings: &Settings,
    ) -> Result<Option<Gatekeeper>, LoadError> {
        let mut issues = Vec::new();
        let found = load::documents(docs, settings.ignored, &mut issues);
        if found.templates.is_empty() && found.constraints.is_empty() && found.configs.is_empty() {
            return into_result(issues, None);
        }
        let inventory = inventory(settings.namespaces);
        let mut templates: Vec<Template> = Vec::new();
        // Kinds whose template failed: their Constraints are not reported again.
        let mut failed: Vec<&str> = Vec::new();
        for f in &found.templates {
            let what = format!(
                "ConstraintTemplate {}",
                crate::policy::quote(&f.object.metadata.name)
            );
            match compile::template(f, settings.engines, &inventory) {
                Ok(t) if templates.iter().any(|u| u.kind == t.kind) => issues.push(compile::issue(
                    f,
                    &what,
                    format!("kind {} is defined twice", t.kind),
                )),
                Ok(t) => templates.push(t),
                Err(e) => {
                    failed.push(&f.object.spec.crd.spec.names.kind);
                    issues.push(compile::issue(f, &what, e))
                }
            }
        }
        let mut constraints: Vec<Constraint> = Vec::new();
        for f in found
            .constraints
            .iter()
            .filter(|f| !failed.contains(&f.object.kind.as_str()))
        {
            let what = format!(
                "{} {}",
                f.object.kind,
                crate::policy::quote(&f.object.metadata.name)
            );
            match compile::constraint(f, &templates) {
                Ok(c)
                    if constraints
                        .iter()
                        .any(|d| d.kind == c.kind && d.name == c.name) =>
                {
                    issues.push(compile::issue(f, &what, "is defined twice".into()))
                }
                Ok(c) => constraints.push(c),
                Err(problems) => {
                    issues.extend(problems.into_iter().map(|p| compile::issue(f, &what, p)))
                }
            }
        }
        let (excluded_webhook, excluded_audit) = review::exemptions(&found.configs, &mut issues);
        if !issues.is_empty() {
            return Err(LoadError { issues });
        }
        let (cel, bindings) = match cel::build(&templates, &constraints)? {
            Some((set, bindings)) => (Some(set.with_time_limit(settings.time_limit)), bindings),
            None => (None, vec![None; constraints.len()]),
        };
        into_result(
            issues,
            Some(Gatekeeper {
                templates,
                constraints,
                bindings,
                cel,
                excluded_webhook,
                excluded_audit,
                time_limit: settings.time_limit,
            }),
        )
    }
}

fn into_result<T>(issues: Vec<LoadIssue>, ok: T) -> Result<T, LoadError> {
    if issues.is_empty() {
        Ok(ok)
    } else {
        Err(LoadError { issues })
    }
}

/// `data.inventory` as Gatekeeper's sync would fill it with the config's namespaces:
/// `cluster["v1"]["Namespace"][name]`.
fn inventory(namespaces: &BTreeMap<String, BTreeMap<String, String>>) -> Value {
    let objects: serde_json::Map<String, Value> = namespaces
        .iter()
        .filter(|(name, _)| name.as_str() != "*")
        .map(|(name, labels)| (name.clone(), namespace_object(name, labels)))
        .collect();
    json!({"cluster": {"v1": {"Namespace": objects}}})
}

/// A Namespace object: name and labels.
fn namespace_object(name: &str, labels: &BTreeMap<String, String>) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": labels}})
}
