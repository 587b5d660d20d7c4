//! `portcullis serve` under load on loopback, against the same decision made in-process:
//! POST /validate with an AdmissionReview of a Pod, under the `:latest` image rule, over
//! HTTP/1.1 and HTTP/2, plain and TLS (a self-signed certificate made in the run).
//!
//!     cargo bench --bench serve          (figures go to BENCHMARKS.md)
//!
//! Env: BENCH_REQUESTS (per measurement, default 20000), BENCH_CONCURRENCY (default 32).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::config::Config;
use portcullis::config::{ListenerConfig, TlsConfig};
use portcullis::core::{Decider, Scope};
use portcullis::metrics::Metrics;
use portcullis::review::Door;
use portcullis::serve::listen::Bound;
use portcullis::serve::routes::Routes;

const CONFIG: &str = "images: {disallowLatest: true}\n";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn review() -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "name": "web", "namespace": "default", "operation": "CREATE",
                "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
                "object": {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "docker.io/library/nginx:1.27"}]}}
            }
        }))
        .unwrap(),
    )
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    (at(0.50), at(0.99))
}

/// Starts a serve listener in this process; returns its address.
async fn start(tls: Option<TlsConfig>) -> SocketAddr {
    let config = Config::parse(CONFIG, std::path::Path::new("bench.yaml")).unwrap();
    let metrics = Arc::new(Metrics::new());
    let decider = Decider::new(&config).unwrap().with_metrics(metrics.clone());
    let routes = Arc::new(Routes {
        live: Arc::new(ArcSwap::from_pointee(decider)),
        metrics,
        max_request_bytes: 8 << 20,
        events: Default::default(),
    });
    let bound = Bound::bind(&ListenerConfig {
        address: Some("127.0.0.1:0".parse().unwrap()),
        tls,
        socket: None,
        mode: None,
    })
    .await
    .unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(bound.serve(routes));
    addr
}

/// Sequential latency, then throughput with `concurrency` clients, of POST /validate.
async fn load<C>(
    name: &str,
    client: Client<C, Full<Bytes>>,
    url: &str,
    n: usize,
    concurrency: usize,
) where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let body = review();
    let once = |client: Client<C, Full<Bytes>>, body: Bytes, url: String| async move {
        let req = http::Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(5), client.request(req))
            .await
            .expect("no answer in 5 s")
            .unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.windows(14).any(|w| w == b"\"allowed\":true"));
    };
    for _ in 0..1000 {
        once(client.clone(), body.clone(), url.to_owned()).await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        once(client.clone(), body.clone(), url.to_owned()).await;
        samples.push(t.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, body, url) = (client.clone(), body.clone(), url.to_owned());
            tokio::spawn(async move {
                for _ in 0..n / concurrency {
                    once(client.clone(), body.clone(), url.clone()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (n / concurrency * concurrency) as f64 / started.elapsed().as_secs_f64();
    println!("{name}: p50 {p50:.1} µs, p99 {p99:.1} µs (one client); {rate:.0} requests/s ({concurrency} clients)");
}

/// Without TCP_NODELAY, HTTP/2's small frames wait out delayed ACKs (~40 ms a request).
fn connector() -> hyper_util::client::legacy::connect::HttpConnector {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

/// A self-signed serving certificate for 127.0.0.1, written to `dir`.
fn certificate(dir: &std::path::Path) -> (TlsConfig, rustls::RootCertStore) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, issued.cert.pem()).unwrap();
    std::fs::write(&key_file, issued.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).unwrap();
    let tls = TlsConfig {
        cert_file,
        key_file,
        client_ca_file: None,
    };
    (tls, roots)
}

fn client_tls(roots: &rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env("BENCH_REQUESTS", 20_000);
    let concurrency = env("BENCH_CONCURRENCY", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The same decision in-process: decode, decide, encode.
        let config = Config::parse(CONFIG, std::path::Path::new("bench.yaml")).unwrap();
        let decider = Decider::new(&config).unwrap();
        let body = review();
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + 1000 {
            let t = Instant::now();
            let (version, request) = portcullis::serve::review::decode(&body).unwrap();
            let verdict = decider
                .admit_scoped(Door::Serve, &request, Scope::Validation)
                .await;
            let out = portcullis::serve::review::encode(
                version,
                &portcullis::serve::review::response(&request, &verdict, false),
            );
            std::hint::black_box(out);
            if i >= 1000 {
                samples.push(t.elapsed());
            }
        }
        let (p50, p99) = percentiles(samples);
        println!("in-process (decode, decide, encode): p50 {p50:.1} µs, p99 {p99:.1} µs");

        let addr = start(None).await;
        let client = Client::builder(TokioExecutor::new()).build(connector());
        load(
            "HTTP/1.1, plain",
            client,
            &format!("http://{addr}/validate"),
            n,
            concurrency,
        )
        .await;
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector());
        load(
            "HTTP/2 (h2c), plain",
            client,
            &format!("http://{addr}/validate"),
            n,
            concurrency,
        )
        .await;

        let dir = tempfile::tempdir().unwrap();
        let (tls, roots) = certificate(dir.path());
        let addr = start(Some(tls)).await;
        let url = format!("https://{addr}/validate");
        for (name, h2) in [("HTTP/1.1, TLS", false), ("HTTP/2, TLS", true)] {
            let builder = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(client_tls(&roots))
                .https_only();
            let https = if h2 {
                builder.enable_http2().wrap_connector(connector())
            } else {
                builder.enable_http1().wrap_connector(connector())
            };
            let client = Client::builder(TokioExecutor::new())
                .http2_only(h2)
                .build(https);
            load(name, client, &url, n, concurrency).await;
        }
    });
}
