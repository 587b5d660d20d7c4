//! Reading a v1 Pod as JSON the way Go reads the decoded `corev1.Pod`: a missing or `null`
//! field is the zero value (`false`, `""`, `0`) or nil, and a list is empty. Wrong types
//! never get here ([`super::shape`] refuses them first); if one does, it reads as absent.
//!
//! Also upstream's message helpers (`policy/helpers.go`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The parts of a Pod the checks read: `metadata.annotations` and `spec`.
pub(super) struct Pod<'a> {
    annotations: Option<&'a Map<String, Value>>,
    pub spec: &'a Value,
}

static NULL: Value = Value::Null;

impl<'a> Pod<'a> {
    pub fn new(pod: &'a Value) -> Self {
        Pod {
            annotations: get(pod, &["metadata", "annotations"]).and_then(Value::as_object),
            spec: get(pod, &["spec"]).unwrap_or(&NULL),
        }
    }

    /// `metadata.annotations[key]`, if set.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations?.get(key)?.as_str()
    }

    /// Every annotation with a string value, in key order.
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.annotations
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// `visitContainers`: init containers, containers, then ephemeral containers.
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> {
        let spec = self.spec;
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |field| list(spec, &[field]))
            .map(|value| Container { value })
    }

    /// `spec.securityContext.<path>`.
    pub fn security(&self, path: &[&str]) -> Option<&'a Value> {
        get(get(self.spec, &["securityContext"])?, path)
    }

    /// `spec.os.name == "windows"` (upstream's 1.25+ exemption from Linux-only checks).
    pub fn is_windows(&self) -> bool {
        get_str(self.spec, &["os", "name"]) == Some("windows")
    }

    /// `spec.hostUsers == false`: the Pod runs in a user namespace (KEP-127).
    pub fn in_user_namespace(&self) -> bool {
        get_bool(self.spec, &["hostUsers"]) == Some(false)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Container<'a> {
    pub value: &'a Value,
}

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        get_str(self.value, &["name"]).unwrap_or("")
    }

    /// `securityContext.<path>`.
    pub fn security(&self, path: &[&str]) -> Option<&'a Value> {
        get(get(self.value, &["securityContext"])?, path)
    }
}

/// The value at `path`; `None` when a step is missing, `null` or not an object.
pub(super) fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut value = value;
    for key in path {
        value = value.as_object()?.get(*key)?;
    }
    (!value.is_null()).then_some(value)
}

pub(super) fn get_bool(value: &Value, path: &[&str]) -> Option<bool> {
    get(value, path)?.as_bool()
}

pub(super) fn get_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path)?.as_str()
}

/// The list at `path`, empty when absent.
pub(super) fn list<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    get(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A string list element (`[]Capability`, …); other types never pass `shape`.
pub(super) fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// `joinQuote`: `"a", "b"`.
pub(super) fn join_quote<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items
        .into_iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `pluralize`.
pub(super) fn pluralize(singular: &'static str, plural: &'static str, n: usize) -> &'static str {
    if n == 1 {
        singular
    } else {
        plural
    }
}

/// `"<container|containers> \"a\", \"b\""`.
pub(super) fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// `"pod"`, `"containers \"a\""`, or both joined with " and ".
pub(super) fn setters(pod: bool, containers: &[&str]) -> Vec<String> {
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !containers.is_empty() {
        setters.push(containers_phrase(containers));
    }
    setters
}

/// A sorted, de-duplicated set (`sets.String.List()` sorts byte-wise, as `Ord` for `str`).
pub(super) type Set<'a> = BTreeSet<&'a str>;

/// Go's `%q` (`strconv.Quote`), for values upstream formats that way.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
