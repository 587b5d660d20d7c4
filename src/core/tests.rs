//! The decision core against real (in-process) webhook servers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::status::denial_status;
use super::testing::{handler, Pki, Reply, Seen, Server};
use super::*;
use crate::config::WebhookConfig;
use crate::review::{GroupVersionKind, GroupVersionResource, Operation, Outcome, Refusal, Status};

const ALL: &str =
    "rules: [{operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*/*']}]\n";

/// `clientConfig` pointing at `server` (`path` is the HTTP path).
fn client(server: &Server, path: &str) -> String {
    match &server.socket {
        Some(socket) => format!("{{socket: '{}', path: '{path}'}}", socket.display()),
        None => format!("{{url: '{}{path}'}}", server.base),
    }
}

fn hook(name: &str, kind: &str, client: &str, extra: &str) -> WebhookConfig {
    let rules = if extra.contains("rules:") { "" } else { ALL };
    let yaml = format!("name: {name}\nkind: {kind}\nclientConfig: {client}\n{rules}{extra}");
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn decider(webhooks: Vec<WebhookConfig>) -> Decider {
    Decider::new(&Config {
        webhooks,
        ..Config::default()
    })
    .unwrap()
}

fn pod() -> AdmissionRequest {
    let mut r = AdmissionRequest::pod(Operation::Create);
    r.namespace = "default".into();
    r.name = "web".into();
    r.object = Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }));
    r
}

fn outcomes(v: &Verdict) -> Vec<(&str, Outcome)> {
    v.trail
        .iter()
        .map(|r| (r.policy.as_str(), r.outcome))
        .collect()
}

#[tokio::test]
async fn allowed_without_status() {
    let server = Server::http(handler(Reply::allow)).await;
    let d = decider(vec![hook(
        "v.example.com",
        "Validating",
        &client(&server, "/validate"),
        "",
    )]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(
        (&v.status().cloned(), &v.refusal(), &v.mutated().cloned()),
        (&None, &None, &None)
    );
    assert_eq!(outcomes(&v), vec![("v.example.com", Outcome::Allowed)]);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].path_and_query, "/validate?timeout=10s");
    assert_eq!(seen[0].review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(seen[0].review["kind"], "AdmissionReview");
    assert_eq!(
        seen[0].review["request"],
        serde_json::to_value(pod_with_uid(&seen[0])).unwrap()
    );
}

fn pod_with_uid(seen: &Seen) -> AdmissionRequest {
    AdmissionRequest {
        uid: seen.uid(),
        ..pod()
    }
}

#[tokio::test]
async fn denied_with_message_code_and_reason() {
    let server = Server::http(handler(|s| {
        Reply::deny(s, json!({"code": 422, "message": "no latest tags", "reason": "Invalid", "status": "Failure"}))
    }))
    .await;
    let d = decider(vec![hook(
        "tags.example.com",
        "Validating",
        &client(&server, "/"),
        "",
    )]);
    let v = d.decide(&pod()).await;
    assert!(!v.is_allowed());
    assert_eq!(v.refusal(), Some(Refusal::Denied));
    let status = v.status().cloned().unwrap();
    assert_eq!(
        status.message,
        r#"admission webhook "tags.example.com" denied the request: no latest tags"#
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (Some(422), "Invalid")
    );
    assert_eq!(outcomes(&v), vec![("tags.example.com", Outcome::Denied)]);
    assert_eq!(v.trail[0].message, status.message);
}

#[tokio::test]
async fn denied_without_message() {
    let server = Server::http(handler(|s| {
        Reply::review(s, json!({"uid": s.uid(), "allowed": false}))
    }))
    .await;
    let d = decider(vec![hook(
        "quiet.example.com",
        "Validating",
        &client(&server, "/"),
        "",
    )]);
    let v = d.decide(&pod()).await;
    let status = v.status().cloned().unwrap();
    assert_eq!(
        status.message,
        r#"admission webhook "quiet.example.com" denied the request without explanation"#
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.status.as_str()),
        (Some(403), "Forbidden", "Failure")
    );
    assert_eq!(v.refusal(), Some(Refusal::Denied));
}

