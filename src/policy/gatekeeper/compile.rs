//! Templates and Constraints checked and compiled once, as Gatekeeper's template and
//! constraint admission would check them: a template's name is its kind in lowercase,
//! it has one `admission.k8s.gatekeeper.sh` target and code for an engine this config
//! runs; a Constraint's kind is a loaded template's, its parameters pass the template's
//! schema (defaults applied), its match and enforcement actions are valid. Every problem
//! is reported, each naming file, line, object and field.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::enforcement::{Action, Enforcement, Point};
use super::load::{source_line, Found};
use super::matching::check_wildcard;
use super::rego::RegoProgram;
use super::schema::ParameterSchema;
use super::types::{self, CelSource, Match, RegoSource, Target, ADMISSION_TARGET};
use crate::config::policy_dir::LoadIssue;
use crate::config::GatekeeperEngine;
use crate::policy::quote;

/// A template's code, ready to run.
pub(crate) enum Code {
    Rego(Arc<RegoProgram>),
    /// CEL runs on `policy::vap` as a generated ValidatingAdmissionPolicy (`cel`).
    Cel(CelSource),
}

pub(crate) struct Template {
    pub name: String,
    pub kind: String,
    pub file: PathBuf,
    pub code: Code,
    /// The operations judged (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`; `*` for all).
    pub operations: Vec<String>,
    pub schema: ParameterSchema,
}

pub(crate) struct Constraint {
    pub kind: String,
    pub name: String,
    pub template: usize,
    pub match_: Match,
    /// `spec.parameters` with the schema's defaults; `{}` when absent.
    pub parameters: Value,
    /// What a violation does at each enforcement point, worked out once at load.
    at_webhook: Vec<Action>,
    at_audit: Vec<Action>,
    /// The object as loaded (parameters defaulted): CEL's `params`.
    pub object: Value,
}

/// Gatekeeper's reserved names (`pkg/drivers/k8scel/schema`).
const RESERVED_PREFIX: &str = "gatekeeper_internal_";
pub(crate) const PARAMS: &str = "params";
pub(crate) const ANY_OBJECT: &str = "anyObject";

/// Gatekeeper's checks of a source; the error is relative to `code[i].source`.
pub(crate) fn check_source(source: &CelSource) -> Result<(), String> {
    for (i, c) in source.match_condition.iter().enumerate() {
        if c.name.starts_with(RESERVED_PREFIX) {
            return Err(format!(
                "matchCondition[{i}].name: {:?} cannot have {RESERVED_PREFIX:?} as a prefix",
                c.name
            ));
        }
    }
    for (i, v) in source.variables.iter().enumerate() {
        if v.name.starts_with(RESERVED_PREFIX) || v.name == PARAMS || v.name == ANY_OBJECT {
            return Err(format!(
                "variables[{i}].name: {:?} is reserved by Gatekeeper ({PARAMS}, {ANY_OBJECT}, \
                 {RESERVED_PREFIX}*)",
                v.name
            ));
        }
    }
    match source.failure_policy.as_deref() {
        None | Some("Fail") | Some("Ignore") => {}
        Some(other) => return Err(format!("failurePolicy: {other:?}; use Fail or Ignore")),
    }
    if source.validations.is_empty() {
        return Err("validations: empty; a template judges with at least one".into());
    }
    Ok(())
}

impl Constraint {
    /// The actions at `point`, strongest first; empty: not evaluated there.
    pub(crate) fn actions(&self, point: Point) -> &[Action] {
        match point {
            Point::Webhook => &self.at_webhook,
            Point::Audit => &self.at_audit,
        }
    }
}

const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];

