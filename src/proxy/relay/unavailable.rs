//! A client connection while containerd cannot be reached: the relay answers as an HTTP/2
//! server of its own, every call with `Unavailable` naming the socket, then says GOAWAY so
//! the client dials again (gRPC clients keep a connection that answers, so one that never
//! reaches containerd must not linger once containerd is back). The same answer, with
//! `ResourceExhausted`, serves a connection beyond `proxy.maxConnections`.

use std::time::Duration;

use tokio::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::write_status;
use crate::net::h2::{self, error, flag, kind};
use crate::proxy::grpc::Status;

/// How long the connection stays to answer calls already on their way.
const LINGER: Duration = Duration::from_secs(1);

/// After the first GOAWAY, how long calls the client sent before reading it are still
/// answered (a round trip on a local socket is far shorter).
const GRACE: Duration = Duration::from_millis(250);

/// HTTP/2's graceful close (RFC 9113 §6.8): a GOAWAY that admits every stream id, a grace
/// in which calls still arriving are answered, then the GOAWAY naming the last one. Closing
/// at once would drop a call in flight on the floor, which a client reports as a bare
/// transport error rather than `Unavailable`.
///
/// `buf`: what was read of the connection so far (the preface, when it was checked first).
pub(super) async fn answer(mut client: UnixStream, status: &Status, buf: BytesMut) {
    let why = if status.code == crate::proxy::grpc::Code::ResourceExhausted {
        "portcullis: too many connections (proxy.maxConnections)"
    } else {
        "containerd is unreachable"
    };
    let mut conn = Answering {
        buf,
        ..Answering::default()
    };
    let until = Instant::now() + LINGER;
    if conn.serve(&mut client, status, until).await.is_err() {
        return;
    }
    let mut out = BytesMut::new();
    h2::write_goaway(&mut out, 0x7fff_ffff, error::NO_ERROR, why);
    if client.write_all(&out).await.is_err() {
        return;
    }
    if conn
        .serve(&mut client, status, Instant::now() + GRACE)
        .await
        .is_err()
    {
        return;
    }
    out.clear();
    h2::write_goaway(&mut out, conn.last, error::NO_ERROR, why);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
}

/// What the relay knows of the connection it answers.
#[derive(Default)]
struct Answering {
    buf: BytesMut,
    greeted: bool,
    /// The client's connection preface has been read.
    preface: bool,
    /// The highest stream answered.
    last: u32,
}

impl Answering {
    /// Answers calls until `until` (`Ok`), or until the client goes (`Err`). Only reads
    /// wait on the clock: a write is never cut off halfway through a frame.
    async fn serve(
        &mut self,
        client: &mut UnixStream,
        status: &Status,
        until: Instant,
    ) -> std::io::Result<()> {
        if !self.greeted {
            let mut out = BytesMut::new();
            h2::write_settings(&mut out, false);
            client.write_all(&out).await?;
            self.greeted = true;
        }
        loop {
            if !self.preface && self.buf.len() >= h2::PREFACE.len() {
                if !self.buf.starts_with(h2::PREFACE) {
                    // Not HTTP/2: nothing to answer.
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
                let _ = self.buf.split_to(h2::PREFACE.len());
                self.preface = true;
            }
            if self.preface {
                let out = self.frames(status);
                if !out.is_empty() {
                    client.write_all(&out).await?;
                }
            }
            // The preface was read into a buffer of its own size.
            self.buf.reserve(16 << 10);
            match tokio::time::timeout_at(until, client.read_buf(&mut self.buf)).await {
                Err(_) => return Ok(()),
                Ok(Ok(0)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => read.map(drop)?,
            }
        }
    }

    /// The answers to the whole frames read so far.
    fn frames(&mut self, status: &Status) -> BytesMut {
        let mut out = BytesMut::new();
        while let Some((head, frame)) = h2::next_frame(&mut self.buf) {
            match head.kind {
                kind::SETTINGS if !head.has(flag::ACK) => h2::write_settings(&mut out, true),
                kind::PING if !head.has(flag::ACK) => {
                    let mut ack = frame;
                    ack[4] = flag::ACK;
                    out.extend_from_slice(&ack);
                }
                // The end of a request's header block: the call is answered now.
                kind::HEADERS | kind::CONTINUATION if head.has(flag::END_HEADERS) => {
                    write_status(&mut out, head.stream, status);
                    self.last = self.last.max(head.stream);
                }
                kind::DATA if head.len > 0 => h2::write_window_update(&mut out, 0, head.len as u32),
                _ => {}
            }
        }
        out
    }
}
