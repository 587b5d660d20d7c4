//! Talking to the daemon (`portcullis serve` on a unix socket): one AdmissionReview v1 to
//! `/admit?door=hook`, answered for the whole chain, and best-effort lifecycle events to
//! `/events`. The review travels in the same wire format as to any webhook
//! ([`crate::review::wire`]) over the same unix connector.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::core::MAX_RESPONSE_BYTES;
use crate::net::unix::UnixConnector;
use crate::review::wire::{self, ReviewVersion, WebhookAnswer};
use crate::review::{AdmissionRequest, Door};

/// Why the daemon gave no usable answer; the hook then decides in-process.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{}: {detail}", socket.display())]
    Transport { socket: PathBuf, detail: String },
    #[error("{}: no answer within {timeout:?} (hook.timeout)", socket.display())]
    Timeout { socket: PathBuf, timeout: Duration },
    #[error("{}: HTTP {status}: {body}", socket.display())]
    Status {
        socket: PathBuf,
        status: http::StatusCode,
        body: String,
    },
    #[error("{}: {error}", socket.display())]
    Answer {
        socket: PathBuf,
        #[source]
        error: wire::ResponseError,
    },
}

/// The I/O error kind behind a client error. Messages name the kind (`NotFound`,
/// `ConnectionRefused`), not the OS text: Podman rewrites a hook error that contains "no
/// such file or directory" or "permission denied" into "OCI runtime ... not found".
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// A client of one daemon socket.
pub struct Daemon {
    socket: PathBuf,
    client: Client<UnixConnector, Full<Bytes>>,
}

impl Daemon {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
            client: Client::builder(TokioExecutor::new()).build(UnixConnector::new(socket)),
        }
    }

    /// Asks the daemon to decide `request` (the whole chain: allowed, status, patch).
    pub async fn admit(
        &self,
        door: Door,
        request: &AdmissionRequest,
        timeout: Duration,
    ) -> Result<WebhookAnswer, DaemonError> {
        let body = wire::encode_review(request, ReviewVersion::V1).map_err(|e| {
            DaemonError::Transport {
                socket: self.socket.clone(),
                detail: e.to_string(),
            }
        })?;
        let path = format!("/admit?door={door}");
        let answer = self.post(&path, body, timeout).await?;
        wire::decode_response(&answer, ReviewVersion::V1, &request.uid, true).map_err(|error| {
            DaemonError::Answer {
                socket: self.socket.clone(),
                error,
            }
        })
    }

    /// Sends one lifecycle event.
    pub async fn event(
        &self,
        event: &serde_json::Value,
        timeout: Duration,
    ) -> Result<(), DaemonError> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        self.post("/events", body, timeout).await.map(|_| ())
    }

    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, DaemonError> {
        match tokio::time::timeout(timeout, self.post_inner(path, body)).await {
            Ok(result) => result,
            Err(_) => Err(DaemonError::Timeout {
                socket: self.socket.clone(),
                timeout,
            }),
        }
    }

    async fn post_inner(&self, path: &str, body: Vec<u8>) -> Result<Bytes, DaemonError> {
        let transport = |e: &dyn std::fmt::Display| DaemonError::Transport {
            socket: self.socket.clone(),
            detail: e.to_string(),
        };
        let request = http::Request::post(format!("http://localhost{path}"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| transport(&e))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| match io_kind(&e) {
                Some(kind) => transport(&format!("cannot connect ({kind:?})")),
                None => transport(&e),
            })?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(DaemonError::Status {
                socket: self.socket.clone(),
                status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(bytes)
    }
}