/// Checks and compiles `found`, preferring `engines` in order; `inventory` is Rego's
/// `data.inventory`.
pub(crate) fn template(
    found: &Found<types::ConstraintTemplate>,
    engines: &[GatekeeperEngine],
    inventory: &Value,
) -> Result<Template, String> {
    let t = &found.object;
    let (name, kind) = (&t.metadata.name, &t.spec.crd.spec.names.kind);
    if kind.is_empty() {
        return Err("spec.crd.spec.names.kind: required: the kind its Constraints have".into());
    }
    if *name != kind.to_lowercase() {
        return Err(format!(
            "metadata.name {}: must be spec.crd.spec.names.kind in lowercase, {}",
            quote(name),
            quote(&kind.to_lowercase())
        ));
    }
    let target = match t.spec.targets.as_slice() {
        [target] if target.target == ADMISSION_TARGET => target,
        [target] => {
            return Err(format!(
                "spec.targets[0].target: {}; the only target is {ADMISSION_TARGET}",
                quote(&target.target)
            ))
        }
        _ => return Err("spec.targets: must hold exactly one target".into()),
    };
    let operations = operations(target)?;
    let validation = t.spec.crd.spec.validation.as_ref();
    // Gatekeeper reads v1beta1 schemas, and v1 ones marked `legacySchema`, as
    // non-structural: every object level keeps unknown fields.
    let legacy = validation.and_then(|v| v.legacy_schema).unwrap_or(false);
    let structural = t.api_version.ends_with("/v1") && !legacy;
    let schema_value = validation.and_then(|v| v.open_api_v3_schema.as_ref());
    let schema = ParameterSchema::new(schema_value, structural)
        .map_err(|e| format!("spec.crd.spec.validation.openAPIV3Schema: {e}"))?;
    let code = code(found, target, engines, inventory)?;
    Ok(Template {
        name: name.clone(),
        kind: kind.clone(),
        file: found.file.clone(),
        code,
        operations,
        schema,
    })
}

fn operations(target: &Target) -> Result<Vec<String>, String> {
    for (i, op) in target.operations.iter().enumerate() {
        if !OPERATIONS.contains(&op.as_str()) {
            return Err(format!(
                "spec.targets[0].operations[{i}]: {}; use {OPERATIONS:?}",
                quote(op)
            ));
        }
    }
    Ok(if target.operations.is_empty() {
        vec!["CREATE".into(), "UPDATE".into()]
    } else {
        target.operations.clone()
    })
}

