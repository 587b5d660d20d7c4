//! Applying a compiled [`ParameterSchema`](super::ParameterSchema) to a Constraint's
//! parameters in kube-apiserver's order: unknown fields (refused here, not pruned), nulls a
//! field may not hold dropped, defaults, then kube-openapi's checks. Recursion follows the
//! compiled schema; the caller has bounded the depth of schema and value.

use serde_json::{Map, Value};

use super::{Extra, Node, Ty};
use crate::policy::quote;

/// Prunes nothing, defaults, validates: `v` at `path` against `n`; problems go to `errs`.
pub(super) fn apply_node(n: &Node, v: &Value, path: &str, errs: &mut Vec<String>) -> Value {
    if v.is_null() {
        if n.nullable || (n.ty.is_none() && !n.int_or_string) {
            return Value::Null;
        }
        if let Some(d) = &n.default {
            return apply_node(n, d, path, errs);
        }
        errs.push(format!("{path}: must be {}, not null", expected(n)));
        return Value::Null;
    }
    if !type_ok(n, v) {
        errs.push(format!("{path}: must be {}, not {}", expected(n), show(v)));
        return v.clone();
    }
    let out = match (v, &n.items) {
        (Value::Object(m), _) => Value::Object(apply_object(n, m, path, errs)),
        (Value::Array(a), Some(items)) => (a.iter().enumerate())
            .map(|(i, x)| apply_node(items, x, &format!("{path}[{i}]"), errs))
            .collect(),
        _ => v.clone(),
    };
    check_value(n, &out, path, errs);
    out
}

fn apply_object(
    n: &Node,
    m: &Map<String, Value>,
    path: &str,
    errs: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut unknown = Vec::new();
    for (k, x) in m {
        let p = key_path(path, k);
        if let Some(prop) = n.properties.get(k) {
            // kube-apiserver drops a null it may not keep, then defaults it.
            if !x.is_null() || prop.nullable {
                out.insert(k.clone(), apply_node(prop, x, &p, errs));
            }
            continue;
        }
        match &n.additional {
            Extra::Schema(s) => {
                out.insert(k.clone(), apply_node(s, x, &p, errs));
            }
            Extra::Allow => {
                out.insert(k.clone(), x.clone());
            }
            _ if n.preserve_unknown => {
                out.insert(k.clone(), x.clone());
            }
            _ => unknown.push(p),
        }
    }
    for (k, prop) in &n.properties {
        if let (false, Some(d)) = (out.contains_key(k), &prop.default) {
            let value = apply_node(prop, d, &key_path(path, k), errs);
            out.insert(k.clone(), value);
        }
    }
    for p in unknown {
        let known: Vec<&str> = n.properties.keys().map(String::as_str).collect();
        errs.push(if known.is_empty() {
            format!("{p}: unknown field: the template's schema declares no fields here")
        } else {
            format!(
                "{p}: unknown field (misspelt?): the template's schema declares only {}",
                known.join(", ")
            )
        });
    }
    out
}

/// Validation only, no defaults or unknown fields: the schemas under allOf/anyOf/oneOf/not.
fn validate(n: &Node, v: &Value, path: &str, errs: &mut Vec<String>) {
    if v.is_null() {
        return;
    }
    if !type_ok(n, v) {
        return errs.push(format!("{path}: must be {}, not {}", expected(n), show(v)));
    }
    match (v, &n.items) {
        (Value::Object(m), _) => {
            for (k, p) in &n.properties {
                if let Some(x) = m.get(k) {
                    validate(p, x, &key_path(path, k), errs);
                }
            }
        }
        (Value::Array(a), Some(items)) => {
            for (i, x) in a.iter().enumerate() {
                validate(items, x, &format!("{path}[{i}]"), errs);
            }
        }
        _ => {}
    }
    check_value(n, v, path, errs);
}

/// The value checks of one schema on a value of the right type.
fn check_value(n: &Node, v: &Value, path: &str, errs: &mut Vec<String>) {
    if let Some(list) = &n.enumeration {
        if !list.iter().any(|e| json_eq(e, v)) {
            let allowed: Vec<String> = list.iter().map(show).collect();
            errs.push(format!(
                "{path}: must be one of {}, not {}",
                allowed.join(", "),
                show(v)
            ));
        }
    }
    let (bounds, len, unit) = match v {
        Value::Number(x) => {
            check_number(n, x.as_f64().unwrap_or(f64::NAN), path, errs);
            ((None, None), 0, "")
        }
        Value::String(s) => {
            if let Some(re) = n.pattern.as_ref().filter(|re| !re.is_match(s)) {
                let pattern = quote(re.as_str());
                errs.push(format!(
                    "{path}: must match the pattern {pattern}, not {}",
                    show(v)
                ));
            }
            (n.length, s.chars().count(), "characters")
        }
        Value::Array(a) => (n.item_count, a.len(), "items"),
        Value::Object(m) => {
            for k in n.required.iter().filter(|k| !m.contains_key(*k)) {
                errs.push(format!("{}: required field is missing", key_path(path, k)));
            }
            (n.field_count, m.len(), "fields")
        }
        _ => ((None, None), 0, ""),
    };
    let len = len as u64;
    if let Some(min) = bounds.0.filter(|&min| len < min) {
        errs.push(format!(
            "{path}: must have at least {min} {unit}, not {len}"
        ));
    }
    if let Some(max) = bounds.1.filter(|&max| len > max) {
        errs.push(format!("{path}: must have at most {max} {unit}, not {len}"));
    }
    junctors(n, v, path, errs);
}