#[tokio::test]
async fn mutating_webhooks_patch_in_sequence() {
    let first = Server::http(handler(|s| {
        Reply::patch(
            s,
            json!([{"op": "add", "path": "/metadata/labels/first", "value": "1"}]),
        )
    }))
    .await;
    // The second webhook sees the first one's label and copies it.
    let second = Server::unix(handler(|s| {
        let seen = s.object()["metadata"]["labels"]["first"].clone();
        Reply::patch(
            s,
            json!([{"op": "add", "path": "/metadata/labels/second", "value": seen}]),
        )
    }))
    .await;
    let validator = Server::http(handler(|s| {
        let labels = &s.object()["metadata"]["labels"];
        if labels["first"] == "1" && labels["second"] == "1" {
            Reply::allow(s)
        } else {
            Reply::deny(s, json!({"message": format!("saw {labels}")}))
        }
    }))
    .await;
    let d = decider(vec![
        hook(
            "check.example.com",
            "Validating",
            &client(&validator, "/"),
            "",
        ),
        hook(
            "first.example.com",
            "Mutating",
            &client(&first, "/mutate"),
            "",
        ),
        hook(
            "second.example.com",
            "Mutating",
            &client(&second, "/mutate"),
            "",
        ),
    ]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    let mutated = v.mutated().cloned().unwrap();
    assert_eq!(
        mutated["metadata"]["labels"],
        json!({"app": "web", "first": "1", "second": "1"})
    );
    assert_eq!(
        outcomes(&v),
        vec![
            ("first.example.com", Outcome::Mutated),
            ("second.example.com", Outcome::Mutated),
            ("check.example.com", Outcome::Allowed),
        ]
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_is_not_a_mutation() {
    let server = Server::http(handler(|s| {
        Reply::patch(
            s,
            json!([{"op": "replace", "path": "/metadata/name", "value": "web"}]),
        )
    }))
    .await;
    let d = decider(vec![hook(
        "m.example.com",
        "Mutating",
        &client(&server, "/"),
        "",
    )]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed() && v.mutated().cloned().is_none(), "{v:?}");
    assert_eq!(outcomes(&v), vec![("m.example.com", Outcome::Allowed)]);
}

/// Bad webhook behaviours, each under `failurePolicy: Fail` and `Ignore`.
#[tokio::test]
async fn call_failures_follow_the_failure_policy() {
    type Case = (
        &'static str,
        &'static str,
        Box<dyn Fn(&Seen) -> Reply + Send + Sync>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "validating patch",
            "Validating",
            Box::new(|s| Reply::patch(s, json!([]))),
            "received invalid webhook response: validating webhook may not return response.patch",
        ),
        (
            "wrong uid",
            "Validating",
            Box::new(|s| Reply::review(s, json!({"uid": "nope", "allowed": true}))),
            "received invalid webhook response: expected response.uid=",
        ),
        (
            "wrong apiVersion",
            "Validating",
            Box::new(|s| {
                Reply::raw(
                    200,
                    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                                               "response": {"uid": s.uid(), "allowed": true}}))
                    .unwrap(),
                )
            }),
            "received invalid webhook response: expected webhook response of admission.k8s.io/v1, \
             Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview",
        ),
        (
            "patchType missing",
            "Mutating",
            Box::new(|s| Reply::review(s, json!({"uid": s.uid(), "allowed": true, "patch": "W10="}))),
            "received invalid webhook response: webhook returned response.patch but not response.patchType",
        ),
        (
            "garbage body",
            "Validating",
            Box::new(|_| Reply::raw(200, "<html>hello</html>")),
            "received invalid webhook response: webhook response is not a JSON AdmissionReview",
        ),
        (
            "non-200",
            "Validating",
            Box::new(|_| Reply::raw(500, "boom")),
            "webhook answered HTTP 500 Internal Server Error: boom",
        ),
        (
            "timeout",
            "Mutating",
            Box::new(|s| Reply::allow(s).after(Duration::from_millis(2500))),
            "timed out after 1s (timeoutSeconds)",
        ),
    ];
    for (what, kind, reply, detail) in cases {
        let server = Server::http(std::sync::Arc::from(reply)).await;
        let name = "bad.example.com";
        let cc = client(&server, "/x");
        for policy in ["Fail", "Ignore"] {
            let d = decider(vec![hook(
                name,
                kind,
                &cc,
                &format!("failurePolicy: {policy}\ntimeoutSeconds: 1\n"),
            )]);
            let v = d.decide(&pod()).await;
            check_failure(&v, name, kind, policy, detail, what);
        }
    }
}

