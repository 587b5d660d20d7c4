//! MutatingAdmissionPolicy evaluation on a worker: upstream `dispatcher.dispatchInvocations`
//! (k8s.io/apiserver/pkg/admission/plugin/policy/mutating/dispatcher.go). Invocations —
//! a binding with one params object — run in order, each seeing the object as the ones
//! before left it; within one, the policy's `matchConditions` are asked once, then its
//! `mutations` run in order, each with `variables` evaluated afresh on the current object.
//! A mutation that fails is reported and the next one still runs, as upstream; the
//! caller applies `failurePolicy`.

use std::sync::Arc;

use cel::{Context, Value};
use serde_json::Value as Json;

use super::compiled::{CompiledMutation, Policy};
use super::eval::{self, error_message};
use super::expr::{self, map_of, run, type_name};
use super::load::Loaded;
use super::types::PatchType;
use super::{apply, patch};
use crate::review::AdmissionRequest;

/// Every invocation for one request.
pub(crate) struct MutationJob {
    pub request: AdmissionRequest,
    pub namespace_object: Json,
    /// `(mutating binding, params)`, in the order they run.
    pub invocations: Vec<(usize, Option<Arc<Json>>)>,
}

/// What one invocation did.
#[derive(Debug, Default)]
pub(crate) struct Invoked {
    /// The object after the invocation, when it changed it.
    pub object: Option<Json>,
    /// Why mutations (or the match conditions) failed.
    pub errors: Vec<String>,
}

impl Invoked {
    pub fn failed(message: String) -> Self {
        Self {
            object: None,
            errors: vec![message],
        }
    }
}

/// Runs the invocations of `job` in order, sending each one's result when it is done.
pub(crate) fn work_on(
    loaded: &Loaded,
    root: &Context,
    job: &MutationJob,
    send: &dyn Fn(usize, Invoked) -> bool,
) {
    let mut request = job.request.clone();
    for (i, (binding, params)) in job.invocations.iter().enumerate() {
        let policy = loaded
            .mutating_bindings
            .get(*binding)
            .and_then(|b| loaded.mutating.get(b.policy));
        let params = params.as_deref().map_or(Ok(Value::Null), expr::json_to_cel);
        let invoked = match (policy, params) {
            (Some(policy), Ok(params)) => {
                invoke(root, policy, &request, &job.namespace_object, params)
            }
            (None, _) => Invoked::failed("no such binding".into()),
            (_, Err(e)) => Invoked::failed(format!("cannot convert the params to CEL: {e}")),
        };
        if let Some(object) = &invoked.object {
            request.object = Some(object.clone());
        }
        if !send(i, invoked) {
            return; // The caller gave up waiting.
        }
    }
}

/// One policy, for one binding and one params object.
fn invoke(
    root: &Context,
    policy: &Policy,
    request: &AdmissionRequest,
    namespace: &Json,
    params: Value,
) -> Invoked {
    let mut out = Invoked::default();
    // Upstream calls no patcher when there is no object (a DELETE, a CONNECT).
    let Some(original) = request.object.as_ref() else {
        return out;
    };
    let pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    let mut current = request.clone();
    let mut scope = match eval::request_scope(root, &current, namespace) {
        Ok(scope) => scope,
        Err(e) => return Invoked::failed(format!("cannot convert the request to CEL: {e}")),
    };
    {
        let mut ctx = scope.new_inner_scope();
        ctx.add_variable_from_value("params", params.clone());
        ctx.add_variable_from_value("variables", map_of(&[]));
        match eval::match_conditions(policy, &ctx) {
            Ok(true) => {}
            Ok(false) => return out,
            Err(e) => return Invoked::failed(e),
        }
    }
    for mutation in &policy.mutations {
        let result = {
            let mut ctx = scope.new_inner_scope();
            ctx.add_variable_from_value("params", params.clone());
            ctx.add_variable_from_value("variables", map_of(&[]));
            let failed = eval::variables(policy, &mut ctx);
            let object = current.object.as_ref().unwrap_or(original);
            run(&mutation.expression.program, &ctx)
                .map_err(|e| error_message(&mutation.expression, &e, &failed))
                .and_then(|value| patched(mutation, object, &value, pod))
        };
        match result {
            Ok(object) if Some(&object) != current.object.as_ref() => {
                current.object = Some(object);
                scope = match eval::request_scope(root, &current, namespace) {
                    Ok(scope) => scope,
                    Err(e) => {
                        out.errors
                            .push(format!("cannot convert the request to CEL: {e}"));
                        break;
                    }
                };
            }
            Ok(_) => {}
            Err(e) => out.errors.push(e),
        }
    }
    if current.object.as_ref() != Some(original) {
        out.object = current.object;
    }
    out
}

/// The object as one mutation's result changes it.
fn patched(
    mutation: &CompiledMutation,
    object: &Json,
    value: &Value,
    pod: bool,
) -> Result<Json, String> {
    match mutation.patch_type {
        PatchType::JsonPatch => patch::apply(object, value),
        PatchType::ApplyConfiguration => {
            if !matches!(value, Value::Map(_)) {
                return Err(format!(
                    "must evaluate to Object but got {}",
                    type_name(value)
                ));
            }
            let config =
                expr::cel_to_json(value).map_err(|e| format!("invalid ApplyConfiguration: {e}"))?;
            apply::apply(object, config, pod)
        }
    }
}
