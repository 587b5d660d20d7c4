//! Reading an OCI runtime spec (or an exec's process) from bytes so that what policies judge is
//! what runc runs.
//!
//! runc and containerd decode the spec with Go's `encoding/json`, which differs from
//! `serde_json::Value` in two ways that matter:
//! - an object key matches a struct field case-insensitively (`PROCESS` is `process`), with
//!   Go's fold: ASCII letter case, plus U+212A KELVIN SIGN ~ `k` and U+017F LATIN SMALL LETTER
//!   LONG S ~ `s` (Go 1.19 `encoding/json/fold.go`: `equalFoldRight`; Go 1.21+ `foldName`
//!   folds every rune to the smallest of its `unicode.SimpleFold` set, which for an ASCII
//!   field name is the same relation: only those two non-ASCII runes fold into ASCII);
//! - a key seen twice decodes into the same struct again: each field of the later copy
//!   overwrites, fields absent from it keep the earlier value (`null` clears a pointer or a
//!   slice: `"Seccomp":null` after a `seccomp` profile drops it). `serde_json::Value` keeps
//!   only the last copy of an exact repeat, and both spellings of a folded one.
//!
//! So `{"process":{…benign…},"PROCESS":{"user":{"uid":0}}}` would be judged benign and run as
//! root. [`parse`] builds the `Value` in one pass (a serde `DeserializeSeed`, no second parser)
//! and refuses any object in which two keys fold to the same name. Objects Go decodes into a
//! map (`annotations`, `linux.sysctl`, `linux.resources.unified`, `linux.resources.rdma`,
//! `linux.netDevices`, and all of `windows.credentialSpec`, an `interface{}`) compare keys
//! exactly, as Go does there: `a` and `A` are two annotations to both decoders, so only an
//! exact repeat is refused. A key that differs from a field name (a lone `PROCESS`) is left to
//! the schema check, which refuses keys that are not exactly a known field.
//!
//! Everything else Go reads differently was checked against Go 1.19 (`tests/gojson.rs` runs
//! Go's decoder as the oracle):
//! - invalid UTF-8 and lone surrogates (`"\ud800"`): Go substitutes U+FFFD, serde_json
//!   refuses; refusing is the safe side.
//! - `-0`: serde_json keeps it as the float `-0.0`, which Go then refuses for any integer
//!   field, while Go reads the original `-0` as 0 in a signed field. No valid spec writes it,
//!   so it is refused here ([`ConvertError::NegativeZero`]).
//! - other numbers: integers within `i64`/`u64` are kept digit for digit; a fraction, an
//!   exponent (`1.0`, `1e2`) or an integer beyond 64 bits is a float to serde_json and an
//!   error to Go for every integer field of the spec, so both refuse it (the conversion's
//!   typed readers name the field). The spec has no float field; only the Windows
//!   `credentialSpec` could hold one, where the last digit may round differently.
//! - trailing data after the document: runc's `json.Decoder` ignores it, serde_json refuses.
//! - nesting deeper than 128: serde_json refuses (Go allows 10000); no spec nests past ~8.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::spec::ConvertError;

/// The Go type the bytes are decoded into, which says which objects are structs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `specs.Spec`: a container's `config.json`, containerd's `Container.spec`.
    Spec,
    /// `specs.Process`: the process of containerd `Tasks/Exec`.
    Process,
    /// `specs.LinuxResources`: the resources of containerd `Tasks/Update`; errors name
    /// fields as `linux.resources.…`.
    Resources,
}

/// An OCI runtime spec as runc reads it; see the module comment.
pub fn parse_spec(bytes: &[u8]) -> Result<Value, ConvertError> {
    parse(bytes, Shape::Spec)
}

/// An exec's OCI process as runc reads it; errors name fields as `process.…`.
pub fn parse_process(bytes: &[u8]) -> Result<Value, ConvertError> {
    parse(bytes, Shape::Process)
}

