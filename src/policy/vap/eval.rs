//! One policy evaluated for one request, one binding and one params object: upstream
//! `validator.Validate` (k8s.io/apiserver/pkg/admission/plugin/policy/validating).
//! Pure: CEL values in, decisions out; the caller applies `failurePolicy` and the
//! binding's `validationActions`.

use std::collections::BTreeMap;

use cel::{Context, ExecutionError, Value};

use super::compiled::{Compiled, Policy};
use super::expr::{self, map_of, run, type_name, MAX_MESSAGE_BYTES};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// A validation evaluated to false.
    Violation {
        index: usize,
        message: String,
        reason: String,
    },
    /// A match condition, variable or validation could not be evaluated; `failurePolicy`
    /// decides, and under `Fail` the binding's actions apply to the message.
    Error { index: usize, message: String },
    /// An audit annotation could not be evaluated; under `Fail` it refuses outright.
    AnnotationError(String),
}

#[derive(Debug, Default)]
pub(crate) struct Output {
    pub decisions: Vec<Decision>,
    /// `(key, value)` of `auditAnnotations` that produced a value.
    pub annotations: Vec<(String, String)>,
}

pub(crate) fn error_message(
    c: &Compiled,
    e: &ExecutionError,
    failed: &BTreeMap<String, String>,
) -> String {
    let detail = match e {
        ExecutionError::NoSuchKey(k) if failed.contains_key(k.as_str()) => {
            format!("variable '{k}' failed: {}", failed[k.as_str()])
        }
        e => e.to_string(),
    };
    format!(
        "expression '{}' resulted in error: {detail}",
        c.source.trim()
    )
}

/// Evaluates `c` to a bool; anything else is an error.
fn boolean(c: &Compiled, ctx: &Context, failed: &BTreeMap<String, String>) -> Result<bool, String> {
    match run(&c.program, ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "expression '{}' resulted in error: must evaluate to bool, not {}",
            c.source.trim(),
            type_name(&other)
        )),
        Err(e) => Err(error_message(c, &e, failed)),
    }
}

/// Evaluates `policy` in `scope`, the request's scope from [`request_scope`].
pub(crate) fn evaluate(scope: &Context, policy: &Policy, params: Value) -> Output {
    let mut ctx = scope.new_inner_scope();
    ctx.add_variable_from_value("params", params);
    ctx.add_variable_from_value("variables", map_of(&[]));
    let mut out = Output::default();

    match match_conditions(policy, &ctx) {
        Ok(true) => {}
        Ok(false) => return out,
        Err(message) => {
            out.decisions.push(Decision::Error { index: 0, message });
            return out;
        }
    }
    let failed = variables(policy, &mut ctx);

    for (index, v) in policy.validations.iter().enumerate() {
        match boolean(&v.expression, &ctx, &failed) {
            Ok(true) => {}
            Ok(false) => out.decisions.push(Decision::Violation {
                index,
                message: message(v.message_expression.as_ref(), &ctx)
                    .or_else(|| {
                        v.message
                            .as_deref()
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| {
                        format!("failed expression: {}", v.expression.source.trim())
                    }),
                reason: v.reason.clone(),
            }),
            Err(message) => out.decisions.push(Decision::Error { index, message }),
        }
    }

    for (key, c) in &policy.audit_annotations {
        match run(&c.program, &ctx) {
            Ok(Value::String(s)) if !s.trim().is_empty() => {
                out.annotations.push((key.clone(), s.trim().to_owned()))
            }
            Ok(Value::String(_)) | Ok(Value::Null) => {}
            Ok(other) => out.decisions.push(Decision::AnnotationError(format!(
                "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
                c.source,
                type_name(&other)
            ))),
            Err(e) => out
                .decisions
                .push(Decision::AnnotationError(error_message(c, &e, &failed))),
        }
    }
    out
}

/// Upstream matchconditions: any false skips the policy (`Ok(false)`), even when
/// another errs; otherwise errors are joined.
pub(crate) fn match_conditions(policy: &Policy, ctx: &Context) -> Result<bool, String> {
    let none = BTreeMap::new();
    let mut errors = Vec::new();
    for (_, condition) in &policy.match_conditions {
        match boolean(condition, ctx, &none) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(errors.join(", "))
    }
}

/// Variables, in order, each seeing those before it, set as `variables` in `ctx`. A
/// failed variable is left out and only matters to the expressions that use it
/// (upstream evaluates them lazily): the map returned says why each failed.
pub(crate) fn variables(policy: &Policy, ctx: &mut Context) -> BTreeMap<String, String> {
    let mut values: Vec<(String, Value)> = Vec::new();
    let mut failed = BTreeMap::new();
    for (name, c) in &policy.variables {
        match run(&c.program, ctx) {
            Ok(v) => {
                values.push((name.clone(), v));
                ctx.add_variable_from_value("variables", map_of(&values));
            }
            Err(e) => {
                failed.insert(name.clone(), error_message(c, &e, &failed));
            }
        }
    }
    failed
}

/// A `messageExpression`'s message, when it yields a usable one: a string, trimmed,
/// non-empty, one line, at most 5 KiB (upstream falls back to `message` otherwise).
fn message(c: Option<&Compiled>, ctx: &Context) -> Option<String> {
    match run(&c?.program, ctx) {
        Ok(Value::String(s)) => {
            let m = s.trim();
            (!m.is_empty() && m.len() <= MAX_MESSAGE_BYTES && !m.contains('\n'))
                .then(|| m.to_owned())
        }
        _ => None,
    }
}

/// A scope below `root` holding the CEL variables every policy sees for one request
/// (`object`, `oldObject`, `request`, `namespaceObject`, and Portcullis's
/// `imageVerification`). Built once per request: the
/// cel crate converts a variable's whole value when it is added, so adding the Pod once
/// per binding would cost more than evaluating most policies. `request` is the
/// AdmissionRequest without its objects.
pub(crate) fn request_scope<'a>(
    root: &'a Context<'a>,
    request: &crate::review::AdmissionRequest,
    namespace_object: &serde_json::Value,
) -> Result<Context<'a>, String> {
    let mut req = serde_json::to_value(request).map_err(|e| e.to_string())?;
    if let Some(fields) = req.as_object_mut() {
        fields.remove("object");
        fields.remove("oldObject");
        for key in ["name", "namespace"] {
            fields
                .entry(key)
                .or_insert_with(|| serde_json::Value::String(String::new()));
        }
        fields
            .entry("dryRun")
            .or_insert(serde_json::Value::Bool(false));
    }
    let value = |v: Option<&serde_json::Value>| v.map_or(Ok(Value::Null), expr::json_to_cel);
    let mut scope = root.new_inner_scope();
    scope.add_variable_from_value("object", value(request.object.as_ref())?);
    scope.add_variable_from_value("oldObject", value(request.old_object.as_ref())?);
    scope.add_variable_from_value("request", expr::json_to_cel(&req)?);
    scope.add_variable_from_value("namespaceObject", expr::json_to_cel(namespace_object)?);
    // Portcullis's own: the image signature check's report by container name
    // (docs/image-verification.md), empty when no trust policy is loaded.
    let reports = serde_json::to_value(&request.image_verification).map_err(|e| e.to_string())?;
    scope.add_variable_from_value("imageVerification", expr::json_to_cel(&reports)?);
    Ok(scope)
}
