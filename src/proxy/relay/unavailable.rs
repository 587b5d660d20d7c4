//! A client connection while containerd cannot be reached: the relay answers as an HTTP/2
//! server of its own, every call with `Unavailable` naming the socket, then says GOAWAY so
//! the client dials again (gRPC clients keep a connection that answers, so one that never
//! reaches containerd must not linger once containerd is back). The same answer, with
//! `ResourceExhausted`, serves a connection beyond `proxy.maxConnections`.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::write_status;
use crate::net::h2::{self, error, flag, kind};
use crate::proxy::grpc::Status;

/// How long the connection stays to answer calls already on their way.
const LINGER: Duration = Duration::from_secs(1);

/// `buf`: what was read of the connection so far (the preface, when it was checked first).
pub(super) async fn answer(mut client: UnixStream, status: &Status, buf: BytesMut) {
    let _ = tokio::time::timeout(LINGER, serve(&mut client, status, buf)).await;
    let mut out = BytesMut::new();
    let why = if status.code == crate::proxy::grpc::Code::ResourceExhausted {
        "portcullis: too many connections (proxy.maxConnections)"
    } else {
        "containerd is unreachable"
    };
    h2::write_goaway(&mut out, 0x7fff_ffff, error::NO_ERROR, why);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
}

async fn serve(client: &mut UnixStream, status: &Status, mut buf: BytesMut) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    h2::write_settings(&mut out, false);
    client.write_all(&out).await?;
    while buf.len() < h2::PREFACE.len() {
        if client.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
    if &buf[..h2::PREFACE.len()] != h2::PREFACE {
        return Ok(());
    }
    let _ = buf.split_to(h2::PREFACE.len());
    loop {
        let mut out = BytesMut::new();
        while let Some((head, frame)) = h2::next_frame(&mut buf) {
            match head.kind {
                kind::SETTINGS if !head.has(flag::ACK) => h2::write_settings(&mut out, true),
                kind::PING if !head.has(flag::ACK) => {
                    let mut ack = frame;
                    ack[4] = flag::ACK;
                    out.extend_from_slice(&ack);
                }
                // The end of a request's header block: the call is answered now.
                kind::HEADERS | kind::CONTINUATION if head.has(flag::END_HEADERS) => {
                    write_status(&mut out, head.stream, status)
                }
                kind::DATA if head.len > 0 => h2::write_window_update(&mut out, 0, head.len as u32),
                _ => {}
            }
        }
        if !out.is_empty() {
            client.write_all(&out).await?;
        }
        if client.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
