use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

fn m(yaml: &str) -> Match {
    serde_saphyr::from_str(yaml).expect("a match")
}

fn pod(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels}})
}

fn in_ns<'a>(name: &'a str, labels: &'a BTreeMap<String, String>) -> Namespace<'a> {
    Namespace { name, labels }
}

#[test]
fn wildcards_are_gatekeepers() {
    assert!(wildcard_matches("kube-*", "kube-system"));
    assert!(!wildcard_matches("kube-*", "default"));
    assert!(wildcard_matches("*-system", "kube-system"));
    assert!(wildcard_matches("*ube*", "kube-system"));
    assert!(wildcard_matches("*", "anything"));
    assert!(wildcard_matches("default", "default"));
    assert!(!wildcard_matches("default", "default2"));
    assert!(check_wildcard("kube-*").is_ok());
    assert!(check_wildcard("*-sys*").is_ok());
    assert!(check_wildcard("ku*be").is_err());
    assert!(check_wildcard("").is_err());
}

#[test]
fn kinds_scope_and_name() {
    let none = BTreeMap::new();
    let ns = in_ns("default", &none);
    let p = pod("default", "web-1", json!({}));
    let pods = m("kinds: [{apiGroups: [''], kinds: [Pod]}]");
    assert!(matches(&pods, Some(&p), None, Some(&ns)));
    let deployments = m("kinds: [{apiGroups: [apps], kinds: [Deployment]}]");
    assert!(!matches(&deployments, Some(&p), None, Some(&ns)));
    let any = m("kinds: [{apiGroups: ['*'], kinds: ['*']}]");
    assert!(matches(&any, Some(&p), None, Some(&ns)));
    assert!(!matches(&m("scope: Cluster"), Some(&p), None, Some(&ns)));
    assert!(matches(&m("scope: Namespaced"), Some(&p), None, Some(&ns)));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    assert!(matches(&m("scope: Cluster"), Some(&namespace), None, None));
    assert!(matches(&m("name: web-*"), Some(&p), None, Some(&ns)));
    assert!(!matches(&m("name: db-*"), Some(&p), None, Some(&ns)));
    assert!(!matches(&m("source: Generated"), Some(&p), None, Some(&ns)));
    assert!(matches(&m("source: All"), Some(&p), None, Some(&ns)));
}

#[test]
fn namespaces_and_selectors() {
    let labels: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
    let prod = in_ns("shop", &labels);
    let p = pod("shop", "web", json!({"app": "web"}));
    assert!(matches(
        &m("namespaces: [shop]"),
        Some(&p),
        None,
        Some(&prod)
    ));
    assert!(!matches(
        &m("namespaces: [kube-*]"),
        Some(&p),
        None,
        Some(&prod)
    ));
    assert!(!matches(
        &m("excludedNamespaces: [sh*]"),
        Some(&p),
        None,
        Some(&prod)
    ));
    assert!(matches(
        &m("excludedNamespaces: [kube-*]"),
        Some(&p),
        None,
        Some(&prod)
    ));
    let sel = m("namespaceSelector: {matchLabels: {env: prod}}");
    assert!(matches(&sel, Some(&p), None, Some(&prod)));
    let sel = m("namespaceSelector: {matchLabels: {env: dev}}");
    assert!(!matches(&sel, Some(&p), None, Some(&prod)));
    let sel = m("labelSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}");
    assert!(matches(&sel, Some(&p), None, Some(&prod)));
    let sel = m("labelSelector: {matchLabels: {app: db}}");
    assert!(!matches(&sel, Some(&p), None, Some(&prod)));
    // A Namespace is matched by its own name and labels.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "kube-system", "labels": {"env": "prod"}}});
    assert!(!matches(
        &m("excludedNamespaces: [kube-*]"),
        Some(&namespace),
        None,
        None
    ));
    let sel = m("namespaceSelector: {matchLabels: {env: prod}}");
    assert!(matches(&sel, Some(&namespace), None, None));
}

#[test]
fn the_old_object_may_match_and_no_object_matches_nothing() {
    let none = BTreeMap::new();
    let ns = in_ns("default", &none);
    let new = pod("default", "web", json!({}));
    let old = pod("default", "web", json!({"tier": "gold"}));
    let sel = m("labelSelector: {matchLabels: {tier: gold}}");
    assert!(matches(&sel, Some(&new), Some(&old), Some(&ns)));
    assert!(!matches(&sel, Some(&new), None, Some(&ns)));
    assert!(!matches(&m("{}"), None, None, Some(&ns)));
}