#[tokio::test]
async fn connection_refused_follows_the_failure_policy() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cc = format!("{{url: 'http://127.0.0.1:{port}/'}}");
    for policy in ["Fail", "Ignore"] {
        let d = decider(vec![hook(
            "gone.example.com",
            "Validating",
            &cc,
            &format!("failurePolicy: {policy}\n"),
        )]);
        let v = d.decide(&pod()).await;
        check_failure(
            &v,
            "gone.example.com",
            "Validating",
            policy,
            "onnection refused",
            "refused",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cc = format!(
        "{{socket: '{}'}}",
        dir.path().join("missing.sock").display()
    );
    let d = decider(vec![hook("nosock.example.com", "Validating", &cc, "")]);
    let v = d.decide(&pod()).await;
    check_failure(
        &v,
        "nosock.example.com",
        "Validating",
        "Fail",
        "missing.sock",
        "no socket",
    );
}

fn check_failure(v: &Verdict, name: &str, kind: &str, policy: &str, detail: &str, what: &str) {
    let ctx = format!("{what} under {policy}: {v:?}");
    assert!(v.warnings.is_empty(), "{ctx}");
    assert_eq!(v.trail.len(), 1, "{ctx}");
    assert!(v.trail[0].message.contains(detail), "{ctx}");
    if policy == "Fail" {
        assert!(!v.is_allowed(), "{ctx}");
        assert_eq!(v.refusal(), Some(Refusal::Failed), "{ctx}");
        let status = v.status().unwrap();
        assert_eq!(status.code, Some(500), "{ctx}");
        assert_eq!(status.reason, "InternalError", "{ctx}");
        assert!(
            status
                .message
                .starts_with(&format!("failed calling webhook \"{name}\": ")),
            "{ctx}"
        );
        assert!(status.message.contains(detail), "{ctx}");
        assert_eq!(v.trail[0].outcome, Outcome::Failed, "{ctx}");
    } else {
        assert!(v.is_allowed(), "{ctx}");
        assert_eq!(
            (&v.status().cloned(), &v.refusal(), &v.mutated().cloned()),
            (&None, &None, &None),
            "{ctx}"
        );
        assert_eq!(v.trail[0].outcome, Outcome::Ignored, "{ctx}");
        let phase = if kind == "Mutating" {
            "mutation"
        } else {
            "validating"
        };
        let key = format!("failed-open.{phase}.webhook.admission.k8s.io/round_0_index_0");
        assert_eq!(
            v.audit_annotations.get(&key).map(String::as_str),
            Some(name),
            "{ctx}"
        );
    }
}

#[tokio::test]
async fn unapplicable_patches_fail_closed_even_under_ignore() {
    let server = Server::http(handler(|s| {
        Reply::patch(s, json!([{"op": "remove", "path": "/metadata/nothing"}]))
    }))
    .await;
    let d = decider(vec![hook(
        "m.example.com",
        "Mutating",
        &client(&server, "/"),
        "failurePolicy: Ignore\n",
    )]);
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Failed), "{v:?}");
    assert!(v.message().starts_with(
        r#"admission webhook "m.example.com" returned a patch that cannot be applied"#
    ));

    let mut delete = pod();
    delete.operation = Operation::Delete;
    delete.old_object = delete.object.take();
    let server = Server::http(handler(|s| {
        Reply::patch(s, json!([{"op": "add", "path": "/x", "value": 1}]))
    }))
    .await;
    let d = decider(vec![hook(
        "m.example.com",
        "Mutating",
        &client(&server, "/"),
        "",
    )]);
    let v = d.decide(&delete).await;
    assert_eq!(
        v.message(),
        r#"admission webhook "m.example.com" attempted to modify the object, which is not supported for this operation"#
    );
}

