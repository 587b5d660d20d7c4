//! Lenient, typed reading of an OCI runtime spec kept as `serde_json::Value`.
//!
//! Why not `oci_spec::runtime::Spec`: oci-spec 0.10 refuses a spec that names a capability it
//! does not know (`no variant for CAP_…`), so a spec from a newer kernel or runtime would be
//! refused, and it does not round-trip a spec byte for byte (capability sets become hash
//! sets). A valid spec must never be refused, so the Pod view reads the JSON directly:
//! unknown fields are ignored, absent and `null` fields read as "not set", and only a field of
//! the wrong JSON type (which no valid spec has) is an error that names the field.
//! Contract: <https://github.com/opencontainers/runtime-spec/blob/main/config.md>.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a container could not be shown as a Pod. Every message names the spec field and
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "the container's OCI runtime spec is {found}, not a JSON object: the runtime sent no \
         usable spec; recreate the container with a valid runtime spec"
    )]
    SpecNotObject { found: &'static str },
    #[error(
        "OCI runtime spec field `{field}` is {found}, but the runtime spec requires {expected}: \
         fix that field of the container spec (runtime-spec config.md) and retry"
    )]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A key the schema (schema.rs) does not know exactly, so nothing judges it.
    #[error(
        "unknown OCI spec field {field}: this build cannot judge it; remove it, or list {} \
         under spec.allowedFields in the config to let it through unjudged",
        super::schema::listing(.field, .allow)
    )]
    UnknownField {
        field: String,
        /// The `spec.allowedFields` entry that lets it through.
        allow: String,
    },
    /// A field the schema refuses when set (docs/mapping.md "Every OCI spec field").
    #[error(
        "OCI spec field {field} is refused: {reason}; remove it, or list {} under \
         spec.allowedFields in the config to let it through unjudged",
        super::schema::listing(.field, .allow)
    )]
    RefusedField {
        field: String,
        allow: String,
        reason: &'static str,
    },
    #[error(
        "OCI runtime spec field `{field}` ({path}) names a namespace Portcullis could not \
         resolve: {why}; the container is refused because it might be the host's"
    )]
    NamespacePath {
        field: String,
        path: String,
        why: String,
    },
    #[error("the Pod view of the container could not be serialised: {0}")]
    Serialize(String),
    /// Two keys of one object that Go's `encoding/json` (runc, containerd) reads as the same
    /// field; see `strict`.
    #[error(
        "OCI runtime spec has the key `{field}` twice (`{first}`, `{second}`): runc matches \
         keys case-insensitively and would merge the two; send each field once"
    )]
    DuplicateKey {
        field: String,
        first: String,
        second: String,
    },
    #[error(
        "OCI runtime spec field `{field}` is `-0`, which runc reads as 0 in a signed field and \
         refuses in an unsigned one: write 0"
    )]
    NegativeZero { field: String },
    #[error("the OCI runtime spec is not valid JSON: {0}")]
    NotJson(String),
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.is_i64() && n.as_i64().is_some_and(|i| i < 0) => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One place in the spec: its value (absent or `null` → `None`) and its dotted name for
/// error messages (`process.user.uid`, `mounts[3].options`).
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    value: Option<&'a Value>,
    field: String,
    /// Set when an ancestor is present but not an object: reading anything below fails.
    err: Option<ConvertError>,
}

impl<'a> Node<'a> {
    /// The spec root; it must be an object.
    pub(crate) fn root(spec: &'a Value) -> Result<Self, ConvertError> {
        if !spec.is_object() {
            return Err(ConvertError::SpecNotObject {
                found: kind_of(spec),
            });
        }
        Ok(Node {
            value: Some(spec),
            field: String::new(),
            err: None,
        })
    }

    fn wrong(&self, expected: &'static str) -> ConvertError {
        ConvertError::WrongType {
            field: self.field.clone(),
            expected,
            found: self.value.map(kind_of).unwrap_or("absent"),
        }
    }

