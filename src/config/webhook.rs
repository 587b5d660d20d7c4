//! Webhook entries in the config file: one `webhooks[]` entry of a Kubernetes
//! `ValidatingWebhookConfiguration` or `MutatingWebhookConfiguration`
//! (admissionregistration.k8s.io/v1, k8s.io/api/admissionregistration/v1/types.go), field
//! for field so users can paste theirs, plus what a host without an API server needs:
//! `kind` (which of the two configurations the entry comes from) and, in `clientConfig`,
//! `socket` + `path` (plain HTTP over a unix socket) and the client credential files that
//! kube-apiserver would take from its `--admission-control-config-file` kubeconfig.
//!
//! Parsing accepts every upstream field; [`WebhookConfig::validate`] then rejects what we
//! cannot honour (a `service` reference, `matchConditions`) with a message saying so.
//!
//! Two deliberate differences from upstream defaults and validation:
//! - `admissionReviewVersions` defaults to `[v1]` and `sideEffects` is optional (both are
//!   required in v1 objects).
//! - `url` may be plain `http://` when its host is loopback (`127.0.0.0/8`, `::1`,
//!   `localhost`); kube-apiserver requires `https://` everywhere.
//!
//! As upstream, a webhook is called only when one of its `rules` matches: an entry without
//! `rules` is valid but never called.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use base64::Engine as _;
use serde::Deserialize;

/// One `webhooks[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    pub name: String,
    /// Ours: which configuration kind the entry belongs to.
    #[serde(default)]
    pub kind: WebhookKind,
    pub client_config: WebhookClientConfig,
    #[serde(default)]
    pub rules: Vec<RuleWithOperations>,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Accepted; with no API discovery every match is `Exact`.
    #[serde(default)]
    pub match_policy: Option<MatchPolicy>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    /// Consulted only for dry-run requests, as upstream.
    #[serde(default)]
    pub side_effects: Option<SideEffectClass>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: i64,
    #[serde(default = "default_review_versions")]
    pub admission_review_versions: Vec<String>,
    /// Accepted so pasted configurations parse; [`WebhookConfig::validate`] rejects a
    /// non-empty list until CEL is available.
    #[serde(default)]
    pub match_conditions: Vec<MatchCondition>,
    /// Mutating webhooks only.
    #[serde(default)]
    pub reinvocation_policy: Option<ReinvocationPolicy>,
    /// Ours: enforce (default), warn or audit.
    #[serde(default)]
    pub mode: super::Mode,
    /// Ours: decisions this webhook took part in may be answered from the decision cache
    /// (`cache:`). Off by default: a webhook may answer differently to the same request.
    #[serde(default)]
    pub cache: bool,
}