/// JSON `bytes` as a `Value`, refusing what Go's `encoding/json` would read differently.
pub fn parse(bytes: &[u8], shape: Shape) -> Result<Value, ConvertError> {
    let mut ctx = Ctx {
        shape,
        path: Vec::new(),
        refused: None,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = ValueSeed { ctx: &mut ctx }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    // A refusal aborts the parse through a serde error; the reason itself waits in `ctx`.
    result.map_err(|e| {
        ctx.refused
            .take()
            .unwrap_or_else(|| ConvertError::NotJson(e.to_string()))
    })
}

/// Go's fold of an object key, for comparing keys with each other: two keys fold equal
/// exactly when Go would match both to the same (ASCII) struct field name. Non-ASCII runes
/// other than the two below never match an ASCII name, so they are kept as they are.
pub fn fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// One step from the root to the value being read.
enum Seg {
    /// A member of an object Go decodes into a struct: the key as sent, and folded.
    Field {
        sent: String,
        folded: String,
    },
    /// A member of an object Go decodes into a map.
    Entry(String),
    Index(usize),
}

struct Ctx {
    shape: Shape,
    path: Vec<Seg>,
    refused: Option<ConvertError>,
}

impl Ctx {
    /// Whether the object at the current path is a Go map (keys compared exactly).
    fn in_map(&self) -> bool {
        if self.shape == Shape::Process {
            return false;
        }
        let root: &[Option<&str>] = match self.shape {
            Shape::Resources => &[Some("linux"), Some("resources")],
            _ => &[],
        };
        let keys: Vec<Option<&str>> = root
            .iter()
            .copied()
            .chain(self.path.iter().map(|s| match s {
                Seg::Field { folded, .. } => Some(folded.as_str()),
                _ => None,
            }))
            .collect();
        // runtime-spec specs-go: `map[string]…` fields, and the `interface{}` credentialSpec
        // (Go decodes every object under it into `map[string]interface{}`).
        matches!(
            keys.as_slice(),
            [Some("annotations")]
                | [Some("linux"), Some("sysctl" | "netdevices")]
                | [Some("linux"), Some("resources"), Some("unified" | "rdma")]
                | [Some("windows"), Some("credentialspec"), ..]
        )
    }

    /// The dotted name of the current path, plus `last` if given: `process.user`,
    /// `mounts[2].options`, `annotations["io.example"]`.
    fn field(&self, last: Option<&Seg>) -> String {
        let mut out = String::new();
        match self.shape {
            Shape::Process => out.push_str("process"),
            Shape::Resources => out.push_str("linux.resources"),
            Shape::Spec => {}
        }
        for seg in self.path.iter().chain(last) {
            match seg {
                Seg::Field { sent, .. } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(sent);
                }
                Seg::Entry(key) => out.push_str(&format!("[{key:?}]")),
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn refuse<E: de::Error>(&mut self, e: ConvertError) -> E {
        self.refused = Some(e);
        E::custom("refused")
    }
}

/// Builds one `Value`, checking every object's keys on the way.
struct ValueSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v == 0.0 && v.is_sign_negative() {
            let field = self.ctx.field(None);
            return Err(self.ctx.refuse(ConvertError::NegativeZero { field }));
        }
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.ctx.path.push(Seg::Index(out.len()));
            let item = seq.next_element_seed(ValueSeed {
                ctx: &mut *self.ctx,
            })?;
            self.ctx.path.pop();
            match item {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let in_map = self.ctx.in_map();
        let mut out = Map::new();
        // Folded key → the first spelling, for struct-shaped objects. A hash map: an object
        // may have many (unknown) keys, and a linear scan per key would be quadratic.
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let seg = if in_map {
                Seg::Entry(key.clone())
            } else {
                Seg::Field {
                    sent: key.clone(),
                    folded: fold(&key),
                }
            };
            let first = match &seg {
                Seg::Field { folded, .. } => match seen.entry(folded.clone()) {
                    Entry::Occupied(e) => Some(e.get().clone()),
                    Entry::Vacant(e) => {
                        e.insert(key.clone());
                        None
                    }
                },
                _ => out.contains_key(&key).then(|| key.clone()),
            };
            if let Some(first) = first {
                let named = match seg {
                    Seg::Field { folded, .. } => Seg::Field {
                        sent: first.clone(),
                        folded,
                    },
                    other => other,
                };
                let field = self.ctx.field(Some(&named));
                let e = ConvertError::DuplicateKey {
                    field,
                    first,
                    second: key,
                };
                return Err(self.ctx.refuse(e));
            }
            self.ctx.path.push(seg);
            let value = map.next_value_seed(ValueSeed {
                ctx: &mut *self.ctx,
            })?;
            self.ctx.path.pop();
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[path = "strict_tests.rs"]
mod tests;
