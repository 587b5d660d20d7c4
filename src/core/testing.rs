//! In-process webhook servers for tests: plain HTTP on 127.0.0.1:0, HTTPS (h2 or
//! HTTP/1.1 by ALPN, optionally requiring a client certificate) and HTTP on a unix
//! socket. Each counts accepted connections and remembers what it was sent; a handler
//! computes the reply from the review it received.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

/// What the server saw of one call.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The body as JSON (`Null` when it was not JSON).
    pub review: Value,
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub version: http::Version,
}

impl Seen {
    pub fn uid(&self) -> String {
        self.review["request"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    pub fn object(&self) -> &Value {
        &self.review["request"]["object"]
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// An AdmissionReview answer in the version of the request, `response` as given.
    pub fn review(seen: &Seen, response: Value) -> Self {
        let api_version = seen.review["apiVersion"].clone();
        Self::raw(
            200,
            serde_json::to_vec(&json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response}))
                .unwrap(),
        )
    }

    /// Allowed, no status: what a Go webhook sends.
    pub fn allow(seen: &Seen) -> Self {
        Self::review(seen, json!({"uid": seen.uid(), "allowed": true}))
    }

    pub fn deny(seen: &Seen, status: Value) -> Self {
        Self::review(
            seen,
            json!({"uid": seen.uid(), "allowed": false, "status": status}),
        )
    }

    /// Allowed with a JSON Patch.
    pub fn patch(seen: &Seen, patch: Value) -> Self {
        let patch =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&patch).unwrap());
        Self::review(
            seen,
            json!({"uid": seen.uid(), "allowed": true, "patch": patch, "patchType": "JSONPatch"}),
        )
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub fn handler(f: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Handler {
    Arc::new(f)
}

struct State {
    handler: Handler,
    connections: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

pub struct Server {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`; empty for unix.
    pub base: String,
    pub socket: Option<PathBuf>,
    state: Arc<State>,
    task: JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
    pub fn calls(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Plain HTTP on loopback.
    pub async fn http(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = new_state(handler);
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, false, s.clone()));
            }
        });
        Self {
            base,
            socket: None,
            state,
            task,
            _dir: None,
        }
    }

    /// HTTPS on loopback with `tls` (see [`Pki::server_config`]).
    pub async fn https(handler: Handler, tls: rustls::ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let state = new_state(handler);
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, s) = (acceptor.clone(), s.clone());
                tokio::spawn(async move {
                    // Handshake failures (wrong CA, missing client cert) end the connection.
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        serve(tls, h2, s).await;
                    }
                });
            }
        });
        Self {
            base,
            socket: None,
            state,
            task,
            _dir: None,
        }
    }

    /// Plain HTTP on a unix socket in a fresh temp dir.
    pub async fn unix(handler: Handler) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let state = new_state(handler);
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, false, s.clone()));
            }
        });
        Self {
            base: String::new(),
            socket: Some(path),
            state,
            task,
            _dir: Some(dir),
        }
    }
}

fn new_state(handler: Handler) -> Arc<State> {
    Arc::new(State {
        handler,
        connections: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    })
}

async fn serve<I>(io: I, h2: bool, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| respond(req, state.clone()));
    let io = TokioIo::new(io);
    // Connection errors (client gone, timeouts) are expected in tests.
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

async fn respond(
    req: http::Request<Incoming>,
    state: Arc<State>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let authorization = header(http::header::AUTHORIZATION);
    let version = req.version();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        review: serde_json::from_slice(&body).unwrap_or(Value::Null),
        path_and_query,
        content_type,
        authorization,
        version,
    };
    let reply = (state.handler)(&seen);
    state.seen.lock().unwrap().push(seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = http::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A test CA with a server certificate for 127.0.0.1/localhost and a client certificate.
pub struct Pki {
    pub ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    ca_der: CertificateDer<'static>,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portcullis test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portcullis");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = params.signed_by(&client_key, &issuer).unwrap();

        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// Server TLS offering h2 and HTTP/1.1; with `require_client_cert`, only clients with a
    /// certificate from this CA get through.
    pub fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}
