//! Webhook entries: parsing, upstream's validation, and label selectors.

use std::collections::BTreeMap;

use base64::Engine as _;

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
    assert!(parse("name: a\nclientConfig: {url: 'https://x'}\nfailurePolicy: Maybe\n").is_err());
    assert!(
        parse("name: a\nclientConfig: {url: 'https://x'}\nrules: [{operations: [CREAT]}]\n")
            .is_err()
    );
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
    assert!(!sel("matchExpressions: [{key: nope, operator: In, values: [x]}]").matches(&labels));
    assert!(sel("matchExpressions: [{key: nope, operator: NotIn, values: [x]}]").matches(&labels));
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
