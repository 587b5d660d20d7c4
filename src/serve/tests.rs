//! The endpoints with real payloads, through [`Routes::handle`] as a connection calls it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::routes::Routes;
use crate::config::Config;
use crate::core::Decider;
use crate::metrics::Metrics;
use crate::review::UserInfo;

fn routes(yaml: &str) -> Routes {
    let config = Config::parse(yaml, std::path::Path::new("test.yaml")).unwrap();
    let metrics = Arc::new(Metrics::new());
    let decider = Decider::new(&config).unwrap().with_metrics(metrics.clone());
    Routes {
        live: Arc::new(ArcSwap::from_pointee(decider)),
        metrics,
        max_request_bytes: 64 * 1024,
        events: Default::default(),
    }
}

async fn call(routes: &Routes, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    call_as(routes, None, method, path, body).await
}

async fn call_as(
    routes: &Routes,
    peer: Option<&UserInfo>,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = routes.handle(peer, req).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, value)
}

/// An AdmissionReview as kube-apiserver sends it for a CREATE of `object`.
fn review(api_version: &str, group: &str, kind: &str, resource: &str, object: Value) -> Vec<u8> {
    let version = object["apiVersion"]
        .as_str()
        .unwrap_or("v1")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    serde_json::to_vec(&json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": object["metadata"]["name"], "namespace": "prod", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "a7e0ab33-5f29-11e8-8a3c-36e6bb280816",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap()
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod"},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template(image)}})
}

fn patch_of(answer: &Value) -> Value {
    let b64 = answer["response"]["patch"].as_str().expect("a patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

const LATEST: &str = "images: {disallowLatest: true}\n";

#[tokio::test]
async fn validate_refuses_a_latest_pod_in_the_version_asked_and_admits_a_pinned_one() {
    let r = routes(LATEST);
    for api in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        let (status, answer) = call(
            &r,
            "POST",
            "/validate?timeout=10s",
            review(api, "", "Pod", "pods", pod("nginx")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["apiVersion"], api);
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 403);
        assert_eq!(response["status"]["reason"], "Forbidden");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("has no tag, so it means :latest"),
            "{message}"
        );
        assert!(response.get("patch").is_none());

        let (_, answer) = call(
            &r,
            "POST",
            "/validate",
            review(api, "", "Pod", "pods", pod("nginx:1.27")),
        )
        .await;
        assert_eq!(
            answer["response"],
            json!({"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "allowed": true})
        );
    }
}

#[tokio::test]
async fn pod_templates_of_workloads_reach_the_pod_policies() {
    let r = routes(LATEST);
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                     "spec": {"template": template("busybox:latest")}});
    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
                         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template("busybox")}}}});
    for (group, kind, resource, object) in [
        (
            "apps",
            "Deployment",
            "deployments",
            deployment("nginx:latest"),
        ),
        ("apps", "StatefulSet", "statefulsets", deployment("nginx")),
        ("batch", "Job", "jobs", job),
        ("batch", "CronJob", "cronjobs", cronjob),
    ] {
        let body = review("admission.k8s.io/v1", group, kind, resource, object);
        let (_, answer) = call(&r, "POST", "/validate", body).await;
        assert_eq!(answer["response"]["allowed"], false, "{kind}: {answer}");
    }
    let body = review(
        "admission.k8s.io/v1",
        "apps",
        "Deployment",
        "deployments",
        deployment("nginx:1.27"),
    );
    assert_eq!(
        call(&r, "POST", "/validate", body).await.1["response"]["allowed"],
        true
    );
    // A kind without a pod template is not a Pod policy's business.
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "x:latest"}});
    let body = review(
        "admission.k8s.io/v1",
        "",
        "ConfigMap",
        "configmaps",
        config_map,
    );
    assert_eq!(
        call(&r, "POST", "/validate", body).await.1["response"]["allowed"],
        true
    );
}