fn check_number(n: &Node, x: f64, path: &str, errs: &mut Vec<String>) {
    if let Some((m, exclusive)) = n.minimum {
        if x < m || (exclusive && x <= m) {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(format!("{path}: must be {rel} {m}, not {x}"));
        }
    }
    if let Some((m, exclusive)) = n.maximum {
        if x > m || (exclusive && x >= m) {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(format!("{path}: must be {rel} {m}, not {x}"));
        }
    }
    if let Some(m) = n.multiple_of {
        let q = x / m;
        if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
            errs.push(format!("{path}: must be a multiple of {m}, not {x}"));
        }
    }
}

fn junctors(n: &Node, v: &Value, path: &str, errs: &mut Vec<String>) {
    for s in &n.all_of {
        validate(s, v, path, errs);
    }
    let branch = |s: &Node| {
        let mut e = Vec::new();
        validate(s, v, path, &mut e);
        e
    };
    let firsts = |results: &[Vec<String>], name: &str| -> String {
        let parts: Vec<String> = (results.iter().enumerate())
            .filter_map(|(i, e)| e.first().map(|f| format!("{name}[{i}]: {f}")))
            .collect();
        parts.join(" | ")
    };
    if !n.any_of.is_empty() {
        let results: Vec<Vec<String>> = n.any_of.iter().map(branch).collect();
        if results.iter().all(|e| !e.is_empty()) {
            errs.push(format!(
                "{path}: must match a schema of anyOf ({})",
                firsts(&results, "anyOf")
            ));
        }
    }
    if !n.one_of.is_empty() {
        let results: Vec<Vec<String>> = n.one_of.iter().map(branch).collect();
        let matched: Vec<String> = (results.iter().enumerate())
            .filter(|(_, e)| e.is_empty())
            .map(|(i, _)| format!("oneOf[{i}]"))
            .collect();
        match matched.len() {
            1 => {}
            0 => errs.push(format!(
                "{path}: must match exactly one schema of oneOf, matches none ({})",
                firsts(&results, "oneOf")
            )),
            _ => errs.push(format!(
                "{path}: must match exactly one schema of oneOf, matches {}",
                matched.join(", ")
            )),
        }
    }
    if n.not.as_deref().is_some_and(|s| branch(s).is_empty()) {
        errs.push(format!(
            "{path}: must not match the schema under not, but does: {}",
            show(v)
        ));
    }
}

fn type_ok(n: &Node, v: &Value) -> bool {
    let integer = || match v {
        Value::Number(x) => {
            x.is_i64()
                || x.is_u64()
                || x.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    };
    if n.int_or_string {
        return v.is_string() || integer();
    }
    match n.ty {
        None => true,
        Some(Ty::Object) => v.is_object(),
        Some(Ty::Array) => v.is_array(),
        Some(Ty::String) => v.is_string(),
        Some(Ty::Integer) => integer(),
        Some(Ty::Number) => v.is_number(),
        Some(Ty::Boolean) => v.is_boolean(),
    }
}

fn expected(n: &Node) -> &'static str {
    if n.int_or_string {
        return "an integer or a string";
    }
    match n.ty {
        None => "a value",
        Some(Ty::Object) => "an object",
        Some(Ty::Array) => "a list",
        Some(Ty::String) => "a string",
        Some(Ty::Integer) => "an integer",
        Some(Ty::Number) => "a number",
        Some(Ty::Boolean) => "a boolean (true or false)",
    }
}

/// `path.name`, or `path["odd name"]` for a name that would not read as one path step.
pub(super) fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", quote(key))
    }
}

/// A value for a message: strings quoted, everything cut to a readable length.
pub(super) fn show(v: &Value) -> String {
    const MAX: usize = 120;
    match v {
        Value::String(s) => quote(s),
        _ => {
            let s = v.to_string();
            match s.char_indices().nth(MAX) {
                None => s,
                Some((cut, _)) => format!("{}…", &s[..cut]),
            }
        }
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`), as for `enum`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

/// Whether `v` nests deeper than `max` levels, found without recursion.
pub(super) fn deeper_than(v: &Value, max: usize) -> bool {
    let mut stack = vec![(v, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if depth > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}