#[tokio::test]
async fn v1beta1_when_that_is_what_the_webhook_takes() {
    let server = Server::http(handler(|s| {
        // An old webhook: no uid echo, no apiVersion, no patchType.
        let _ = s;
        let patch = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            br#"[{"op":"add","path":"/metadata/labels/old","value":"yes"}]"#,
        );
        Reply::raw(
            200,
            serde_json::to_vec(&json!({"response": {"allowed": true, "patch": patch}})).unwrap(),
        )
    }))
    .await;
    let d = decider(vec![hook(
        "old.example.com",
        "Mutating",
        &client(&server, "/"),
        "admissionReviewVersions: [v1beta1]\n",
    )]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(
        v.mutated().cloned().unwrap()["metadata"]["labels"]["old"],
        "yes"
    );
    assert_eq!(
        server.seen()[0].review["apiVersion"],
        "admission.k8s.io/v1beta1"
    );
}

#[tokio::test]
async fn only_matching_webhooks_are_called() {
    let server = Server::http(handler(|s| Reply::deny(s, json!({"message": "called"})))).await;
    let cc = client(&server, "/");
    let d = decider(vec![
        hook("none.example.com", "Validating", &cc, "rules: []\n"),
        hook(
            "deploys.example.com",
            "Validating",
            &cc,
            "rules: [{operations: [CREATE], apiGroups: [apps], apiVersions: [v1], resources: [deployments]}]\n",
        ),
        hook(
            "exec.example.com",
            "Validating",
            &cc,
            "rules: [{operations: [CONNECT], apiGroups: [''], apiVersions: [v1], resources: [pods/exec]}]\n",
        ),
        hook("kube-system.example.com", "Validating", &cc, "namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}\n"),
        hook("db.example.com", "Mutating", &cc, "objectSelector: {matchLabels: {app: db}}\n"),
    ]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    assert!(v.trail.is_empty());
    assert_eq!(server.calls(), 0);

    // The exec webhook is called for an exec.
    let mut exec = AdmissionRequest::new(
        Operation::Connect,
        GroupVersionKind::core("PodExecOptions"),
        GroupVersionResource::core("pods"),
        Some("exec"),
    );
    exec.namespace = "default".into();
    let v = d.decide(&exec).await;
    assert_eq!(outcomes(&v), vec![("exec.example.com", Outcome::Denied)]);
}

#[tokio::test]
async fn validating_webhooks_run_concurrently_and_first_in_config_order_wins() {
    let slow = Server::http(handler(|s| {
        Reply::deny(s, json!({"message": "slow says no"})).after(Duration::from_millis(800))
    }))
    .await;
    let fast = Server::http(handler(|s| {
        Reply::deny(s, json!({"message": "fast says no"}))
    }))
    .await;
    let warn = Server::http(handler(|s| {
        Reply::review(
            s,
            json!({"uid": s.uid(), "allowed": true, "warnings": ["w1", "w2"], "auditAnnotations": {"checked": "true"}}),
        )
        .after(Duration::from_millis(800))
    }))
    .await;
    let d = decider(vec![
        hook("slow.example.com", "Validating", &client(&slow, "/"), ""),
        hook("fast.example.com", "Validating", &client(&fast, "/"), ""),
        hook("warn.example.com", "Validating", &client(&warn, "/"), ""),
    ]);
    let start = Instant::now();
    let v = d.decide(&pod()).await;
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(v.refusal(), Some(Refusal::Denied));
    assert_eq!(
        v.message(),
        r#"admission webhook "slow.example.com" denied the request: slow says no"#
    );
    assert_eq!(
        outcomes(&v),
        vec![
            ("slow.example.com", Outcome::Denied),
            ("fast.example.com", Outcome::Denied),
            ("warn.example.com", Outcome::Allowed),
        ]
    );
    assert_eq!(v.warnings, vec!["w1", "w2"]);
    assert_eq!(
        v.audit_annotations,
        BTreeMap::from([("warn.example.com/checked".to_string(), "true".to_string())])
    );
}

#[tokio::test]
async fn a_mutating_denial_stops_the_chain_and_keeps_warnings() {
    let m = Server::http(handler(|s| {
        Reply::review(
            s,
            json!({"uid": s.uid(), "allowed": false, "warnings": ["careful"],
                               "status": {"message": "nope", "code": 400}}),
        )
    }))
    .await;
    let later = Server::http(handler(Reply::allow)).await;
    let d = decider(vec![
        hook("m.example.com", "Mutating", &client(&m, "/"), ""),
        hook("later.example.com", "Mutating", &client(&later, "/"), ""),
        hook("v.example.com", "Validating", &client(&later, "/"), ""),
    ]);
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Denied));
    assert_eq!(v.status().unwrap().code, Some(400));
    assert_eq!(v.warnings, vec!["careful"]);
    assert_eq!(later.calls(), 0);
}

