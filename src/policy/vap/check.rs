//! The checks a policy or binding must pass beyond its YAML shape (upstream's API
//! validation, and consistency between bindings and policies), and compiling every
//! expression of a policy.

use std::collections::BTreeSet;
use std::path::Path;

use super::compiled::{Binding, Compiled, CompiledMutation, CompiledValidation, LoadIssue, Policy};
use super::expr;
use super::expr::Literals;
use super::types::*;
use crate::policy::quote;

pub(crate) struct Loader<'a> {
    pub file: &'a Path,
    pub issues: &'a mut Vec<LoadIssue>,
}

impl Loader<'_> {
    pub fn issue(&mut self, line: Option<u64>, message: String) {
        self.issues.push(LoadIssue {
            file: self.file.to_owned(),
            line,
            message,
        });
    }

    fn compile(&mut self, what: &str, field: &str, e: &Expression) -> Option<Compiled> {
        self.compile_with(what, field, e, Literals::None)
    }

    fn compile_with(
        &mut self,
        what: &str,
        field: &str,
        e: &Expression,
        literals: Literals,
    ) -> Option<Compiled> {
        match expr::compile_with(&e.value, literals) {
            Ok(program) => Some(Compiled {
                source: e.value.clone(),
                program,
            }),
            Err(err) => {
                let line = e.referenced.line();
                self.issue(
                    (line > 0).then_some(line),
                    format!("{what}: {field}: compile error: {err}: {}", quote(&e.value)),
                );
                None
            }
        }
    }

    /// What both kinds of policy have: `variables` and `matchConditions`, compiled.
    #[allow(clippy::type_complexity)]
    fn shared(
        &mut self,
        what: &str,
        spec_variables: &[NamedExpression],
        match_conditions: &[NamedExpression],
        literals: Literals,
    ) -> (Vec<(String, Compiled)>, Vec<(String, Compiled)>) {
        let mut seen = BTreeSet::new();
        let mut variables = Vec::new();
        for (i, v) in spec_variables.iter().enumerate() {
            if !is_identifier(&v.name) || !seen.insert(v.name.clone()) {
                self.issue(
                    Some(v.expression.referenced.line()),
                    format!("{what}: spec.variables[{i}].name: {} is not a CEL identifier or is not unique",
                        quote(&v.name)),
                );
            }
            let field = format!("spec.variables[{i}].expression");
            variables.extend(
                self.compile_with(what, &field, &v.expression, literals)
                    .map(|c| (v.name.clone(), c)),
            );
        }
        let mut seen = BTreeSet::new();
        let mut conditions = Vec::new();
        for (i, c) in match_conditions.iter().enumerate() {
            if c.name.is_empty() || !seen.insert(c.name.clone()) {
                self.issue(
                    Some(c.expression.referenced.line()),
                    format!("{what}: spec.matchConditions[{i}].name must be set and unique"),
                );
            }
            let field = format!("spec.matchConditions[{i}].expression");
            conditions.extend(
                self.compile_with(what, &field, &c.expression, literals)
                    .map(|p| (c.name.clone(), p)),
            );
        }
        (variables, conditions)
    }

    pub fn policy(&mut self, p: ValidatingAdmissionPolicy) -> Option<Policy> {
        let name = p.metadata.name;
        let what = format!("{POLICY_KIND} {}", quote(&name));
        let before = self.issues.len();
        if name.is_empty() {
            self.issue(None, format!("{POLICY_KIND}: metadata.name is required"));
        }
        let spec = p.spec;
        let constraints = spec.match_constraints.unwrap_or_default();
        if constraints.resource_rules.is_empty() {
            self.issue(
                None,
                format!("{what}: spec.matchConstraints.resourceRules is required"),
            );
        }
        if spec.validations.is_empty() && spec.audit_annotations.is_empty() {
            self.issue(
                None,
                format!("{what}: spec.validations or spec.auditAnnotations is required"),
            );
        }
        let (variables, conditions) = self.shared(
            &what,
            &spec.variables,
            &spec.match_conditions,
            Literals::None,
        );
        let validations = self.validations(&what, &spec.validations);
        let audit = self.audit_annotations(&what, &spec.audit_annotations);
        (self.issues.len() == before).then(|| Policy {
            name,
            param_kind: spec.param_kind,
            match_constraints: constraints,
            failure_policy: spec.failure_policy.unwrap_or_default(),
            match_conditions: conditions,
            variables,
            validations,
            audit_annotations: audit,
            mutations: Vec::new(),
        })
    }

    /// `spec.validations`, compiled; a validation whose messageExpression does not compile
    /// is left out (its problem is reported).
    fn validations(
        &mut self,
        what: &str,
        spec_validations: &[Validation],
    ) -> Vec<CompiledValidation> {
        let mut validations = Vec::new();
        for (i, v) in spec_validations.iter().enumerate() {
            let reason = v.reason.clone().unwrap_or_else(|| "Invalid".into());
            if ![
                "Unauthorized",
                "Forbidden",
                "Invalid",
                "RequestEntityTooLarge",
            ]
            .contains(&reason.as_str())
            {
                self.issue(
                    Some(v.expression.referenced.line()),
                    format!(
                        "{what}: spec.validations[{i}].reason: unsupported value {}",
                        quote(&reason)
                    ),
                );
            }
            let expression = self.compile(
                what,
                &format!("spec.validations[{i}].expression"),
                &v.expression,
            );
            let message_expression = match &v.message_expression {
                None => None,
                Some(m) => {
                    match self.compile(what, &format!("spec.validations[{i}].messageExpression"), m)
                    {
                        None => continue,
                        some => some,
                    }
                }
            };
            if let Some(expression) = expression {
                validations.push(CompiledValidation {
                    expression,
                    message: v.message.clone(),
                    message_expression,
                    reason,
                });
            }
        }
        validations
    }

    /// `spec.auditAnnotations`, compiled, by key.
    fn audit_annotations(
        &mut self,
        what: &str,
        annotations: &[AuditAnnotation],
    ) -> Vec<(String, Compiled)> {
        let mut seen = BTreeSet::new();
        let mut audit = Vec::new();
        for (i, a) in annotations.iter().enumerate() {
            if a.key.is_empty() || !seen.insert(a.key.clone()) {
                self.issue(
                    Some(a.value_expression.referenced.line()),
                    format!("{what}: spec.auditAnnotations[{i}].key must be set and unique"),
                );
            }
            let field = format!("spec.auditAnnotations[{i}].valueExpression");
            audit.extend(
                self.compile(what, &field, &a.value_expression)
                    .map(|c| (a.key.clone(), c)),
            );
        }
        audit
    }

    pub fn mutating_policy(&mut self, p: MutatingAdmissionPolicy) -> Option<Policy> {
        let name = p.metadata.name;
        let kind = MUTATING_POLICY_KIND;
        let what = format!("{kind} {}", quote(&name));
        let before = self.issues.len();
        if name.is_empty() {
            self.issue(None, format!("{kind}: metadata.name is required"));
        }
        let spec = p.spec;
        let constraints = spec.match_constraints.unwrap_or_default();
        if constraints.resource_rules.is_empty() {
            let m = format!("{what}: spec.matchConstraints.resourceRules is required");
            self.issue(None, m);
        }
        if spec.mutations.is_empty() {
            self.issue(None, format!("{what}: spec.mutations is required"));
        }
        let literals = Literals::Mutation;
        let (variables, conditions) =
            self.shared(&what, &spec.variables, &spec.match_conditions, literals);
        let mut mutations = Vec::new();
        for (i, m) in spec.mutations.iter().enumerate() {
            // Upstream validation: the field the patch type names, and only that one.
            let (wanted, wanted_field, other, other_field) = match m.patch_type {
                PatchType::JsonPatch => (
                    &m.json_patch,
                    "jsonPatch",
                    &m.apply_configuration,
                    "applyConfiguration",
                ),
                PatchType::ApplyConfiguration => (
                    &m.apply_configuration,
                    "applyConfiguration",
                    &m.json_patch,
                    "jsonPatch",
                ),
            };
            let type_name = match m.patch_type {
                PatchType::JsonPatch => "JSONPatch",
                PatchType::ApplyConfiguration => "ApplyConfiguration",
            };
            if other.is_some() {
                let m = format!(
                    "{what}: spec.mutations[{i}].{other_field}: Forbidden: must not be \
                     specified when patchType is {type_name}"
                );
                self.issue(None, m);
            }
            let Some(wanted) = wanted else {
                let m = format!(
                    "{what}: spec.mutations[{i}].{wanted_field}: Required value: must be \
                     specified when patchType is {type_name}"
                );
                self.issue(None, m);
                continue;
            };
            let field = format!("spec.mutations[{i}].{wanted_field}.expression");
            if let Some(expression) = self.compile_with(&what, &field, &wanted.expression, literals)
            {
                mutations.push(CompiledMutation {
                    patch_type: m.patch_type,
                    expression,
                });
            }
        }
        (self.issues.len() == before).then(|| Policy {
            name,
            param_kind: spec.param_kind,
            match_constraints: constraints,
            failure_policy: spec.failure_policy.unwrap_or_default(),
            match_conditions: conditions,
            variables,
            validations: Vec::new(),
            audit_annotations: Vec::new(),
            mutations,
        })
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, as upstream requires of variable names.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The parts of a binding both kinds share.
pub(crate) struct BindingFields {
    pub name: String,
    pub policy_name: String,
    pub param_ref: Option<ParamRef>,
    pub match_resources: Option<MatchResources>,
}

pub(crate) fn binding(
    loader: &mut Loader,
    b: ValidatingAdmissionPolicyBinding,
    policies: &[Policy],
) -> Option<Binding> {
    let fields = BindingFields {
        name: b.metadata.name,
        policy_name: b.spec.policy_name,
        param_ref: b.spec.param_ref,
        match_resources: b.spec.match_resources,
    };
    let actions = b.spec.validation_actions;
    bind(
        loader,
        (POLICY_KIND, BINDING_KIND),
        fields,
        Some(actions),
        policies,
    )
}

pub(crate) fn mutating_binding(
    loader: &mut Loader,
    b: MutatingAdmissionPolicyBinding,
    policies: &[Policy],
) -> Option<Binding> {
    let fields = BindingFields {
        name: b.metadata.name,
        policy_name: b.spec.policy_name,
        param_ref: b.spec.param_ref,
        match_resources: b.spec.match_resources,
    };
    let kinds = (MUTATING_POLICY_KIND, MUTATING_BINDING_KIND);
    bind(loader, kinds, fields, None, policies)
}

/// Checks a binding of a policy of `kinds.0` against `policies`; `actions` are the
/// `validationActions` of a validating binding (a mutating one has none).
fn bind(
    loader: &mut Loader,
    (policy_kind, binding_kind): (&str, &str),
    b: BindingFields,
    actions: Option<Vec<ValidationAction>>,
    policies: &[Policy],
) -> Option<Binding> {
    let name = b.name;
    let what = format!("{binding_kind} {}", quote(&name));
    let before = loader.issues.len();
    if name.is_empty() {
        loader.issue(None, format!("{binding_kind}: metadata.name is required"));
    }
    let policy = policies.iter().position(|p| p.name == b.policy_name);
    if policy.is_none() {
        let m = format!(
            "{what}: spec.policyName: no {policy_kind} {} is loaded",
            quote(&b.policy_name)
        );
        loader.issue(None, m);
    }
    if let Some(actions) = &actions {
        let unique: BTreeSet<_> = actions.iter().collect();
        if actions.is_empty() || unique.len() != actions.len() {
            let m = format!(
                "{what}: spec.validationActions must list Deny, Warn or Audit, each at most once"
            );
            loader.issue(None, m);
        }
        if actions.contains(&ValidationAction::Deny) && actions.contains(&ValidationAction::Warn) {
            let m =
                format!("{what}: spec.validationActions: Deny and Warn may not be used together");
            loader.issue(None, m);
        }
    }
    let param_kind = policy.and_then(|i| policies[i].param_kind.as_ref());
    match (&b.param_ref, param_kind) {
        (Some(r), Some(_)) if r.name.is_some() == r.selector.is_some() => {
            let m = format!("{what}: spec.paramRef needs exactly one of name and selector");
            loader.issue(None, m);
        }
        (Some(_), None) if policy.is_some() => {
            let m = format!("{what}: spec.paramRef is set but the policy has no spec.paramKind");
            loader.issue(None, m);
        }
        (None, Some(kind)) => {
            let m = format!(
                "{what}: the policy has spec.paramKind {} {}, so spec.paramRef is required",
                kind.api_version, kind.kind
            );
            loader.issue(None, m);
        }
        _ => {}
    }
    (loader.issues.len() == before).then(|| Binding {
        name,
        policy: policy.unwrap_or_default(),
        param_ref: b.param_ref,
        match_resources: b.match_resources,
        actions: actions.unwrap_or_default(),
    })
}
