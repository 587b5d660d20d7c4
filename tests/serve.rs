//! The webhook door end to end: the `portcullis serve` binary on a unix socket and on
//! TCP, asked by the proxy in front of a private containerd (`ctr run`) and by plain HTTP.

mod common;

use std::io::{Read, Write};

use common::{ok, text, unique, Serve, World, IMAGE, IMAGE_LATEST};
use serde_json::{json, Value};

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST path` with a JSON body over HTTP/1.1: (status line, body).
fn post(port: u16, path: &str, body: &Value) -> (String, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn the_proxy_asks_serve_over_a_unix_socket_and_ctr_sees_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let serve = Serve::start(
        dir.path(),
        &format!(
            "images: {{disallowLatest: true}}\ndecisionLog: {{file: '{}'}}\n",
            log.display()
        ),
        &[],
    );
    let config = format!(
        "webhooks:\n- name: portcullis-serve.local\n  clientConfig: {{socket: '{}', path: /validate}}\n  \
         rules: [{{operations: [CREATE, UPDATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}}]\n",
        serve.socket.display()
    );
    let w = World::new(&config);
    let out = ok(w.ctr(&["run", "--rm", IMAGE, &unique("via-serve"), "echo", "served"]));
    assert!(out.contains("served"), "{out}");
    let out = w.ctr(&[
        "run",
        "--rm",
        IMAGE_LATEST,
        &unique("via-serve-latest"),
        "true",
    ]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(r#"admission webhook "portcullis-serve.local" denied the request"#)
            && message.contains("uses the tag latest"),
        "{message}\n{}\n--- serve log ---\n{}",
        w.logs(),
        serve.log()
    );
    // serve judged as the ctr user the proxy put in the AdmissionReview.
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 2, "{records:?}");
    for record in &records {
        assert_eq!(record["door"], "serve");
        assert_eq!(record["caller"]["username"], "root", "{record}");
    }
    assert_eq!(records.last().unwrap()["allowed"], false);
}

#[test]
fn serve_answers_admission_and_image_reviews_over_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(
        dir.path(),
        "images: {disallowLatest: true}\nruntimeClass: {reservedRuntimes: [runc], fallbackRuntime: kata, defaultRuntimeReserved: true}\n",
        &["--listen", &listen],
    );
    let review = json!({
        "apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
        "request": {
            "uid": "e911857d-c318-11e8-bbad-025000000001",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
        }
    });
    let (status, answer) = post(port, "/mutate", &review);
    assert!(status.contains("200"), "{status}\n{}", serve.log());
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(
        answer["response"]["uid"],
        "e911857d-c318-11e8-bbad-025000000001"
    );
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");

    let image_review = json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
        "spec": {"containers": [{"image": "nginx"}], "namespace": "default"}});
    let (_, answer) = post(port, "/image_policy", &image_review);
    assert_eq!(answer["status"]["allowed"], false, "{answer}");

    let (status, answer) = post(port, "/validate", &json!({"kind": "AdmissionReview"}));
    assert!(status.contains("400"), "{status}");
    assert!(
        answer["error"].as_str().unwrap().contains("apiVersion"),
        "{answer}"
    );
}