#[tokio::test]
async fn if_needed_webhooks_are_reinvoked_after_a_later_change() {
    let again = Server::http(handler(Reply::allow)).await;
    let changer = Server::http(handler(|s| {
        Reply::patch(
            s,
            json!([{"op": "add", "path": "/metadata/labels/changed", "value": "yes"}]),
        )
    }))
    .await;
    let d = decider(vec![
        hook(
            "again.example.com",
            "Mutating",
            &client(&again, "/"),
            "reinvocationPolicy: IfNeeded\n",
        ),
        hook(
            "changer.example.com",
            "Mutating",
            &client(&changer, "/"),
            "reinvocationPolicy: IfNeeded\n",
        ),
    ]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed());
    assert_eq!(again.calls(), 2);
    assert_eq!(
        changer.calls(),
        1,
        "a webhook's own change does not reinvoke it"
    );
    assert_eq!(
        again.seen()[1].object()["metadata"]["labels"]["changed"],
        "yes"
    );
}

#[tokio::test]
async fn connections_are_reused() {
    for server in [
        Server::http(handler(Reply::allow)).await,
        Server::unix(handler(Reply::allow)).await,
    ] {
        let d = decider(vec![hook(
            "v.example.com",
            "Validating",
            &client(&server, "/"),
            "",
        )]);
        for _ in 0..5 {
            assert!(d.decide(&pod()).await.is_allowed());
        }
        assert_eq!(server.calls(), 5);
        assert_eq!(server.connections(), 1, "socket {:?}", server.socket);
    }
}

#[tokio::test]
async fn unix_socket_path_is_used() {
    let server = Server::unix(handler(Reply::allow)).await;
    let d = decider(vec![hook(
        "u.example.com",
        "Validating",
        &client(&server, "/admit/pods"),
        "",
    )]);
    assert!(d.decide(&pod()).await.is_allowed());
    assert_eq!(server.seen()[0].path_and_query, "/admit/pods?timeout=10s");
}

