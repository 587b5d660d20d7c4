//! Typed message literals — `JSONPatch{op: "add", path: "/x", value: 1}` and
//! `Object{spec: Object.spec{...}}` — which MutatingAdmissionPolicy expressions build
//! (k8s.io/apiserver/pkg/cel/mutation).
//!
//! Why a rewrite: the `cel` crate (0.13) parses `T{field: value}` into a struct
//! expression but its interpreter does not evaluate one (`todo!("Support structs!")`, a
//! panic), and it has no type provider to register `JSONPatch` or `Object` with. Both
//! types are, to a Kubernetes policy, plain JSON objects with string keys, so at compile
//! time each struct literal is rewritten into the map literal `{"field": value}` that
//! evaluates to the same JSON. What the rewrite loses is the type: the checks upstream's
//! type checker makes are made here instead, on the tree —
//! - only `JSONPatch` and `Object`/`Object.<path>` may be built, and only in a mutating
//!   policy's expressions (elsewhere a literal is refused, as upstream, where no such
//!   type is declared);
//! - `JSONPatch` has the fields `op`, `path`, `from` and `value` only;
//! - a literal written directly as a field of an `Object` literal (or as an element of a
//!   list literal there) must be named after the field's path, as upstream's
//!   `CheckTypeNamesMatchFieldPathNames` requires at run time.
//!
//! At run time a patch value is then any map with the right keys: unlike upstream, a
//! plain `{"op": "add", ...}` map is accepted where a `JSONPatch` is expected.

use cel::common::ast::{EntryExpr, Expr, LiteralValue, MapEntryExpr};
use cel::common::types::CelString;
use cel::IdedExpr;

/// Which typed literals an expression may build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literals {
    /// None (ValidatingAdmissionPolicy).
    None,
    /// `JSONPatch` and `Object` (MutatingAdmissionPolicy).
    Mutation,
}

pub const JSON_PATCH: &str = "JSONPatch";
pub const OBJECT: &str = "Object";
const JSON_PATCH_FIELDS: [&str; 4] = ["op", "path", "from", "value"];

/// Rewrites every struct literal of `expr` into a map literal, checking it first.
pub(crate) fn lower(expr: &mut IdedExpr, allowed: Literals) -> Result<(), String> {
    match &mut expr.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Ok(()),
        Expr::Call(call) => {
            if let Some(target) = call.target.as_deref_mut() {
                lower(target, allowed)?;
            }
            call.args.iter_mut().try_for_each(|a| lower(a, allowed))
        }
        Expr::Comprehension(c) => {
            lower(&mut c.iter_range, allowed)?;
            lower(&mut c.accu_init, allowed)?;
            lower(&mut c.loop_cond, allowed)?;
            lower(&mut c.loop_step, allowed)?;
            lower(&mut c.result, allowed)
        }
        Expr::List(list) => list.elements.iter_mut().try_for_each(|e| lower(e, allowed)),
        Expr::Select(select) => lower(&mut select.operand, allowed),
        Expr::Map(map) => map
            .entries
            .iter_mut()
            .try_for_each(|entry| match &mut entry.expr {
                EntryExpr::MapEntry(e) => {
                    lower(&mut e.key, allowed)?;
                    lower(&mut e.value, allowed)
                }
                // The parser makes map entries only.
                EntryExpr::StructField(f) => lower(&mut f.value, allowed),
            }),
        Expr::Struct(s) => {
            let name = s.type_name.trim_start_matches('.').to_owned();
            check_type(&name, allowed)?;
            let mut entries = Vec::with_capacity(s.entries.len());
            for entry in std::mem::take(&mut s.entries) {
                let EntryExpr::StructField(mut field) = entry.expr else {
                    return Err(format!("{name}: a field initializer must name a field"));
                };
                if name == JSON_PATCH && !JSON_PATCH_FIELDS.contains(&field.field.as_str()) {
                    return Err(format!(
                        "undefined field '{}' of type {JSON_PATCH}",
                        field.field
                    ));
                }
                if name.starts_with(OBJECT) {
                    check_nested(&format!("{name}.{}", field.field), &field.value)?;
                }
                lower(&mut field.value, allowed)?;
                let key = IdedExpr {
                    id: entry.id,
                    expr: Expr::Literal(LiteralValue::String(CelString::from(field.field))),
                };
                entries.push(cel::common::ast::IdedEntryExpr {
                    id: entry.id,
                    expr: EntryExpr::MapEntry(MapEntryExpr {
                        key,
                        value: field.value,
                        optional: field.optional,
                    }),
                });
            }
            expr.expr = Expr::Map(cel::common::ast::MapExpr { entries });
            Ok(())
        }
    }
}

