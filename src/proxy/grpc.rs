//! gRPC over HTTP/2 as far as the proxy needs it: the 5-byte message framing of unary
//! calls, and trailers-only status answers (grpc/doc/PROTOCOL-HTTP2.md).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// containerd's default `MaxRecvMsgSize`.
pub const MAX_MESSAGE: usize = 16 << 20;

/// gRPC status codes the proxy answers with (google.golang.org/grpc/codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
}

/// A gRPC error the proxy itself answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The one unframed message of a unary request or response body.
pub fn unframe(mut body: Bytes) -> Result<Bytes, Status> {
    if body.len() < 5 {
        return Err(Status::new(
            Code::InvalidArgument,
            "portcullis: gRPC message shorter than its 5-byte frame header",
        ));
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::new(
            Code::Unimplemented,
            "portcullis: compressed gRPC messages cannot be admitted; disable compression in the client",
        ));
    }
    if len > MAX_MESSAGE {
        return Err(Status::new(
            Code::ResourceExhausted,
            format!("portcullis: gRPC message of {len} bytes exceeds the {MAX_MESSAGE}-byte limit"),
        ));
    }
    if body.len() != len {
        return Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: gRPC frame announces {len} bytes but the body holds {}; a unary call carries exactly one message", body.len()),
        ));
    }
    Ok(body)
}

/// Frames one uncompressed message.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(message.len() + 5);
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// Characters gRPC requires to be percent-encoded in `grpc-message`: anything outside
/// printable ASCII, and `%` itself.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

fn encode_message(message: &str) -> HeaderValue {
    let encoded: String = utf8_percent_encode(message, GRPC_MESSAGE).collect();
    // Non-ASCII bytes are percent-encoded above, so the value is always valid.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static("invalid message"))
}

/// A trailers-only response carrying `status`.
pub fn status_response<B: Default>(status: &Status) -> Response<B> {
    let mut response = Response::new(B::default());
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(status.code as u16));
    headers.insert("grpc-message", encode_message(&status.message));
    response
}

/// The `grpc-status` of a response whose status came in its headers (trailers-only).
pub fn header_status(headers: &HeaderMap) -> Option<(u16, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| {
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_bad_frames() {
        let framed = frame(b"hello");
        assert_eq!(unframe(framed).unwrap(), Bytes::from_static(b"hello"));
        assert!(unframe(Bytes::from_static(b"\0\0\0")).is_err());
        assert_eq!(
            unframe(Bytes::from_static(b"\x01\0\0\0\x01x"))
                .unwrap_err()
                .code,
            Code::Unimplemented
        );
        assert_eq!(
            unframe(Bytes::from_static(b"\0\0\0\0\x09x"))
                .unwrap_err()
                .code,
            Code::InvalidArgument
        );
        let mut two = BytesMut::from(&frame(b"a")[..]);
        two.extend_from_slice(&frame(b"b"));
        assert!(unframe(two.freeze()).is_err());
    }

    #[test]
    fn status_message_is_percent_encoded() {
        let r: Response<()> = status_response(&Status::new(
            Code::PermissionDenied,
            "admission webhook \"x\" denied: 100% ✗\n",
        ));
        assert_eq!(r.headers()["grpc-status"], "7");
        let msg = r.headers()["grpc-message"].to_str().unwrap();
        assert!(
            msg.contains("100%25") && msg.contains("%E2%9C%97") && msg.contains("%0A"),
            "{msg}"
        );
        assert_eq!(
            header_status(r.headers()).unwrap().1,
            "admission webhook \"x\" denied: 100% ✗\n"
        );
    }
}