    /// The member `key` of this object.
    pub(crate) fn get(&self, key: &str) -> Node<'a> {
        let field = if self.field.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.field)
        };
        let mut err = self.err.clone();
        let value = match self.value {
            Some(Value::Object(m)) => m.get(key).filter(|v| !v.is_null()),
            Some(_) if err.is_none() => {
                err = Some(self.wrong("an object"));
                None
            }
            _ => None,
        };
        Node { value, field, err }
    }

    /// A dotted path of members: `n.path("linux.resources.memory")`.
    pub(crate) fn path(&self, path: &str) -> Node<'a> {
        path.split('.').fold(self.clone(), |n, k| n.get(k))
    }

    pub(crate) fn is_present(&self) -> bool {
        self.value.is_some()
    }

    fn check(&self) -> Result<Option<&'a Value>, ConvertError> {
        match &self.err {
            Some(e) => Err(e.clone()),
            None => Ok(self.value),
        }
    }

    pub(crate) fn str(&self) -> Result<Option<&'a str>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong("a string")),
        }
    }

    pub(crate) fn bool(&self) -> Result<Option<bool>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong("a boolean")),
        }
    }

    pub(crate) fn u32(&self) -> Result<Option<u32>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.wrong("an unsigned 32-bit integer")),
        }
    }

    pub(crate) fn i64(&self) -> Result<Option<i64>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong("a 64-bit integer")),
        }
    }

    pub(crate) fn u64(&self) -> Result<Option<u64>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong("an unsigned 64-bit integer")),
        }
    }

    pub(crate) fn object(&self) -> Result<Option<&'a Map<String, Value>>, ConvertError> {
        match self.check()? {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(self.wrong("an object")),
        }
    }

    /// The items of an array (absent → none), each named `field[i]`.
    pub(crate) fn items(&self) -> Result<Vec<Node<'a>>, ConvertError> {
        match self.check()? {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| Node {
                    value: Some(v).filter(|v| !v.is_null()),
                    field: format!("{}[{i}]", self.field),
                    err: None,
                })
                .collect()),
            Some(_) => Err(self.wrong("an array")),
        }
    }

    /// An array of strings (absent → empty).
    pub(crate) fn strings(&self) -> Result<Vec<&'a str>, ConvertError> {
        self.items()?
            .iter()
            .map(|n| n.str()?.ok_or_else(|| n.wrong("a string")))
            .collect()
    }

    /// An array of unsigned 32-bit integers (absent → empty).
    pub(crate) fn u32s(&self) -> Result<Vec<u32>, ConvertError> {
        self.items()?
            .iter()
            .map(|n| {
                n.u32()?
                    .ok_or_else(|| n.wrong("an unsigned 32-bit integer"))
            })
            .collect()
    }

    /// An object of string values (absent → empty), as for `annotations` and `sysctl`.
    pub(crate) fn string_map(&self) -> Result<BTreeMap<String, String>, ConvertError> {
        let Some(m) = self.object()? else {
            return Ok(BTreeMap::new());
        };
        m.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let n = self.get(k);
                match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(n.wrong("a string")),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_and_null_read_as_unset() {
        let spec = json!({"process": {"cwd": null}});
        let root = Node::root(&spec).unwrap();
        assert_eq!(root.path("process.cwd").str().unwrap(), None);
        assert_eq!(
            root.path("linux.resources.memory.limit").i64().unwrap(),
            None
        );
        assert!(root.path("mounts").items().unwrap().is_empty());
    }

    #[test]
    fn wrong_types_name_the_field() {
        let spec = json!({"process": {"user": {"uid": "root"}}, "linux": 5});
        let root = Node::root(&spec).unwrap();
        let e = root.path("process.user.uid").u32().unwrap_err();
        assert!(e.to_string().contains("`process.user.uid`"), "{e}");
        assert!(e.to_string().contains("a string"), "{e}");
        let e = root.path("linux.namespaces").items().unwrap_err();
        assert!(e.to_string().contains("`linux`"), "{e}");
        let spec = json!({"mounts": [{"options": ["ro", 3]}]});
        let root = Node::root(&spec).unwrap();
        let m = &root.get("mounts").items().unwrap()[0];
        let e = m.get("options").strings().unwrap_err();
        assert!(e.to_string().contains("`mounts[0].options[1]`"), "{e}");
    }

    #[test]
    fn non_object_spec_is_refused() {
        assert_eq!(
            Node::root(&Value::Null).unwrap_err(),
            ConvertError::SpecNotObject { found: "null" }
        );
        assert!(Node::root(&json!([1])).is_err());
    }

    #[test]
    fn numbers_out_of_range_are_errors_not_panics() {
        let spec = json!({"a": -1, "b": 4294967296u64, "c": 1.5});
        let root = Node::root(&spec).unwrap();
        assert!(root.get("a").u32().is_err());
        assert!(root.get("b").u32().is_err());
        assert!(root.get("c").i64().is_err());
        assert_eq!(root.get("a").i64().unwrap(), Some(-1));
    }
}
