//! A webhook server the test controls: answers AdmissionReviews with whatever the test's
//! handler returns, written the way Go webhooks write them (base64 patch, no status on an
//! allowed response), over TCP or a unix socket.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

type Handler = dyn Fn(&Value) -> Value + Send + Sync;

pub struct WebhookServer {
    /// `http://127.0.0.1:PORT` for TCP servers.
    pub url: String,
    pub socket: Option<PathBuf>,
    requests: Arc<Mutex<Vec<Value>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl WebhookServer {
    /// Serves on 127.0.0.1; `handler` gets the AdmissionReview and returns the `response`.
    pub fn tcp(handler: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Self {
        let runtime = runtime();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Self::launch(
            runtime,
            Listener::Tcp(listener),
            url,
            None,
            Arc::new(handler),
        )
    }

    /// Serves on a unix socket at `path`.
    pub fn unix(path: PathBuf, handler: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Self {
        let runtime = runtime();
        let _ = std::fs::remove_file(&path);
        let listener = runtime
            .block_on(async { tokio::net::UnixListener::bind(&path) })
            .unwrap();
        Self::launch(
            runtime,
            Listener::Unix(listener),
            String::new(),
            Some(path),
            Arc::new(handler),
        )
    }

    fn launch(
        runtime: tokio::runtime::Runtime,
        listener: Listener,
        url: String,
        socket: Option<PathBuf>,
        handler: Arc<Handler>,
    ) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        runtime.spawn(async move {
            loop {
                let (reqs, h) = (reqs.clone(), handler.clone());
                match &listener {
                    Listener::Tcp(l) => {
                        if let Ok((stream, _)) = l.accept().await {
                            tokio::spawn(serve(TokioIo::new(stream), reqs, h));
                        }
                    }
                    Listener::Unix(l) => {
                        if let Ok((stream, _)) = l.accept().await {
                            tokio::spawn(serve(TokioIo::new(stream), reqs, h));
                        }
                    }
                }
            }
        });
        Self {
            url,
            socket,
            requests,
            runtime: Some(runtime),
        }
    }

    /// Every AdmissionReview received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops serving (connections are refused from now on).
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        if let Some(s) = &self.socket {
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

async fn serve<I>(io: TokioIo<I>, requests: Arc<Mutex<Vec<Value>>>, handler: Arc<Handler>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (requests, handler) = (requests.clone(), handler.clone());
        async move {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            requests.lock().unwrap().push(review.clone());
            let response = handler(&review);
            let out = json!({"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response});
            Ok::<_, Infallible>(
                hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(out.to_string())))
                    .unwrap(),
            )
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

/// `allowed: true`, no status (as Go webhooks answer).
pub fn allow(review: &Value) -> Value {
    json!({"uid": review["request"]["uid"], "allowed": true})
}

pub fn deny(review: &Value, message: &str) -> Value {
    json!({"uid": review["request"]["uid"], "allowed": false, "status": {"code": 403, "message": message}})
}

/// Allowed with a JSON Patch, base64-encoded as Go's encoding/json encodes `[]byte`.
pub fn patch(review: &Value, ops: Value) -> Value {
    let patch = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
    json!({"uid": review["request"]["uid"], "allowed": true, "patchType": "JSONPatch", "patch": patch})
}
