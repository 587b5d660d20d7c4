//! The decision cache and the metrics, seen through [`Decider::admit`] as a door uses it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::testing::{handler, Reply, Server};
use super::*;
use crate::review::{Door, Operation};

fn pod(image: &str, pid: &str) -> AdmissionRequest {
    let mut r = AdmissionRequest::pod(Operation::Create);
    r.namespace = "default".into();
    r.object = Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": image}]}
    }));
    r.user_info
        .extra
        .insert("portcullis.dev/pid".into(), vec![pid.into()]);
    r
}

fn decider(yaml: &str) -> (Decider, Arc<Metrics>) {
    let config = Config::parse(yaml, std::path::Path::new("test.yaml")).unwrap();
    let metrics = Arc::new(Metrics::new());
    (
        Decider::new(&config).unwrap().with_metrics(metrics.clone()),
        metrics,
    )
}

fn webhook(server: &Server, extra: &str) -> String {
    format!(
        "webhooks:\n- name: v.example.com\n  clientConfig: {{url: '{}/'}}\n  \
         rules: [{{operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*']}}]\n{extra}",
        server.base
    )
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache_and_counted() {
    let (d, metrics) = decider("cache: {}\nimages: {disallowLatest: true}\n");
    let first = d.admit(Door::Proxy, &pod("busybox", "100")).await;
    let second = d.admit(Door::Proxy, &pod("busybox", "200")).await;
    assert!(!first.is_allowed());
    assert_eq!(first, second, "the cached verdict is the decided one");
    let text = metrics.encode();
    for line in [
        r#"portcullis_decision_cache_lookups_total{result="miss"} 1"#,
        r#"portcullis_decision_cache_lookups_total{result="hit"} 1"#,
        r#"portcullis_decisions_total{door="proxy",verdict="denied",cached="true"} 1"#,
        r#"portcullis_decisions_total{door="proxy",verdict="denied",cached="false"} 1"#,
        r#"portcullis_policy_results_total{door="proxy",policy="images",outcome="denied"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn without_a_cache_section_every_request_is_decided() {
    let (d, metrics) = decider("images: {disallowLatest: true}\n");
    d.admit(Door::Proxy, &pod("busybox:1", "1")).await;
    d.admit(Door::Proxy, &pod("busybox:1", "1")).await;
    let text = metrics.encode();
    assert!(!text.contains("cache_lookups_total{"), "{text}");
    assert!(
        text.contains(r#"verdict="allowed",cached="false"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_webhook_is_asked_every_time_unless_it_says_cache_true() {
    let server = Server::http(handler(Reply::allow)).await;
    let (d, _) = decider(&format!("cache: {{}}\n{}", webhook(&server, "")));
    d.admit(Door::Proxy, &pod("a:1", "1")).await;
    d.admit(Door::Proxy, &pod("a:1", "1")).await;
    assert_eq!(server.calls(), 2);

    let server = Server::http(handler(Reply::allow)).await;
    let (d, _) = decider(&format!(
        "cache: {{}}\n{}",
        webhook(&server, "  cache: true\n")
    ));
    d.admit(Door::Proxy, &pod("a:1", "1")).await;
    d.admit(Door::Proxy, &pod("a:1", "2")).await;
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn a_webhook_failure_is_never_cached_and_timeouts_are_counted() {
    let server = Server::http(handler(|s| {
        Reply::allow(s).after(Duration::from_millis(1500))
    }))
    .await;
    let (d, metrics) = decider(&format!(
        "cache: {{}}\n{}",
        webhook(&server, "  cache: true\n  timeoutSeconds: 1\n")
    ));
    assert!(!d.admit(Door::Proxy, &pod("a:1", "1")).await.is_allowed());
    assert!(!d.admit(Door::Proxy, &pod("a:1", "1")).await.is_allowed());
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"portcullis_webhook_calls_total{webhook="v.example.com",result="timeout"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"verdict="failed",cached="false"} 2"#),
        "{text}"
    );
}