fn default_timeout_seconds() -> i64 {
    10
}
fn default_review_versions() -> Vec<String> {
    vec!["v1".into()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum WebhookKind {
    #[default]
    Validating,
    Mutating,
}

/// `clientConfig`: upstream `WebhookClientConfig` plus our transport and credentials.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookClientConfig {
    #[serde(default)]
    pub url: Option<String>,
    /// Base64 of PEM CA certificates; when set, the only roots trusted for `url`.
    #[serde(default)]
    pub ca_bundle: Option<String>,
    /// Accepted so pasted configurations parse; always rejected by validation.
    #[serde(default)]
    pub service: Option<ServiceReference>,
    /// Ours: a unix socket that speaks plain HTTP.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Ours: HTTP path on `socket` (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Ours: PEM client certificate (chain) for mutual TLS; needs `clientKeyFile`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Ours: file holding a bearer token, re-read when it changes.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
}

impl WebhookClientConfig {
    /// HTTP path used on `socket`.
    pub fn socket_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// Upstream `ServiceReference`, accepted only to be rejected with a clear message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceReference {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

/// Upstream `RuleWithOperations`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleWithOperations {
    #[serde(default)]
    pub operations: Vec<OperationType>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// `resource`, `resource/subresource`, `*`, `*/*`, `resource/*` or `*/subresource`.
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OperationType {
    #[serde(rename = "*")]
    All,
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    #[serde(rename = "*")]
    All,
    Cluster,
    Namespaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MatchPolicy {
    Exact,
    Equivalent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SideEffectClass {
    Unknown,
    None,
    Some,
    NoneOnDryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ReinvocationPolicy {
    Never,
    IfNeeded,
}

/// Upstream `MatchCondition` (a CEL expression).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchCondition {
    pub name: String,
    pub expression: String,
}

/// `metav1.LabelSelector`. An empty selector matches everything.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// The AdmissionReview versions we can speak. We have no preference: the first of these
/// the webhook lists is used, as in kube-apiserver.
pub const SUPPORTED_REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// A webhook entry that cannot be used. `field` is relative to the entry
/// (`clientConfig.url`); the caller prefixes `webhooks[i].`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidWebhook {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl fmt::Display) -> InvalidWebhook {
    InvalidWebhook {
        field: field.into(),
        message: message.to_string(),
    }
}

impl WebhookConfig {
    /// Checks the entry without touching the system (credential files are read when the
    /// decision core is built).
    pub fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.client_config.validate()?;
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| invalid(format!("rules[{i}].{}", e.field), e.message))?;
        }
        if !(1..=30).contains(&self.timeout_seconds) {
            return Err(invalid(
                "timeoutSeconds",
                format!(
                    "must be between 1 and 30 seconds, got {}",
                    self.timeout_seconds
                ),
            ));
        }
        self.validate_review_versions()?;
        if !self.match_conditions.is_empty() {
            return Err(invalid(
                "matchConditions",
                "matchConditions need CEL (issue #3); remove them for now",
            ));
        }
        for (field, selector) in [
            ("namespaceSelector", &self.namespace_selector),
            ("objectSelector", &self.object_selector),
        ] {
            if let Some(selector) = selector {
                selector
                    .validate()
                    .map_err(|e| invalid(format!("{field}.{}", e.field), e.message))?;
            }
        }
        if self.kind == WebhookKind::Validating && self.reinvocation_policy.is_some() {
            return Err(invalid(
                "reinvocationPolicy",
                "only mutating webhooks are reinvoked; set kind: Mutating or remove the field",
            ));
        }
        Ok(())
    }

    fn validate_review_versions(&self) -> Result<(), InvalidWebhook> {
        let field = "admissionReviewVersions";
        let mut seen = BTreeSet::new();
        for v in &self.admission_review_versions {
            if !seen.insert(v.as_str()) {
                return Err(invalid(field, format!("duplicate version {v:?}")));
            }
        }
        if !self
            .admission_review_versions
            .iter()
            .any(|v| SUPPORTED_REVIEW_VERSIONS.contains(&v.as_str()))
        {
            return Err(invalid(
                field,
                format!(
                    "must include at least one of v1, v1beta1 (got {:?})",
                    self.admission_review_versions
                ),
            ));
        }
        Ok(())
    }

    /// The AdmissionReview version to send: the first listed one we support.
    pub fn review_version(&self) -> Option<&str> {
        self.admission_review_versions
            .iter()
            .map(String::as_str)
            .find(|v| SUPPORTED_REVIEW_VERSIONS.contains(v))
    }
}