#[tokio::test]
async fn https_with_a_ca_bundle_over_h2() {
    let pki = Pki::new();
    let server = Server::https(handler(Reply::allow), pki.server_config(false)).await;
    let cc = format!(
        "{{url: '{}/validate', caBundle: {}}}",
        server.base,
        pki.ca_bundle()
    );
    let d = decider(vec![hook("tls.example.com", "Validating", &cc, "")]);
    for _ in 0..5 {
        let v = d.decide(&pod()).await;
        assert!(v.is_allowed(), "{v:?}");
    }
    assert_eq!(server.seen()[0].version, http::Version::HTTP_2);
    assert_eq!(server.connections(), 1);

    // Another CA's bundle is not trusted.
    let other = Pki::new();
    let cc = format!(
        "{{url: '{}/validate', caBundle: {}}}",
        server.base,
        other.ca_bundle()
    );
    let d = decider(vec![hook("tls.example.com", "Validating", &cc, "")]);
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Failed));
    assert!(v.message().contains("certificate"), "{}", v.message());
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = Pki::new();
    let server = Server::https(handler(Reply::allow), pki.server_config(true)).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("client.crt");
    let key = dir.path().join("client.key");
    std::fs::write(&cert, &pki.client_cert_pem).unwrap();
    std::fs::write(&key, &pki.client_key_pem).unwrap();
    let cc = format!(
        "{{url: '{}/', caBundle: {}, clientCertFile: '{}', clientKeyFile: '{}'}}",
        server.base,
        pki.ca_bundle(),
        cert.display(),
        key.display()
    );
    let d = decider(vec![hook("mtls.example.com", "Validating", &cc, "")]);
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");

    // Without the certificate the server refuses the handshake.
    let cc = format!("{{url: '{}/', caBundle: {}}}", server.base, pki.ca_bundle());
    let d = decider(vec![hook("mtls.example.com", "Validating", &cc, "")]);
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Failed), "{v:?}");
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn bearer_token_is_sent_and_reread_when_it_changes() {
    let server = Server::unix(handler(Reply::allow)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let socket = server.socket.clone().unwrap();
    let cc = format!(
        "{{socket: '{}', bearerTokenFile: '{}'}}",
        socket.display(),
        token.display()
    );
    let d = decider(vec![hook("t.example.com", "Validating", &cc, "")]);
    assert!(d.decide(&pod()).await.is_allowed());
    std::fs::write(&token, "second-token-longer").unwrap();
    assert!(d.decide(&pod()).await.is_allowed());
    let seen = server.seen();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer first-token"));
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some("Bearer second-token-longer")
    );

    std::fs::remove_file(&token).unwrap();
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Failed));
    assert!(
        v.message().contains("cannot read bearer token file"),
        "{}",
        v.message()
    );
}

#[tokio::test]
async fn oversized_answers_are_call_failures() {
    let server = Server::http(handler(|_| {
        Reply::raw(200, vec![b' '; MAX_RESPONSE_BYTES + 1])
    }))
    .await;
    let d = decider(vec![hook(
        "big.example.com",
        "Validating",
        &client(&server, "/"),
        "",
    )]);
    let v = d.decide(&pod()).await;
    assert_eq!(v.refusal(), Some(Refusal::Failed));
    assert!(
        v.message().contains("response body exceeds"),
        "{}",
        v.message()
    );
}

