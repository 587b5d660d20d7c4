//! CEL with bounds: compiling an expression once, converting JSON into CEL values, and
//! running a program so that no input can crash the process.
//!
//! The `cel` crate (0.13) has no cost model and no cancellation, and both its parser
//! and its interpreter recurse on the expression tree. So, unlike kube-apiserver (which
//! estimates and meters a CEL cost budget), Portcullis bounds:
//! - the **size** of each expression ([`MAX_EXPRESSION_BYTES`]) — with the parser's own
//!   nesting limit (96) this bounds the recursion depth of parsing and evaluating;
//! - the **stack**: compiling and evaluating run on a thread with [`STACK_BYTES`] of
//!   stack, and a panic there is an error, not a crash;
//! - the **time** of one evaluation (see `PolicySet::with_time_limit`);
//! - `lists.range(n)` to [`MAX_RANGE`] elements. Memory is otherwise *not* bounded: an
//!   expression that builds huge values (strings doubled through variables) can exhaust it.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, IdedExpr, ResolveResult, Value};
use kube_cel::KubeCelExt;

pub use super::literal::Literals;

/// The longest expression accepted, in bytes. Long enough for any policy we have seen,
/// short enough that a chain of operators cannot overflow [`STACK_BYTES`] even in a
/// debug build.
pub const MAX_EXPRESSION_BYTES: usize = 2048;

/// The stack of the threads that compile and evaluate CEL (reserved, not committed).
pub const STACK_BYTES: usize = 64 << 20;

/// How deep a JSON value may nest to be converted (objects from a JSON parser stop at 128).
const MAX_JSON_DEPTH: usize = 200;

/// Kubernetes' `MaxEvaluatedMessageExpressionSizeBytes`.
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// A compiled expression: the parsed tree, with typed literals lowered (see
/// [`super::literal`]). `cel::Program` cannot be built from a tree, so this stands in
/// for it; running it is what `cel::Program::execute` does.
#[derive(Debug)]
pub struct Program {
    expr: IdedExpr,
}

impl Program {
    pub fn execute(&self, ctx: &Context) -> ResolveResult {
        Value::resolve(&self.expr, ctx)
    }
}

/// Parses `source`, refusing what the bounds above refuse, and typed literals (`T{...}`).
/// Must run on a big stack.
#[cfg(test)]
pub fn compile(source: &str) -> Result<Program, String> {
    compile_with(source, Literals::None)
}

/// [`compile`], accepting the typed literals `literals` allows.
pub fn compile_with(source: &str, literals: Literals) -> Result<Program, String> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "expression is {} bytes long; at most {MAX_EXPRESSION_BYTES} are accepted",
            source.len()
        ));
    }
    if source.trim().is_empty() {
        return Err("expression is empty".into());
    }
    // In debug builds the parser's depth counter can overflow on deep input and panic.
    let parsed = std::panic::catch_unwind(|| cel::parser::Parser::default().parse(source));
    let mut expr = match parsed {
        Ok(result) => result.map_err(|e| one_line(&e.to_string()))?,
        Err(_) => return Err("the expression nests too deeply".into()),
    };
    super::literal::lower(&mut expr, literals)?;
    Ok(Program { expr })
}

/// The parser's multi-line report (with a caret drawing) as one line.
fn one_line(report: &str) -> String {
    let first = report.lines().next().unwrap_or(report);
    first
        .trim_start_matches("ERROR: ")
        .trim_start_matches("<input>:")
        .to_owned()
}

/// The longest list `lists.range` builds: the one constructor that turns a small
/// expression into an arbitrarily large value in one call.
pub const MAX_RANGE: i64 = 100_000;

/// The root context: the standard library and the Kubernetes extensions.
pub fn root_context() -> Context<'static> {
    let mut ctx = Context::default().with_all();
    ctx.add_function("lists.range", bounded_range);
    // CEL's standard `dyn(x)` (the value itself, its static type erased), which the
    // `cel` crate lacks and Kubernetes CEL has; templates build mixed maps with it.
    ctx.add_function("dyn", dyn_value);
    ctx
}

/// `dyn(x)`: `x`.
fn dyn_value(v: Value) -> ResolveResult {
    Ok(v)
}

/// kube-cel's `lists.range(n)`, refusing `n` above [`MAX_RANGE`].
fn bounded_range(n: i64) -> ResolveResult {
    if !(0..=MAX_RANGE).contains(&n) {
        return Err(ExecutionError::function_error(
            "lists.range",
            format!("the argument must be between 0 and {MAX_RANGE}"),
        ));
    }
    Ok(Value::List(Arc::new((0..n).map(Value::Int).collect())))
}

/// JSON as CEL sees Kubernetes objects: integers are `int` (`uint` only above
/// `i64::MAX`), other numbers `double`.
pub fn json_to_cel(value: &serde_json::Value) -> Result<Value, String> {
    convert(value, 0)
}

fn convert(value: &serde_json::Value, depth: usize) -> Result<Value, String> {
    use serde_json::Value as J;
    if depth > MAX_JSON_DEPTH {
        return Err(format!("value nests deeper than {MAX_JSON_DEPTH} levels"));
    }
    Ok(match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(items) => Value::List(Arc::new(
            items
                .iter()
                .map(|v| convert(v, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        J::Object(fields) => {
            let mut map = HashMap::with_capacity(fields.len());
            for (k, v) in fields {
                map.insert(Key::String(Arc::new(k.clone())), convert(v, depth + 1)?);
            }
            Value::Map(Map { map: Arc::new(map) })
        }
    })
}

/// A CEL value as JSON, for patches: maps need string keys; a double must be finite.
/// Durations and timestamps are not JSON values (upstream's conversion to
/// `structpb.Value` refuses them too).
pub fn cel_to_json(value: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} is not a JSON number"))?,
        Value::String(s) => J::String(s.to_string()),
        Value::List(items) => J::Array(items.iter().map(cel_to_json).collect::<Result<_, _>>()?),
        Value::Map(map) => {
            let mut fields = serde_json::Map::with_capacity(map.map.len());
            for (k, v) in map.map.iter() {
                let Key::String(k) = k else {
                    return Err(format!(
                        "a map key must be a string to become JSON, not {k:?}"
                    ));
                };
                fields.insert(k.to_string(), cel_to_json(v)?);
            }
            J::Object(fields)
        }
        other => return Err(format!("a {} value cannot become JSON", type_name(other))),
    })
}

/// A map value from named values (for `variables`).
pub fn map_of(entries: &[(String, Value)]) -> Value {
    let map: HashMap<Key, Value> = entries
        .iter()
        .map(|(k, v)| (Key::String(Arc::new(k.clone())), v.clone()))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

/// Runs `program`; an interpreter panic becomes an error.
pub fn run(program: &Program, ctx: &Context) -> Result<Value, ExecutionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(ctx))).unwrap_or_else(
        |_| {
            Err(ExecutionError::function_error(
                "<interpreter>",
                "the CEL interpreter panicked",
            ))
        },
    )
}

/// A CEL value's type name, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Duration(_) => "duration",
        Value::Timestamp(_) => "timestamp",
        Value::Opaque(_) => "opaque",
        Value::Null => "null",
    }
}
