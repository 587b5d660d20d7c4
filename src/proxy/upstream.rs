//! The proxy's own calls to containerd (`Containers/Get` to read a stored container): one
//! multiplexed HTTP/2 connection over its unix socket, apart from the clients' relayed
//! connections, dialled on first use and again whenever it has closed (containerd restarted).
//!
//! hyper's connection handle is used directly rather than through a pooled client: with
//! one shared h2 connection a pool only adds a checkout per call, which showed in latency.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::UnixStream;

use super::grpc::{self, Code, Status};

/// HTTP/2 flow-control window per stream: a stored container's spec can be megabytes, and
/// a 64 KiB window would read it one WINDOW_UPDATE at a time.
const WINDOW: u32 = 8 << 20;

type Body = Full<Bytes>;

#[derive(Clone)]
pub struct Upstream {
    socket: PathBuf,
    connection: Arc<Mutex<Option<SendRequest<Body>>>>,
}

impl Upstream {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
            connection: Arc::new(Mutex::new(None)),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn unreachable(&self, e: &dyn std::error::Error) -> Status {
        Status::new(
            Code::Unavailable,
            format!(
                "portcullis: containerd at {} is unreachable: {}",
                self.socket.display(),
                error_chain(e)
            ),
        )
    }

    /// A handle on the live connection, dialling a new one if there is none.
    async fn sender(&self) -> Result<SendRequest<Body>, Status> {
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(WINDOW)
            .initial_connection_window_size(2 * WINDOW)
            .max_frame_size(1 << 20)
            .handshake(TokioIo::new(crate::net::cork::Cork::new(stream)))
            .await
            .map_err(|e| self.unreachable(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "containerd connection ended");
            }
        });
        let mut slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        // Two calls may dial at once after a restart; either connection serves.
        *slot = Some(sender.clone());
        Ok(sender)
    }

    fn live(&self) -> Option<SendRequest<Body>> {
        let slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// A unary call of the proxy's own, e.g. `Containers/Get` to read the stored container.
    pub async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        namespace: &str,
        request: &Req,
    ) -> Result<Resp, Status> {
        let uri = Uri::builder()
            .scheme("http")
            .authority("containerd")
            .path_and_query(method)
            .build()
            .map_err(|e| Status::new(Code::Internal, format!("portcullis: {method}: {e}")))?;
        let mut req = Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Full::new(grpc::frame(&request.encode_to_vec())))
            .map_err(|e| Status::new(Code::Internal, e.to_string()))?;
        let ns = HeaderValue::from_str(namespace).map_err(|_| {
            Status::new(
                Code::InvalidArgument,
                "portcullis: containerd-namespace is not a valid header value",
            )
        })?;
        req.headers_mut().insert("containerd-namespace", ns);
        let mut sender = self.sender().await?;
        sender.ready().await.map_err(|e| self.unreachable(&e))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(&e))?;
        if let Some(status) = failure(response.headers()) {
            return Err(status);
        }
        let collected = response.into_body().collect().await.map_err(|e| {
            Status::new(
                Code::Unavailable,
                format!("portcullis: reading {method} from containerd: {e}"),
            )
        })?;
        if let Some(status) = collected.trailers().and_then(failure) {
            return Err(status);
        }
        let message = grpc::unframe(collected.to_bytes())?;
        Resp::decode(message).map_err(|e| {
            Status::new(
                Code::Internal,
                format!("portcullis: containerd's {method} answer does not decode: {e}"),
            )
        })
    }
}

/// A non-OK `grpc-status` found in headers or trailers, as containerd said it.
fn failure(map: &http::HeaderMap) -> Option<Status> {
    let (code, message) = grpc::header_status(map)?;
    let code = match code {
        0 => return None,
        3 => Code::InvalidArgument,
        5 => Code::NotFound,
        7 => Code::PermissionDenied,
        8 => Code::ResourceExhausted,
        9 => Code::FailedPrecondition,
        12 => Code::Unimplemented,
        14 => Code::Unavailable,
        _ => Code::Internal,
    };
    Some(Status::new(code, message))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