#[tokio::test]
async fn dry_run_needs_side_effect_free_webhooks() {
    let server = Server::http(handler(Reply::allow)).await;
    let cc = client(&server, "/");
    let mut dry = pod();
    dry.dry_run = Some(true);
    let v = decider(vec![hook(
        "ok.example.com",
        "Validating",
        &cc,
        "sideEffects: None\n",
    )])
    .decide(&dry)
    .await;
    assert!(v.is_allowed());
    let v = decider(vec![hook(
        "se.example.com",
        "Validating",
        &cc,
        "sideEffects: Some\n",
    )])
    .decide(&dry)
    .await;
    assert_eq!(v.status().unwrap().code, Some(400));
    assert_eq!(
        v.message(),
        r#"admission webhook "se.example.com" does not support dry run"#
    );
    let v = decider(vec![hook("nil.example.com", "Validating", &cc, "")])
        .decide(&dry)
        .await;
    assert_eq!(
        v.message(),
        r#"failed calling webhook "nil.example.com": Webhook SideEffects is nil"#
    );
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn no_webhooks_allow_everything_unchanged() {
    let d = decider(vec![]);
    assert!(d.is_empty());
    let v = d.decide(&pod()).await;
    assert_eq!(v, Verdict::allowed(None));
}

#[test]
fn invalid_webhooks_are_setup_errors() {
    let bad = hook(
        "x.example.com",
        "Validating",
        "{url: 'http://example.com/'}",
        "",
    );
    let e = Decider::new(&Config {
        webhooks: vec![bad],
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .starts_with(r#"webhook "x.example.com": clientConfig.url: "#),
        "{e}"
    );
    let missing = hook(
        "m.example.com",
        "Validating",
        "{url: 'https://127.0.0.1/', clientCertFile: /nonexistent/c, clientKeyFile: /nonexistent/k}",
        "",
    );
    let e = Decider::new(&Config {
        webhooks: vec![missing],
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("/nonexistent/c"), "{e}");
}

#[test]
fn decide_is_send() {
    fn send<T: Send>(_: &T) {}
    let d = decider(vec![]);
    let req = pod();
    let fut = d.decide(&req);
    send(&fut);
    fn sync<T: Send + Sync>() {}
    sync::<Decider>();
}

#[test]
fn denial_wording_matches_kube_apiserver() {
    let s = denial_status(
        "w",
        Some(Status {
            reason: "NotAllowed".into(),
            ..Status::default()
        }),
    );
    assert_eq!(
        s.message,
        r#"admission webhook "w" denied the request: NotAllowed"#
    );
    assert_eq!(s.reason, "NotAllowed");
    let s = denial_status(
        "w",
        Some(Status {
            code: Some(500),
            ..Status::default()
        }),
    );
    assert_eq!((s.code, s.reason.as_str()), (Some(500), "InternalError"));
    let _: Value = serde_json::to_value(&s).unwrap();
}

#[tokio::test]
async fn namespace_selectors_see_the_configured_namespace_labels() {
    let server = Server::http(handler(|s| {
        Reply::deny(s, json!({"message": "restricted ns"}))
    }))
    .await;
    let cc = client(&server, "/");
    let config: Config = Config {
        webhooks: vec![hook(
            "tier.example.com",
            "Validating",
            &cc,
            "namespaceSelector: {matchLabels: {tier: restricted}}\n",
        )],
        namespaces: serde_saphyr::from_str("default: {labels: {tier: restricted}}\n").unwrap(),
        ..Config::default()
    };
    let d = Decider::new(&config).unwrap();
    assert_eq!(d.namespace_labels("default")["tier"], "restricted");
    assert_eq!(
        d.namespace_labels("default")["kubernetes.io/metadata.name"],
        "default"
    );
    let v = d.decide(&pod()).await;
    assert_eq!(outcomes(&v), vec![("tier.example.com", Outcome::Denied)]);
    let mut other = pod();
    other.namespace = "moby".into();
    assert!(d.decide(&other).await.is_allowed());
}

#[tokio::test]
async fn modes_turn_refusals_into_warnings_or_audit_annotations() {
    let server = Server::http(handler(|s| Reply::deny(s, json!({"message": "no"})))).await;
    let cc = client(&server, "/");
    let with_mode = |webhook_mode: &str, global: Option<crate::config::Mode>| {
        Decider::new(&Config {
            webhooks: vec![hook(
                "m.example.com",
                "Validating",
                &cc,
                &format!("mode: {webhook_mode}\n"),
            )],
            mode: global,
            ..Config::default()
        })
        .unwrap()
    };
    let v = with_mode("enforce", None).decide(&pod()).await;
    assert!(!v.is_allowed());
    let v = with_mode("warn", None).decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    assert!(
        v.warnings[0].contains("denied the request: no") && v.warnings[0].contains("warn"),
        "{v:?}"
    );
    let v = with_mode("audit", None).decide(&pod()).await;
    assert!(v.is_allowed() && v.warnings.is_empty());
    assert!(v.audit_annotations["portcullis.dev/audit.m.example.com"].contains("no"));
    // The global override wins over the policy's own mode, both ways.
    assert!(with_mode("enforce", Some(crate::config::Mode::Audit))
        .decide(&pod())
        .await
        .is_allowed());
    assert!(!with_mode("audit", Some(crate::config::Mode::Enforce))
        .decide(&pod())
        .await
        .is_allowed());
}

#[tokio::test]
async fn exempt_requests_and_break_glass_skip_every_policy() {
    let server = Server::http(handler(|s| Reply::deny(s, json!({"message": "no"})))).await;
    let cc = client(&server, "/");
    let config = Config {
        webhooks: vec![hook("deny.example.com", "Validating", &cc, "")],
        exemptions: serde_saphyr::from_str("namespaces: [kube-system]\n").unwrap(),
        break_glass: serde_saphyr::from_str("callers: ['uid:0']\nenabled: true\n").unwrap(),
        ..Config::default()
    };
    let d = Decider::new(&config).unwrap();
    assert!(!d.decide(&pod()).await.is_allowed());
    let mut system = pod();
    system.namespace = "kube-system".into();
    let v = d.decide(&system).await;
    assert!(v.is_allowed() && v.trail[0].policy == "exemptions", "{v:?}");
    let mut glass = pod();
    glass.user_info.uid = "0".into();
    glass.object.as_mut().unwrap()["metadata"]["labels"] =
        json!({"portcullis.dev/break-glass": "INC-1"});
    let v = d.decide(&glass).await;
    assert!(v.is_allowed() && v.trail[0].policy == "breakGlass", "{v:?}");
    assert!(v
        .audit_annotations
        .contains_key("portcullis.dev/breakGlass"));
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn mutating_admission_policies_patch_before_validation_sees_the_object() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policies.yaml"),
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: add-team}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"team": namespaceObject.metadata.labels.team}}}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: add-team}
spec: {policyName: add-team}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: team-required}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  validations:
  - expression: has(object.metadata.labels.team)
    message: pods need a team label
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: team-required}
spec: {policyName: team-required, validationActions: [Deny]}
"#,
    )
    .unwrap();
    let config = Config {
        policy_dir: Some(crate::config::PolicyDir::read(dir.path()).unwrap()),
        namespaces: serde_saphyr::from_str("default: {labels: {team: blue}}\n").unwrap(),
        ..Config::default()
    };
    let d = Decider::new(&config).unwrap();
    let v = d.decide(&pod()).await;
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(
        outcomes(&v),
        vec![
            ("mutatingAdmissionPolicies", Outcome::Mutated),
            ("validatingAdmissionPolicies", Outcome::Allowed)
        ]
    );
    let mutated = v.mutated().cloned().expect("mutated");
    assert_eq!(
        mutated["metadata"]["labels"],
        json!({"app": "web", "team": "blue"})
    );
    // Where the namespace has no team, the mutation fails (failurePolicy: Fail).
    let mut other = pod();
    other.namespace = "moby".into();
    let v = d.decide(&other).await;
    assert!(!v.is_allowed());
    let message = v.message();
    assert!(
        message.starts_with(
            "policy \"mutatingAdmissionPolicies\" denied the request: policy 'add-team' with \
             binding 'add-team' denied request: expression 'Object{"
        ),
        "{message}"
    );
}

#[test]
fn a_namespace_not_listed_gets_the_star_entry() {
    let config = Config {
        namespaces: serde_saphyr::from_str(
            "default: {labels: {tier: open}}\n\"*\": {labels: {pod-security.kubernetes.io/enforce: baseline}}\n",
        )
        .unwrap(),
        ..Config::default()
    };
    let d = Decider::new(&config).unwrap();
    assert_eq!(
        d.namespace_labels("default")
            .get("pod-security.kubernetes.io/enforce"),
        None
    );
    let other = d.namespace_labels("made-up");
    assert_eq!(other["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(other["kubernetes.io/metadata.name"], "made-up");
}
