//! Which Constraints apply to a request: `spec.match`, as Gatekeeper's
//! `pkg/mutation/match` and `pkg/target/matcher.go` read it. The request matches when
//! its object or its old object does (`matchAny`); each matcher (kinds, scope,
//! namespaces, excludedNamespaces, labelSelector, namespaceSelector, name, source) must
//! agree. Namespaces and names take Gatekeeper's wildcards: `kube-*`, `*-system`, `*x*`.
//! The Namespace of a namespaced object is the one the config describes (its labels),
//! as Gatekeeper's namespace cache would have it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::types::Match;

/// The request's Namespace, as the core knows it: its name and labels.
pub struct Namespace<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// Gatekeeper's `wildcard.Wildcard`: a leading and/or trailing `*`.
pub fn wildcard_matches(pattern: &str, candidate: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) if pattern.len() > 1 => {
            candidate.contains(rest.strip_suffix('*').unwrap_or(rest))
        }
        (Some(rest), _) => candidate.ends_with(rest),
        (None, Some(rest)) => candidate.starts_with(rest),
        (None, None) => pattern == candidate,
    }
}

/// `*` may only lead or end a wildcard (Gatekeeper's CRD pattern); the error says so.
pub fn check_wildcard(pattern: &str) -> Result<(), String> {
    let inner = pattern.trim_start_matches('*').trim_end_matches('*');
    if pattern.is_empty() || inner.contains('*') || pattern.matches('*').count() > 2 {
        return Err(format!(
            "{pattern:?} is not a valid wildcard: a name, optionally with one `*` at its start \
             and/or end (`kube-*`, `*-system`)"
        ));
    }
    Ok(())
}

/// What the matchers read of a request's object and old object, read once per request
/// for every Constraint.
pub struct Objects<'a> {
    metas: Vec<Meta<'a>>,
}

impl<'a> Objects<'a> {
    pub fn of(object: Option<&'a Value>, old_object: Option<&'a Value>) -> Self {
        let metas = [object, old_object]
            .into_iter()
            .flatten()
            .filter(|o| o.is_object())
            .map(Meta::of)
            .collect();
        Objects { metas }
    }

    /// Whether `m` selects the object or the old object in `namespace` (None for a
    /// cluster-scoped request); neither being there matches nothing.
    pub fn matched_by(&self, m: &Match, namespace: Option<&Namespace>) -> bool {
        self.metas
            .iter()
            .any(|meta| matches_object(m, meta, namespace))
    }
}

/// [`Objects::matched_by`] for one request.
#[cfg(test)]
pub fn matches(
    m: &Match,
    object: Option<&Value>,
    old_object: Option<&Value>,
    namespace: Option<&Namespace>,
) -> bool {
    Objects::of(object, old_object).matched_by(m, namespace)
}

fn matches_object(m: &Match, meta: &Meta, ns: Option<&Namespace>) -> bool {
    kinds_match(m, meta)
        && scope_match(m, meta, ns)
        && namespaces_match(&m.namespaces, meta, ns, true)
        && namespaces_match(&m.excluded_namespaces, meta, ns, false)
        && m.label_selector
            .as_ref()
            .is_none_or(|s| s.matches(&meta.labels))
        && namespace_selector_match(m, meta, ns)
        && m.name.as_deref().is_none_or(|n| {
            wildcard_matches(n, meta.name)
                || (n.ends_with('*')
                    && !meta.generate_name.is_empty()
                    && meta.generate_name.starts_with(n.trim_end_matches('*')))
        })
        // Objects made by Gatekeeper's expansion do not exist here: `Generated` matches none.
        && m.source.as_deref() != Some("Generated")
}

/// What the matchers read of an object.
struct Meta<'a> {
    group: &'a str,
    kind: &'a str,
    name: &'a str,
    generate_name: &'a str,
    namespace: &'a str,
    labels: BTreeMap<String, String>,
}

impl<'a> Meta<'a> {
    fn of(obj: &'a Value) -> Self {
        let str_at = |v: Option<&'a Value>| v.and_then(Value::as_str).unwrap_or_default();
        let api_version = str_at(obj.get("apiVersion"));
        let group = match api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        };
        let metadata = obj.get("metadata");
        let labels = metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Meta {
            group,
            kind: str_at(obj.get("kind")),
            name: str_at(metadata.and_then(|m| m.get("name"))),
            generate_name: str_at(metadata.and_then(|m| m.get("generateName"))),
            namespace: str_at(metadata.and_then(|m| m.get("namespace"))),
            labels,
        }
    }

    fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.group.is_empty()
    }
}

fn kinds_match(m: &Match, meta: &Meta) -> bool {
    let has = |set: &[String], item: &str| set.iter().any(|s| s == "*" || s == item);
    m.kinds.is_empty()
        || m.kinds.iter().any(|k| {
            (k.kinds.is_empty() || has(&k.kinds, meta.kind))
                && (k.api_groups.is_empty() || has(&k.api_groups, meta.group))
        })
}

fn scope_match(m: &Match, meta: &Meta, ns: Option<&Namespace>) -> bool {
    let has_namespace = !meta.namespace.is_empty() || ns.is_some();
    match m.scope.as_deref() {
        Some("Cluster") => meta.is_namespace() || !has_namespace,
        Some("Namespaced") => !meta.is_namespace() && has_namespace,
        _ => true,
    }
}

/// `namespaces` (`include`) or `excludedNamespaces`: the Namespace's own name for a
/// Namespace, else the request's namespace; cluster-scoped objects always pass.
fn namespaces_match(list: &[String], meta: &Meta, ns: Option<&Namespace>, include: bool) -> bool {
    if list.is_empty() {
        return true;
    }
    let namespace = if meta.is_namespace() {
        meta.name
    } else if let Some(ns) = ns {
        ns.name
    } else if !meta.namespace.is_empty() {
        meta.namespace
    } else {
        return true;
    };
    list.iter().any(|n| wildcard_matches(n, namespace)) == include
}

fn namespace_selector_match(m: &Match, meta: &Meta, ns: Option<&Namespace>) -> bool {
    let Some(selector) = &m.namespace_selector else {
        return true;
    };
    if meta.is_namespace() {
        return selector.matches(&meta.labels);
    }
    match ns {
        Some(ns) => selector.matches(ns.labels),
        None if meta.namespace.is_empty() => true,
        // Gatekeeper errors on a namespaced object whose Namespace it does not know; the
        // doors always know it, and an error fails closed: the constraint applies.
        None => true,
    }
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
