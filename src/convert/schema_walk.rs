//! `check` and `check_process`: the walk of a spec along the schema (schema.rs), and the rows
//! of the docs/mapping.md table.

use serde_json::{Map as JsonMap, Value};

use super::{Class, Field, Kind, PROCESS, SPEC};
use crate::convert::spec::ConvertError;
use Class::{Members, Refused};
use Kind::{Array, Map, MapOf, Opaque, Struct};

/// Refuses a runtime spec (config.json, containerd `Container.spec`) that holds a key this
/// build does not know exactly, or a refused field that is set, unless `allowed`
/// (`spec.allowedFields`) lists the field or one above it.
pub fn check(spec: &Value, allowed: &[String]) -> Result<(), ConvertError> {
    crate::convert::spec::Node::root(spec)?;
    let root = Field {
        key: "",
        kind: Struct(SPEC),
        class: Members,
    };
    Walk { allowed }.field(&root, spec, "", "")
}

/// `check` for a runtime-spec Process object on its own (containerd `Tasks/Exec`). Fields are
/// named `process.…`, as in a whole spec, so one `spec.allowedFields` entry serves both.
pub fn check_process(process: &Value, allowed: &[String]) -> Result<(), ConvertError> {
    let root = Field {
        key: "process",
        kind: Struct(PROCESS),
        class: Members,
    };
    if !process.is_object() {
        return Err(wrong(process, "process", "an object"));
    }
    Walk { allowed }.field(&root, process, "process", "process")
}

/// How an error names the `spec.allowedFields` entry that would let `field` through: `it`
/// when that is the field's own name, else the entry (`mounts.uidMappings` for
/// `mounts[3].uidMappings`).
pub(crate) fn listing(field: &str, allow: &str) -> String {
    if field == allow {
        "it".to_owned()
    } else {
        format!("`{allow}`")
    }
}

/// The walk of one value along the schema. `path` names a place for messages
/// (`mounts[3].type`); `entry` is the same place as a `spec.allowedFields` entry would name it,
/// without list indices and map keys (`mounts.type`).
struct Walk<'a> {
    allowed: &'a [String],
}

impl Walk<'_> {
    fn allows(&self, entry: &str) -> bool {
        self.allowed.iter().any(|a| {
            !a.is_empty()
                && entry
                    .strip_prefix(a.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }

    fn object(
        &self,
        members: &JsonMap<String, Value>,
        fields: &[Field],
        path: &str,
        entry: &str,
    ) -> Result<(), ConvertError> {
        for (key, value) in members {
            let (path, entry) = (join(path, key), join(entry, key));
            if self.allows(&entry) {
                continue;
            }
            // Exact match only: Go would also take `PROCESS` or `Process` for `process`.
            match fields.iter().find(|f| f.key == key) {
                Some(field) => self.field(field, value, &path, &entry)?,
                None => {
                    return Err(ConvertError::UnknownField {
                        field: path,
                        allow: entry,
                    })
                }
            }
        }
        Ok(())
    }

    fn field(
        &self,
        field: &Field,
        value: &Value,
        path: &str,
        entry: &str,
    ) -> Result<(), ConvertError> {
        if is_unset(value) {
            return Ok(());
        }
        if let Refused(reason) = field.class {
            return Err(refused(path, entry, reason));
        }
        match field.kind {
            Kind::Value | Opaque => Ok(()),
            Struct(fields) => self.object(as_object(value, path)?, fields, path, entry),
            Array(fields) => {
                let Value::Array(items) = value else {
                    return Err(wrong(value, path, "an array"));
                };
                for (i, item) in items.iter().enumerate().filter(|(_, v)| !v.is_null()) {
                    let path = format!("{path}[{i}]");
                    self.object(as_object(item, &path)?, fields, &path, entry)?;
                }
                Ok(())
            }
            Map(patterns) => {
                for key in as_object(value, path)?.keys() {
                    let entry = join(entry, key);
                    let hit = patterns.iter().find(|(p, _)| matches(p, key));
                    if let Some((_, reason)) = hit.filter(|_| !self.allows(&entry)) {
                        return Err(refused(&join(path, key), &entry, reason));
                    }
                }
                Ok(())
            }
            MapOf(fields) => {
                let members = as_object(value, path)?;
                for (key, item) in members.iter().filter(|(_, v)| !v.is_null()) {
                    let path = format!("{path}[{}]", Value::from(key.as_str()));
                    self.object(as_object(item, &path)?, fields, &path, entry)?;
                }
                Ok(())
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Go's zero values: what `omitempty` leaves out and runc treats as "not set".
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// `pattern` with `*` as any text (at most one `*`, which is all the schema uses).
fn matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == key,
        Some((head, tail)) => {
            key.len() >= head.len() + tail.len() && key.starts_with(head) && key.ends_with(tail)
        }
    }
}

fn refused(path: &str, entry: &str, reason: &'static str) -> ConvertError {
    ConvertError::RefusedField {
        field: path.to_owned(),
        allow: entry.to_owned(),
        reason,
    }
}

fn as_object<'v>(v: &'v Value, path: &str) -> Result<&'v JsonMap<String, Value>, ConvertError> {
    v.as_object().ok_or_else(|| wrong(v, path, "an object"))
}

fn wrong(v: &Value, path: &str, expected: &'static str) -> ConvertError {
    ConvertError::WrongType {
        field: path.to_owned(),
        expected,
        found: match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        },
    }
}

#[cfg(test)]
/// One row of the docs/mapping.md table: a field as a `spec.allowedFields` entry would name
/// it, its class, and whether the row stands for every field below it too (they all share
/// its class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub entry: String,
    pub class: Class,
    pub and_below: bool,
}

#[cfg(test)]
/// Every field of a schema, parents before children. Refused fields are not opened (nothing
/// below them passes), and a subtree of one class is one row.
pub fn rows(fields: &'static [Field], prefix: &str) -> Vec<Row> {
    let mut out = Vec::new();
    for field in fields {
        let entry = join(prefix, field.key);
        let below = match field.kind {
            Struct(fs) | Array(fs) | MapOf(fs) if !matches!(field.class, Refused(_)) => fs,
            _ => &[],
        };
        match uniform(below) {
            Some(c) if below.is_empty() || field.class == Members || field.class == c => {
                out.push(Row {
                    entry,
                    class: if below.is_empty() { field.class } else { c },
                    and_below: !below.is_empty(),
                });
            }
            _ => {
                out.push(Row {
                    entry: entry.clone(),
                    class: field.class,
                    and_below: false,
                });
                out.extend(rows(below, &entry));
            }
        }
    }
    out
}

#[cfg(test)]
/// The one class every field of `fields` and below has, if there is one (`None` for none).
fn uniform(fields: &'static [Field]) -> Option<Class> {
    let mut class = None;
    for f in fields {
        let c = match f.kind {
            Struct(fs) | Array(fs) | MapOf(fs) if !matches!(f.class, Refused(_)) => {
                match (uniform(fs), f.class) {
                    (Some(c), Members) => c,
                    (Some(c), own) if c == own => c,
                    _ => return None,
                }
            }
            _ => f.class,
        };
        if class.is_some_and(|k| k != c) || c == Members {
            return None;
        }
        class = Some(c);
    }
    class
}