/// The code of the first engine in `engines` the template has code for.
fn code(
    found: &Found<types::ConstraintTemplate>,
    target: &Target,
    engines: &[GatekeeperEngine],
    inventory: &Value,
) -> Result<Code, String> {
    let mut rego: Option<(String, RegoSource)> = None;
    let mut cel: Option<(String, CelSource)> = None;
    for (i, code) in target.code.iter().enumerate() {
        let field = format!("spec.targets[0].code[{i}]");
        match code.engine.as_str() {
            "Rego" if rego.is_none() => {
                let source = serde_json::from_value(code.source.clone())
                    .map_err(|e| format!("{field}.source: {e}"))?;
                rego = Some((format!("{field}.source.rego"), source));
            }
            "K8sNativeValidation" if code.source.get("matchConditions").is_some() => {
                return Err(format!(
                    "{field}.source.matchConditions: Gatekeeper reads `matchCondition` (singular) \
                     and would silently ignore these; rename the field"
                ))
            }
            "K8sNativeValidation" if cel.is_none() => {
                let source = serde_json::from_value(code.source.clone())
                    .map_err(|e| format!("{field}.source: {e}"))?;
                cel = Some((format!("{field}.source"), source));
            }
            "Rego" | "K8sNativeValidation" => {
                return Err(format!("{field}.engine: {} is given twice", code.engine))
            }
            other => {
                return Err(format!(
                    "{field}.engine: unknown engine {}; Gatekeeper's are Rego and \
                     K8sNativeValidation",
                    quote(other)
                ))
            }
        }
    }
    if let (None, Some(text)) = (&rego, &target.rego) {
        let source = RegoSource {
            rego: text.clone(),
            libs: target.libs.clone(),
            version: None,
        };
        rego = Some(("spec.targets[0].rego".into(), source));
    }
    for engine in engines {
        match (engine, &rego, &cel) {
            (GatekeeperEngine::Rego, Some((field, source)), _) => {
                return rego_code(found, field, source, inventory)
            }
            (GatekeeperEngine::K8sNativeValidation, _, Some((field, source))) => {
                check_source(source).map_err(|e| format!("{field}.{e}"))?;
                return Ok(Code::Cel(source.clone()));
            }
            _ => {}
        }
    }
    let has: Vec<&str> = [
        rego.as_ref().map(|_| "Rego"),
        cel.as_ref().map(|_| "K8sNativeValidation"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Err(format!(
        "spec.targets[0]: the template has code for {has:?}, and gatekeeper.engines allows \
         {engines:?}; add one of its engines to gatekeeper.engines"
    ))
}

fn rego_code(
    found: &Found<types::ConstraintTemplate>,
    field: &str,
    source: &RegoSource,
    inventory: &Value,
) -> Result<Code, String> {
    let v1 = match source.version.as_deref() {
        None | Some("v0") => false,
        Some("v1") => true,
        Some(other) => {
            return Err(format!(
                "{}: version {}; use v0 or v1",
                field.trim_end_matches(".rego"),
                quote(other)
            ))
        }
    };
    let line = source_line(&found.text, &source.rego);
    let program = RegoProgram::compile(
        &found.object.metadata.name,
        &found.file,
        line,
        &source.rego,
        &source.libs,
        v1,
        inventory,
    )
    .map_err(|e| format!("{field}: {e}"))?;
    Ok(Code::Rego(Arc::new(program)))
}

/// Checks a Constraint against the loaded `templates`.
pub(crate) fn constraint(
    found: &Found<types::Constraint>,
    templates: &[Template],
) -> Result<Constraint, Vec<String>> {
    let c = &found.object;
    let one = |m: String| vec![m];
    if c.metadata.name.is_empty() {
        return Err(one("metadata.name: required".into()));
    }
    let Some(template) = templates.iter().position(|t| t.kind == c.kind) else {
        let kinds: Vec<&str> = templates.iter().map(|t| t.kind.as_str()).collect();
        return Err(one(format!(
            "kind {}: no ConstraintTemplate in policyDir defines it (loaded: {kinds:?}); add \
             the template, or fix the kind",
            quote(&c.kind)
        )));
    };
    let match_ = c.spec.match_.clone().unwrap_or_default();
    check_match(&match_).map_err(one)?;
    let enforcement = Enforcement::parse(
        c.spec.enforcement_action.as_deref(),
        c.spec.scoped_enforcement_actions.as_deref(),
    )
    .map_err(one)?;
    let raw = c.spec.parameters.clone().unwrap_or(Value::Null);
    let parameters = templates[template].schema.apply(&raw).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| {
                format!(
                    "{p} (schema of ConstraintTemplate {})",
                    quote(&templates[template].name)
                )
            })
            .collect::<Vec<_>>()
    })?;
    let parameters = if parameters.is_null() {
        Value::Object(Default::default())
    } else {
        parameters
    };
    let object = serde_json::json!({
        "apiVersion": c.api_version,
        "kind": c.kind,
        "metadata": {"name": c.metadata.name, "labels": c.metadata.labels,
                     "annotations": c.metadata.annotations},
        "spec": {"parameters": parameters},
    });
    Ok(Constraint {
        kind: c.kind.clone(),
        name: c.metadata.name.clone(),
        template,
        match_,
        parameters,
        at_webhook: enforcement.actions(Point::Webhook),
        at_audit: enforcement.actions(Point::Audit),
        object,
    })
}

fn check_match(m: &Match) -> Result<(), String> {
    for (field, list) in [
        ("namespaces", &m.namespaces),
        ("excludedNamespaces", &m.excluded_namespaces),
    ] {
        for (i, pattern) in list.iter().enumerate() {
            check_wildcard(pattern).map_err(|e| format!("spec.match.{field}[{i}]: {e}"))?;
        }
    }
    if let Some(name) = &m.name {
        check_wildcard(name).map_err(|e| format!("spec.match.name: {e}"))?;
    }
    if let Some(scope) = m
        .scope
        .as_deref()
        .filter(|s| !["*", "Cluster", "Namespaced"].contains(s))
    {
        return Err(format!(
            "spec.match.scope: {}; use *, Cluster or Namespaced",
            quote(scope)
        ));
    }
    if let Some(source) = m
        .source
        .as_deref()
        .filter(|s| !["All", "Original", "Generated"].contains(s))
    {
        return Err(format!(
            "spec.match.source: {}; use All, Original or Generated",
            quote(source)
        ));
    }
    for (field, selector) in [
        ("labelSelector", &m.label_selector),
        ("namespaceSelector", &m.namespace_selector),
    ] {
        if let Some(Err(e)) = selector.as_ref().map(|s| s.validate()) {
            return Err(format!("spec.match.{field}.{}: {}", e.field, e.message));
        }
    }
    Ok(())
}

/// An issue of `found`'s object.
pub(crate) fn issue<T>(found: &Found<T>, what: &str, message: String) -> LoadIssue {
    LoadIssue {
        file: found.file.clone(),
        line: Some(found.line),
        message: format!("{what}: {message}"),
    }
}