impl WebhookClientConfig {
    fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.service.is_some() {
            return Err(invalid(
                "clientConfig.service",
                "no API server here: use url or socket",
            ));
        }
        match (&self.url, &self.socket) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "clientConfig",
                    "set exactly one of url or socket, not both",
                ))
            }
            (None, None) => {
                return Err(invalid("clientConfig", "set exactly one of url or socket"))
            }
            (Some(url), None) => {
                validate_url(url).map_err(|m| invalid("clientConfig.url", m))?;
                if self.path.is_some() {
                    return Err(invalid(
                        "clientConfig.path",
                        "only used with socket; put the path in url",
                    ));
                }
            }
            (None, Some(socket)) => {
                if socket.as_os_str().is_empty() {
                    return Err(invalid("clientConfig.socket", "must not be empty"));
                }
                for (field, set) in [
                    ("caBundle", self.ca_bundle.is_some()),
                    ("clientCertFile", self.client_cert_file.is_some()),
                    ("clientKeyFile", self.client_key_file.is_some()),
                ] {
                    if set {
                        return Err(invalid(
                            format!("clientConfig.{field}"),
                            "TLS settings apply to an https url, not to socket (plain HTTP)",
                        ));
                    }
                }
                let path = self.socket_path();
                if !path.starts_with('/') || http::uri::PathAndQuery::from_str(path).is_err() {
                    return Err(invalid(
                        "clientConfig.path",
                        format!("must be an HTTP path starting with '/', got {path:?}"),
                    ));
                }
            }
        }
        if let Some(bundle) = &self.ca_bundle {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(bundle.trim())
                .map_err(|e| invalid("clientConfig.caBundle", format!("not base64: {e}")))?;
            let certs = parse_pem_certs(&pem)
                .map_err(|e| invalid("clientConfig.caBundle", format!("not PEM: {e}")))?;
            if certs == 0 {
                return Err(invalid(
                    "clientConfig.caBundle",
                    "holds no PEM CERTIFICATE block",
                ));
            }
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err(invalid(
                "clientConfig",
                "clientCertFile and clientKeyFile must be set together",
            ));
        }
        Ok(())
    }
}

fn parse_pem_certs(pem: &[u8]) -> Result<usize, std::io::Error> {
    let mut reader = pem;
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut reader) {
        cert?;
        n += 1;
    }
    Ok(n)
}

/// Upstream rules (`ValidateWebhookURL`) plus our loopback exception for `http`.
fn validate_url(url: &str) -> Result<(), String> {
    if url.contains('#') {
        return Err("fragments are not permitted in the URL".into());
    }
    let uri = http::Uri::from_str(url).map_err(|e| format!("not a URL: {e}"))?;
    if uri.query().is_some() {
        return Err("query parameters are not permitted in the URL".into());
    }
    let Some(authority) = uri.authority() else {
        return Err("host must be specified".into());
    };
    if authority.as_str().contains('@') {
        return Err("user information is not permitted in the URL".into());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("host must be specified".into());
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "'https' is required; plain 'http' is allowed only to a loopback host \
             (127.0.0.1, ::1, localhost), not {host:?}"
        )),
        _ => Err("'https' is the only allowed URL scheme (and 'http' to a loopback host)".into()),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl RuleWithOperations {
    fn validate(&self) -> Result<(), InvalidWebhook> {
        if self.operations.is_empty() {
            return Err(invalid(
                "operations",
                "must list at least one operation (or \"*\")",
            ));
        }
        if self.operations.len() > 1 && self.operations.contains(&OperationType::All) {
            return Err(invalid(
                "operations",
                "if '*' is present, must not specify other operations",
            ));
        }
        for (field, list) in [
            ("apiGroups", &self.api_groups),
            ("apiVersions", &self.api_versions),
        ] {
            if list.is_empty() {
                return Err(invalid(
                    field,
                    "must list at least one entry (or \"*\"; \"\" is the core group)",
                ));
            }
            if list.len() > 1 && list.iter().any(|s| s == "*") {
                return Err(invalid(
                    field,
                    format!("if '*' is present, must not specify other {field}"),
                ));
            }
        }
        if self.api_versions.iter().any(String::is_empty) {
            return Err(invalid("apiVersions", "must not contain an empty version"));
        }
        validate_resources(&self.resources).map_err(|m| invalid("resources", m))
    }
}

/// Upstream `validateResources`.
fn validate_resources(resources: &[String]) -> Result<(), String> {
    if resources.is_empty() {
        return Err("must list at least one resource (or \"*\")".into());
    }
    let mut wildcard_sub = BTreeSet::new(); // x/*
    let mut wildcard_res = BTreeSet::new(); // */x
    let mut single_wildcard = false;
    let mut without_sub = false;
    for r in resources {
        if r.is_empty() {
            return Err("must not contain an empty resource".into());
        }
        if r == "*" {
            single_wildcard = true;
        }
        let Some((res, sub)) = r.split_once('/') else {
            without_sub |= r != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            return Err(format!("if '{res}/*' is present, must not specify {r}"));
        }
        if wildcard_res.contains(sub) {
            return Err(format!("if '*/{sub}' is present, must not specify {r}"));
        }
        if sub == "*" {
            wildcard_sub.insert(res);
        }
        if res == "*" {
            wildcard_res.insert(sub);
        }
    }
    if resources.len() > 1 && resources.iter().any(|r| r == "*/*") {
        return Err("if '*/*' is present, must not specify other resources".into());
    }
    if single_wildcard && without_sub {
        return Err(
            "if '*' is present, must not specify other resources without subresources".into(),
        );
    }
    Ok(())
}

