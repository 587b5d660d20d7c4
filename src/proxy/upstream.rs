//! The connection to the real containerd: one multiplexed HTTP/2 connection over its unix
//! socket, re-dialled by the pool when containerd restarts.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;

use super::grpc::{self, Code, Status};
use crate::net::unix::UnixConnector;

/// HTTP/2 flow-control window per stream, both towards containerd and clients.
pub const WINDOW: u32 = 8 << 20;

/// Bodies the proxy relays: streamed from the peer, or rebuilt by the proxy.
pub type Body = Either<Incoming, Full<Bytes>>;

#[derive(Clone)]
pub struct Upstream {
    client: Client<UnixConnector, Body>,
    socket: PathBuf,
}

impl Upstream {
    pub fn new(socket: &Path) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            // Streams such as Content/Read move large blobs; a 64 KiB window would stall
            // the relay on every window update, so open it wide.
            .http2_initial_stream_window_size(WINDOW)
            .http2_initial_connection_window_size(2 * WINDOW)
            .http2_max_frame_size(1 << 20)
            .build(UnixConnector::new(socket));
        Self {
            client,
            socket: socket.to_owned(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends a request on, unchanged but for its URI (the socket is fixed; the path is kept).
    pub async fn forward(&self, mut req: Request<Body>) -> Result<Response<Incoming>, Status> {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = Uri::builder()
            .scheme("http")
            .authority(
                req.uri()
                    .authority()
                    .map(|a| a.as_str())
                    .unwrap_or("containerd"),
            )
            .path_and_query(path)
            .build()
            .map_err(|e| {
                Status::new(
                    Code::InvalidArgument,
                    format!("portcullis: bad request path: {e}"),
                )
            })?;
        *req.uri_mut() = uri;
        self.client.request(req).await.map_err(|e| {
            Status::new(
                Code::Unavailable,
                format!(
                    "portcullis: containerd at {} is unreachable: {}",
                    self.socket.display(),
                    error_chain(&e)
                ),
            )
        })
    }

    /// A unary call of the proxy's own, e.g. `Containers/Get` to read the stored container.
    pub async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        namespace: &str,
        request: &Req,
    ) -> Result<Resp, Status> {
        let mut req = Request::post(method)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Either::Right(Full::new(grpc::frame(
                &request.encode_to_vec(),
            ))))
            .map_err(|e| Status::new(Code::Internal, e.to_string()))?;
        let ns = HeaderValue::from_str(namespace).map_err(|_| {
            Status::new(
                Code::InvalidArgument,
                "portcullis: containerd-namespace is not a valid header value",
            )
        })?;
        req.headers_mut().insert("containerd-namespace", ns);
        let response = self.forward(req).await?;
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