fn check_type(name: &str, allowed: Literals) -> Result<(), String> {
    let known = name == JSON_PATCH
        || name == OBJECT
        || name
            .strip_prefix("Object.")
            .is_some_and(|rest| !rest.is_empty() && rest.split('.').all(|part| !part.is_empty()));
    if allowed == Literals::Mutation && known {
        Ok(())
    } else {
        Err(format!(
            "undeclared reference to '{name}' (in container '')"
        ))
    }
}

/// A literal given directly as the field `expected` names (or as an element of a list
/// literal there) must carry that name.
fn check_nested(expected: &str, value: &IdedExpr) -> Result<(), String> {
    let check = |e: &IdedExpr| match &e.expr {
        Expr::Struct(s) if s.type_name.trim_start_matches('.') != expected => Err(format!(
            "type mismatch: unexpected type name \"{}\", expected \"{expected}\", which matches \
             field name path from root Object type",
            s.type_name
        )),
        _ => Ok(()),
    };
    match &value.expr {
        Expr::List(list) => list.elements.iter().try_for_each(check),
        _ => check(value),
    }
}

#[cfg(test)]
mod tests {
    use super::super::expr::{cel_to_json, compile, compile_with, root_context, run};
    use super::*;

    fn eval(source: &str) -> serde_json::Value {
        let program = compile_with(source, Literals::Mutation).unwrap();
        cel_to_json(&run(&program, &root_context()).unwrap()).unwrap()
    }

    #[test]
    fn typed_literals_evaluate_to_their_json() {
        assert_eq!(
            eval(r#"[JSONPatch{op: "add", path: "/a", value: {"b": 1}}]"#),
            serde_json::json!([{"op": "add", "path": "/a", "value": {"b": 1}}])
        );
        assert_eq!(
            eval(r#"Object{spec: Object.spec{containers: [Object.spec.containers{name: "x"}]}}"#),
            serde_json::json!({"spec": {"containers": [{"name": "x"}]}})
        );
        assert_eq!(eval(r#"has(JSONPatch{}.op)"#), serde_json::json!(false));
        assert_eq!(
            eval(r#"JSONPatch{op: "add"} == JSONPatch{op: "add"}"#),
            serde_json::json!(true)
        );
    }

    #[test]
    fn typed_literals_are_checked() {
        let err = |s: &str| compile_with(s, Literals::Mutation).unwrap_err();
        assert_eq!(
            err("Foo{}"),
            "undeclared reference to 'Foo' (in container '')"
        );
        assert_eq!(
            err("JSONPatch{opp: 1}"),
            "undefined field 'opp' of type JSONPatch"
        );
        assert_eq!(
            err("Object{spec: Object.specx{}}"),
            "type mismatch: unexpected type name \"Object.specx\", expected \"Object.spec\", \
             which matches field name path from root Object type"
        );
        assert!(err("Object{spec: Object.spec{c: [Object.spec.d{}]}}").contains("Object.spec.c"));
        // Not in a ValidatingAdmissionPolicy.
        assert!(compile("JSONPatch{}").is_err());
    }
}
