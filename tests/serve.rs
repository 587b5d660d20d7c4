//! The webhook door end to end: the `portcullis serve` binary on a unix socket and on
//! TCP, asked by the proxy in front of a private containerd (`ctr run`) and by plain HTTP.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox", "openssl"];

use common::{free_port, http, ok, text, unique, Serve, World, IMAGE, IMAGE_LATEST};
use serde_json::{json, Value};

/// `POST path` with a JSON body: (status line, JSON body).
fn post(port: u16, path: &str, body: &Value) -> (String, Value) {
    let (head, body) = http(port, "POST", path, &serde_json::to_vec(body).unwrap());
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn the_proxy_asks_serve_over_a_unix_socket_and_ctr_sees_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let serve = Serve::serve(
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
    let serve = Serve::serve(
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

/// A CA, a serving certificate for 127.0.0.1 and a client certificate, as PEM files in
/// `dir`: (ca, server cert, server key, client cert, client key).
fn pki(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "e2e CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let issue = |names: Vec<String>, cn: &str, usage| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        (
            params.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let server = issue(
        vec!["127.0.0.1".into()],
        "serve",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = issue(
        vec![],
        "portcullis-proxy",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let files = ["ca.crt", "tls.crt", "tls.key", "client.crt", "client.key"].map(|f| dir.join(f));
    for (file, pem) in files
        .iter()
        .zip([ca_cert.pem(), server.0, server.1, client.0, client.1])
    {
        std::fs::write(file, pem).unwrap();
    }
    files
}

#[test]
fn the_proxy_asks_serve_over_mutual_tls() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client_cert, client_key] = pki(dir.path());
    let port = free_port();
    let serve = Serve::serve(
        dir.path(),
        &format!(
            "images: {{disallowLatest: true}}\nserve:\n  listeners:\n  - address: 127.0.0.1:{port}\n    \
             tls: {{certFile: '{}', keyFile: '{}', clientCAFile: '{}'}}\n",
            cert.display(),
            key.display(),
            ca.display()
        ),
        &[],
    );
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca).unwrap());
    let webhook = |client_auth: &str| {
        format!(
            "webhooks:\n- name: serve.tls.local\n  clientConfig: {{url: 'https://127.0.0.1:{port}/validate', caBundle: '{ca_bundle}'{client_auth}}}\n  \
             rules: [{{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}}]\n"
        )
    };
    let w = World::new(&webhook(&format!(
        ", clientCertFile: '{}', clientKeyFile: '{}'",
        client_cert.display(),
        client_key.display()
    )));
    ok(w.ctr(&["run", "--rm", IMAGE, &unique("tls-ok"), "true"]));
    let out = w.ctr(&["run", "--rm", IMAGE_LATEST, &unique("tls-latest"), "true"]);
    assert!(
        text(&out).contains(r#"admission webhook "serve.tls.local" denied the request"#),
        "{}\n{}\n--- serve log ---\n{}",
        text(&out),
        w.logs(),
        serve.log()
    );

    // Without a client certificate the handshake is refused, and the webhook fails closed.
    std::fs::write(&w.proxy.config, webhook("")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = w.ctr(&["run", "--rm", IMAGE, &unique("tls-anon"), "true"]);
        if text(&out).contains(r#"failed calling webhook "serve.tls.local""#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}\n{}",
            text(&out),
            w.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// One HTTP/2 (prior knowledge) POST over a unix socket with `authority`, as node clients
/// send it: the response's `:status` and body.
fn h2_post(
    socket: &std::path::Path,
    authority: &[u8],
    path: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    use bytes::BytesMut;
    use portcullis::net::h2::{self, flag, kind};
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut out = BytesMut::new();
    out.extend_from_slice(h2::PREFACE);
    h2::write_settings(&mut out, false);
    let mut block = Vec::new();
    for (name, value) in [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", authority),
        (b"content-type", b"application/json"),
    ] {
        h2::hpack::encode_field(&mut block, name, value);
    }
    h2::write_headers(&mut out, 1, &block, false, h2::DEFAULT_MAX_FRAME);
    h2::write_data(&mut out, 1, body, true, h2::DEFAULT_MAX_FRAME);
    stream.write_all(&out).unwrap();
    let (mut buf, mut status, mut data) = (BytesMut::new(), String::new(), Vec::new());
    let mut decoder = h2::hpack::Decoder::default();
    loop {
        while let Some((head, frame)) = h2::next_frame(&mut buf) {
            let payload = &frame[h2::HEAD..];
            match head.kind {
                kind::HEADERS => decoder
                    .decode(payload, |n, v| {
                        if n == b":status" {
                            status = String::from_utf8_lossy(v).into_owned();
                        }
                    })
                    .unwrap(),
                kind::DATA => data.extend_from_slice(payload),
                kind::RST_STREAM | kind::GOAWAY => {
                    panic!("the server refused the stream: {head:?}")
                }
                _ => {}
            }
            if head.stream == 1 && head.has(flag::END_STREAM) {
                return (status, data);
            }
        }
        let mut chunk = [0u8; 16 << 10];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "serve closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn serve_answers_http2_clients_that_send_the_socket_path_as_authority() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::serve(dir.path(), "images: {disallowLatest: true}\n", &[]);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "namespace": "default", "userInfo": {"username": "kubelet"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}}
    });
    let socket = serve.socket.to_str().unwrap().to_owned();
    let encoded = socket.replace('/', "%2F");
    // grpc-go sends the path, gRPC C-core the percent-encoded path; some clients nothing.
    for authority in [socket.as_str(), encoded.as_str(), ""] {
        let (status, body) = h2_post(
            &serve.socket,
            authority.as_bytes(),
            "/validate",
            &serde_json::to_vec(&review).unwrap(),
        );
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            status,
            "200",
            "authority {authority:?}: {answer}\n{}",
            serve.log()
        );
        assert_eq!(
            answer["response"]["allowed"], false,
            "authority {authority:?}: {answer}"
        );
    }
}

/// The quick-start recipe: `openssl req -x509` makes a self-signed certificate with
/// `CA:TRUE`, served by `portcullis serve` and given as the webhook's own `caBundle`.
/// kube-apiserver (Go) trusts it as itself; so does the proxy, still checking the name.
#[test]
fn the_proxy_trusts_a_self_signed_serving_certificate_that_is_its_ca_bundle() {
    use base64::Engine as _;
    common::require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost", "-days", "2"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let port = free_port();
    let serve = Serve::serve(
        dir.path(),
        &format!(
            "images: {{disallowLatest: true}}\nserve:\n  listeners:\n  - address: 127.0.0.1:{port}\n    \
             tls: {{certFile: '{}', keyFile: '{}'}}\n",
            cert.display(),
            key.display(),
        ),
        &[],
    );
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&cert).unwrap());
    let webhook = |host: &str| {
        format!(
            "webhooks:\n- name: serve.self-signed.local\n  clientConfig: {{url: 'https://{host}:{port}/validate', caBundle: '{ca_bundle}'}}\n  \
             rules: [{{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}}]\n"
        )
    };
    let w = World::new(&webhook("localhost"));
    ok(w.ctr(&["run", "--rm", IMAGE, &unique("self-signed-ok"), "true"]));
    let out = w.ctr(&[
        "run",
        "--rm",
        IMAGE_LATEST,
        &unique("self-signed-latest"),
        "true",
    ]);
    assert!(
        text(&out).contains(r#"admission webhook "serve.self-signed.local" denied the request"#),
        "{}\n{}\n--- serve log ---\n{}",
        text(&out),
        w.logs(),
        serve.log()
    );

    // The certificate names localhost, not 127.0.0.1: trusted as itself, but not for
    // another name, so the webhook fails closed.
    std::fs::write(&w.proxy.config, webhook("127.0.0.1")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = w.ctr(&["run", "--rm", IMAGE, &unique("self-signed-ip"), "true"]);
        if text(&out).contains(r#"failed calling webhook "serve.self-signed.local""#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}\n{}",
            text(&out),
            w.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