impl LabelSelector {
    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    fn validate(&self) -> Result<(), InvalidWebhook> {
        for k in self.match_labels.keys() {
            if k.is_empty() {
                return Err(invalid("matchLabels", "label keys must not be empty"));
            }
        }
        for (i, req) in self.match_expressions.iter().enumerate() {
            let field = format!("matchExpressions[{i}]");
            if req.key.is_empty() {
                return Err(invalid(format!("{field}.key"), "must not be empty"));
            }
            match req.operator {
                SelectorOperator::In | SelectorOperator::NotIn if req.values.is_empty() => {
                    return Err(invalid(
                        format!("{field}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ))
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist
                    if !req.values.is_empty() =>
                {
                    return Err(invalid(
                        format!("{field}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `labels.Selector.Matches` for a label set.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator {
                    SelectorOperator::In => value.is_some_and(|v| req.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !req.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<WebhookConfig, String> {
        serde_saphyr::from_str::<WebhookConfig>(yaml).map_err(|e| e.to_string())
    }

    fn valid(yaml: &str) -> WebhookConfig {
        let w = parse(yaml).expect("parses");
        w.validate().expect("valid");
        w
    }

    fn invalid_field(yaml: &str) -> InvalidWebhook {
        parse(yaml)
            .expect("parses")
            .validate()
            .expect_err("invalid")
    }

    const MINIMAL: &str =
        "name: a.example.com\nclientConfig:\n  url: https://hook.example.com/validate\n";

    #[test]
    fn defaults_follow_upstream_where_they_can() {
        let w = valid(MINIMAL);
        assert_eq!(w.kind, WebhookKind::Validating);
        assert_eq!(w.failure_policy, FailurePolicy::Fail);
        assert_eq!(w.timeout_seconds, 10);
        assert_eq!(w.admission_review_versions, vec!["v1"]);
        assert_eq!(w.review_version(), Some("v1"));
        assert!(w.rules.is_empty());
    }

    #[test]
    fn a_pasted_kubernetes_entry_parses() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca".into()])
            .unwrap()
            .cert
            .pem();
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        let w = valid(&format!(
            r#"
name: pod-policy.example.com
kind: Mutating
clientConfig:
  url: https://127.0.0.1:8443/mutate
  caBundle: {ca}
rules:
- operations: ["CREATE", "UPDATE"]
  apiGroups: [""]
  apiVersions: ["v1"]
  resources: ["pods", "pods/exec"]
  scope: "Namespaced"
failurePolicy: Ignore
matchPolicy: Equivalent
namespaceSelector:
  matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: ["kube-system"]
objectSelector:
  matchLabels:
    app: web
sideEffects: None
timeoutSeconds: 5
admissionReviewVersions: ["v1", "v1beta1"]
reinvocationPolicy: IfNeeded
"#
        ));
        assert_eq!(w.kind, WebhookKind::Mutating);
        assert_eq!(
            w.rules[0].operations,
            vec![OperationType::Create, OperationType::Update]
        );
        assert_eq!(w.rules[0].scope, Some(Scope::Namespaced));
        assert_eq!(w.reinvocation_policy, Some(ReinvocationPolicy::IfNeeded));
    }

    #[test]
    fn unknown_fields_and_values_are_parse_errors() {
        assert!(parse("name: a\nclientConfig: {url: 'https://x'}\nfailurPolicy: Fail\n").is_err());
        assert!(parse("name: a\nclientConfig: {url: 'https://x', sockett: /x}\n").is_err());
        assert!(
            parse("name: a\nclientConfig: {url: 'https://x'}\nfailurePolicy: Maybe\n").is_err()
        );
        assert!(parse(
            "name: a\nclientConfig: {url: 'https://x'}\nrules: [{operations: [CREAT]}]\n"
        )
        .is_err());
    }

    #[test]
    fn service_is_accepted_then_rejected() {
        let e = invalid_field(
            "name: a\nclientConfig:\n  service: {namespace: default, name: hook, port: 443}\n",
        );
        assert_eq!(e.field, "clientConfig.service");
        assert_eq!(e.message, "no API server here: use url or socket");
    }

    #[test]
    fn exactly_one_of_url_and_socket() {
        let e = invalid_field("name: a\nclientConfig: {}\n");
        assert_eq!(e.field, "clientConfig");
        let e = invalid_field("name: a\nclientConfig: {url: 'https://x', socket: /run/x.sock}\n");
        assert!(e.message.contains("not both"), "{e}");
        let w = valid("name: a\nclientConfig: {socket: /run/x.sock, path: /validate}\n");
        assert_eq!(w.client_config.socket_path(), "/validate");
        let e = invalid_field("name: a\nclientConfig: {socket: /run/x.sock, path: validate}\n");
        assert_eq!(e.field, "clientConfig.path");
        let e = invalid_field("name: a\nclientConfig: {url: 'https://x', path: /v}\n");
        assert_eq!(e.field, "clientConfig.path");
    }

    #[test]
    fn https_except_on_loopback() {
        for ok in [
            "https://hook.example.com",
            "http://127.0.0.1:9000/v",
            "http://[::1]:80/",
            "http://localhost/x",
        ] {
            valid(&format!("name: a\nclientConfig: {{url: '{ok}'}}\n"));
        }
        for (bad, want) in [
            (
                "http://hook.example.com/",
                "plain 'http' is allowed only to a loopback host",
            ),
            ("ftp://127.0.0.1/", "'https' is the only allowed URL scheme"),
            ("https://h/x?y=1", "query parameters are not permitted"),
            ("https://h/x#f", "fragments are not permitted"),
            ("https://u:p@h/x", "user information is not permitted"),
            ("/just/a/path", "host must be specified"),
        ] {
            let e = invalid_field(&format!("name: a\nclientConfig: {{url: '{bad}'}}\n"));
            assert_eq!(e.field, "clientConfig.url");
            assert!(e.message.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn tls_settings_need_a_url_and_come_in_pairs() {
        let e = invalid_field(
            "name: a\nclientConfig: {socket: /s, clientCertFile: /c, clientKeyFile: /k}\n",
        );
        assert_eq!(e.field, "clientConfig.clientCertFile");
        let e = invalid_field("name: a\nclientConfig: {url: 'https://h', clientCertFile: /c}\n");
        assert!(e.message.contains("together"), "{e}");
        let e = invalid_field("name: a\nclientConfig: {url: 'https://h', caBundle: '!!!'}\n");
        assert!(e.message.starts_with("not base64"), "{e}");
        let e = invalid_field("name: a\nclientConfig: {url: 'https://h', caBundle: aGVsbG8=}\n");
        assert!(e.message.contains("no PEM CERTIFICATE"), "{e}");
        valid("name: a\nclientConfig: {socket: /s, bearerTokenFile: /t}\n");
    }

    #[test]
    fn timeout_range() {
        for (t, ok) in [(0, false), (1, true), (30, true), (31, false), (-1, false)] {
            let w = parse(&format!("{MINIMAL}timeoutSeconds: {t}\n")).unwrap();
            assert_eq!(w.validate().is_ok(), ok, "{t}");
        }
    }

    #[test]
    fn review_versions() {
        let w = valid(&format!(
            "{MINIMAL}admissionReviewVersions: [v2, v1beta1, v1]\n"
        ));
        assert_eq!(w.review_version(), Some("v1beta1"));
        let e = invalid_field(&format!("{MINIMAL}admissionReviewVersions: [v2]\n"));
        assert_eq!(e.field, "admissionReviewVersions");
        assert!(e.message.contains("v1, v1beta1"), "{e}");
        let e = invalid_field(&format!("{MINIMAL}admissionReviewVersions: []\n"));
        assert_eq!(e.field, "admissionReviewVersions");
        let e = invalid_field(&format!("{MINIMAL}admissionReviewVersions: [v1, v1]\n"));
        assert!(e.message.contains("duplicate"), "{e}");
    }

    #[test]
    fn match_conditions_need_cel() {
        let e = invalid_field(&format!(
            "{MINIMAL}matchConditions:\n- name: x\n  expression: 'true'\n"
        ));
        assert_eq!(e.field, "matchConditions");
        assert_eq!(
            e.message,
            "matchConditions need CEL (issue #3); remove them for now"
        );
        valid(&format!("{MINIMAL}matchConditions: []\n"));
    }

    #[test]
    fn rules_are_checked_like_upstream() {
        let rule = |r: &str| format!("{MINIMAL}rules:\n- {r}\n");
        valid(&rule(
            "{operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*/*']}",
        ));
        valid(&rule("{operations: [CONNECT], apiGroups: [''], apiVersions: [v1], resources: ['pods/exec', 'pods/attach']}"));
        for (r, field) in [
            ("{apiGroups: [''], apiVersions: [v1], resources: [pods]}", "rules[0].operations"),
            ("{operations: ['*', CREATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}", "rules[0].operations"),
            ("{operations: [CREATE], apiVersions: [v1], resources: [pods]}", "rules[0].apiGroups"),
            ("{operations: [CREATE], apiGroups: [''], apiVersions: ['*', v1], resources: [pods]}", "rules[0].apiVersions"),
            ("{operations: [CREATE], apiGroups: [''], apiVersions: [v1]}", "rules[0].resources"),
            ("{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: ['*/*', pods]}", "rules[0].resources"),
            ("{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: ['*', pods]}", "rules[0].resources"),
            ("{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: ['pods/*', pods/exec]}", "rules[0].resources"),
        ] {
            let e = invalid_field(&rule(r));
            assert_eq!(e.field, field, "{r}: {e}");
        }
    }

    #[test]
    fn selectors() {
        let e = invalid_field(&format!(
            "{MINIMAL}objectSelector:\n  matchExpressions: [{{key: a, operator: In}}]\n"
        ));
        assert_eq!(e.field, "objectSelector.matchExpressions[0].values");
        let e = invalid_field(&format!(
            "{MINIMAL}namespaceSelector:\n  matchExpressions: [{{key: a, operator: Exists, values: [x]}}]\n"
        ));
        assert_eq!(e.field, "namespaceSelector.matchExpressions[0].values");

        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".into(), "front".into()),
        ]
        .into();
        let sel = |yaml: &str| serde_saphyr::from_str::<LabelSelector>(yaml).unwrap();
        assert!(sel("{}").matches(&labels));
        assert!(sel("{}").matches(&BTreeMap::new()));
        assert!(sel("matchLabels: {app: web}").matches(&labels));
        assert!(!sel("matchLabels: {app: db}").matches(&labels));
        assert!(
            sel("matchExpressions: [{key: app, operator: In, values: [web, db]}]").matches(&labels)
        );
        assert!(
            !sel("matchExpressions: [{key: nope, operator: In, values: [x]}]").matches(&labels)
        );
        assert!(
            sel("matchExpressions: [{key: nope, operator: NotIn, values: [x]}]").matches(&labels)
        );
        assert!(
            !sel("matchExpressions: [{key: app, operator: NotIn, values: [web]}]").matches(&labels)
        );
        assert!(sel("matchExpressions: [{key: tier, operator: Exists}]").matches(&labels));
        assert!(!sel("matchExpressions: [{key: tier, operator: DoesNotExist}]").matches(&labels));
        assert!(!sel(
            "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: DoesNotExist}]}"
        )
        .matches(&labels));
    }

    #[test]
    fn reinvocation_only_for_mutating() {
        let e = invalid_field(&format!("{MINIMAL}reinvocationPolicy: IfNeeded\n"));
        assert_eq!(e.field, "reinvocationPolicy");
        valid(&format!(
            "{MINIMAL}kind: Mutating\nreinvocationPolicy: Never\n"
        ));
    }
}