#[tokio::test]
async fn pod_security_enforces_on_pods_and_only_warns_on_templates() {
    let r =
        routes("namespaces: {prod: {labels: {pod-security.kubernetes.io/enforce: baseline}}}\n");
    let mut privileged = deployment("nginx:1.27");
    privileged["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    let body = review(
        "admission.k8s.io/v1",
        "apps",
        "Deployment",
        "deployments",
        privileged,
    );
    let (_, answer) = call(&r, "POST", "/validate", body).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warning = answer["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains(r#"would violate PodSecurity "baseline:latest""#)
            && warning.contains("hostNetwork"),
        "{warning}"
    );

    let mut pod = pod("nginx:1.27");
    pod["spec"]["hostNetwork"] = json!(true);
    let (_, answer) = call(
        &r,
        "POST",
        "/validate",
        review("admission.k8s.io/v1", "", "Pod", "pods", pod),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
}

#[tokio::test]
async fn mutate_answers_with_a_base64_json_patch_at_the_template() {
    let r = routes("runtimeClass: {reservedRuntimes: [runc], fallbackRuntime: kata, defaultRuntimeReserved: true}\n");
    let body = review(
        "admission.k8s.io/v1",
        "apps",
        "Deployment",
        "deployments",
        deployment("nginx:1.27"),
    );
    let (_, answer) = call(&r, "POST", "/mutate", body).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    assert_eq!(
        patch_of(&answer),
        json!([{"op": "add", "path": "/spec/template/spec/runtimeClassName", "value": "kata"}])
    );
    // /validate does not run the mutation phase, so it neither patches nor refuses here.
    let body = review("admission.k8s.io/v1", "", "Pod", "pods", pod("nginx:1.27"));
    let (_, answer) = call(&r, "POST", "/validate", body).await;
    assert_eq!(
        answer["response"],
        json!({"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "allowed": true})
    );
}

#[tokio::test]
async fn image_review_is_decided_by_the_image_rules_with_break_glass_for_listed_callers() {
    let r = routes(
        "images: {allowedRegistries: [registry.example.com]}\n\
         namespaces: {prod: {labels: {pod-security.kubernetes.io/enforce: restricted}}}\n\
         breakGlass: {enabled: true, callers: [kube-apiserver]}\n",
    );
    let review = |image: &str, annotations: Value| {
        serde_json::to_vec(&json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
            "spec": {"containers": [{"image": image}], "annotations": annotations, "namespace": "prod"}}))
        .unwrap()
    };
    // Restricted Pod Security is not asked: an ImageReview has images only.
    let (status, answer) = call(
        &r,
        "POST",
        "/image_policy",
        review("registry.example.com/app:1", json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview", "status": {"allowed": true}})
    );
    let (_, answer) = call(
        &r,
        "POST",
        "/image_policy",
        review("docker.io/evil:1", json!({})),
    )
    .await;
    assert_eq!(answer["status"]["allowed"], false);
    assert!(
        answer["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("which is not allowed"),
        "{answer}"
    );

    let glass = json!({"mycluster.image-policy.k8s.io/ticket-1234": "break-glass"});
    let (_, answer) = call(
        &r,
        "POST",
        "/image_policy",
        review("docker.io/evil:1", glass.clone()),
    )
    .await;
    assert_eq!(
        answer["status"]["allowed"], false,
        "an unknown caller cannot break the glass"
    );
    let apiserver = UserInfo {
        username: "kube-apiserver".into(),
        ..Default::default()
    };
    let (_, answer) = call_as(
        &r,
        Some(&apiserver),
        "POST",
        "/image_policy",
        review("docker.io/evil:1", glass),
    )
    .await;
    assert_eq!(answer["status"]["allowed"], true, "{answer}");
    assert!(
        answer["status"]["auditAnnotations"]["portcullis.dev/breakGlass"].is_string(),
        "{answer}"
    );
}

#[tokio::test]
async fn validate_raw_judges_any_object_as_the_caller() {
    let r = routes(&format!("{LATEST}exemptions: {{callers: [ci-bot]}}\n"));
    let (status, answer) = call(
        &r,
        "POST",
        "/validate_raw",
        serde_json::to_vec(&pod("nginx")).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["policies"][0]["policy"], "images");
    let bot = UserInfo {
        username: "ci-bot".into(),
        ..Default::default()
    };
    let (_, answer) = call_as(
        &r,
        Some(&bot),
        "POST",
        "/validate_raw",
        serde_json::to_vec(&pod("nginx")).unwrap(),
    )
    .await;
    assert_eq!(answer["allowed"], true, "{answer}");
}

#[tokio::test]
async fn bad_requests_get_a_json_error_and_change_nothing() {
    let r = routes(LATEST);
    for (method, path, body, code, says) in [
        (
            "POST",
            "/validate",
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            "POST",
            "/validate",
            br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "no request",
        ),
        (
            "POST",
            "/mutate",
            br#"{"apiVersion": "v1", "kind": "Pod"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "apiVersion",
        ),
        (
            "POST",
            "/image_policy",
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "not an ImageReview",
        ),
        (
            "POST",
            "/validate_raw",
            b"\"x\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            "POST",
            "/validate",
            vec![b' '; 64 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "maxRequestBytes",
        ),
        (
            "GET",
            "/validate",
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST",
        ),
        (
            "POST",
            "/healthz",
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET",
        ),
        (
            "POST",
            "/nope",
            Vec::new(),
            StatusCode::NOT_FOUND,
            "no endpoint /nope",
        ),
    ] {
        let (status, answer) = call(&r, method, path, body).await;
        assert_eq!(status, code, "{method} {path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {error}");
    }
    let (status, metrics) = call(&r, "GET", "/metrics", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !metrics.as_str().unwrap().contains("door=\"serve\""),
        "no decision was made"
    );
    assert_eq!(
        call(&r, "GET", "/readyz", Vec::new()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admit_runs_the_whole_chain_for_a_runtime_door() {
    let r = routes(&format!(
        "{LATEST}runtimeClass: {{reservedRuntimes: [runc], fallbackRuntime: kata, defaultRuntimeReserved: true}}\n"
    ));
    let body = review("admission.k8s.io/v1", "", "Pod", "pods", pod("nginx:1.27"));
    let (status, answer) = call(&r, "POST", "/admit?door=hook", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(
        patch_of(&answer),
        json!([{"op": "add", "path": "/spec/runtimeClassName", "value": "kata"}])
    );
    let body = review("admission.k8s.io/v1", "", "Pod", "pods", pod("nginx"));
    assert_eq!(
        call(&r, "POST", "/admit", body).await.1["response"]["allowed"],
        false
    );
    let metrics = r.metrics.encode();
    assert!(
        metrics.contains(
            r#"portcullis_decisions_total{door="hook",verdict="mutated",cached="false"} 1"#
        ),
        "{metrics}"
    );
    let body = review("admission.k8s.io/v1", "", "Pod", "pods", pod("nginx"));
    let (status, answer) = call(&r, "POST", "/admit?door=kubelet", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("hook, runc, proxy"),
        "{answer}"
    );
}

#[tokio::test]
async fn events_are_sent_to_every_subscriber_as_json_lines() {
    use tokio::io::AsyncBufReadExt;
    let r = routes("");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(r.events.clone().serve(listener));
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut lines = tokio::io::BufReader::new(stream).lines();
    // The subscriber is registered once accepted; give the accept loop a moment.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let event = json!({"stage": "poststop", "id": "c1", "pid": 42});
    let (status, _) = call(&r, "POST", "/events", serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let line = lines.next_line().await.unwrap().unwrap();
    let got: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (&got["stage"], &got["id"], &got["type"]),
        (&json!("poststop"), &json!("c1"), &json!("lifecycle"))
    );
    assert!(got["time"].is_string());
    let (status, answer) = call(&r, "POST", "/events", b"[1]".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}
