//! An admitted call once its body is in: decided by the core, then its body sent to
//! containerd within containerd's windows, or the stream reset there and refused to the
//! client.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::flow::Take;
use super::{write_status, Conn};
use crate::net::h2::{self, error};
use crate::proxy::admit::Method;
use crate::proxy::grpc::Status;

/// An admitted call as the relay collects it.
pub(super) struct Call {
    pub method: Method,
    pub namespace: String,
    /// The gRPC-framed request message.
    pub body: BytesMut,
}

pub(super) async fn run(conn: Arc<Conn>, stream: u32, call: Call) {
    // Never closed, so never an error (limits::DECIDING).
    let turn = conn.proxy.limits.deciding.acquire().await;
    let decided = conn
        .proxy
        .admit_message(
            call.method,
            &conn.caller,
            &call.namespace,
            call.body.freeze(),
        )
        .await;
    drop(turn);
    let sent = match decided {
        Ok(body) => send(&conn, stream, body).await,
        Err(status) => refuse(&conn, stream, &status).await,
    };
    if let Err(e) = sent {
        tracing::debug!(stream, error = %e, "admitted call not delivered");
    }
}

async fn send(conn: &Conn, stream: u32, mut body: Bytes) -> std::io::Result<()> {
    loop {
        let want = body.len();
        let take = conn
            .when(|f| match f.take(stream, want) {
                Take::Wait => None,
                granted_or_ended => Some(granted_or_ended),
            })
            .await;
        let Take::Granted(n) = take else {
            // Reset by the client, or answered by containerd already.
            conn.flow().release(stream);
            return Ok(());
        };
        let chunk = body.split_to(n);
        let last = body.is_empty();
        let mut out = BytesMut::with_capacity(h2::HEAD + n);
        // One frame: `n` is within containerd's SETTINGS_MAX_FRAME_SIZE (`Flow::take`).
        h2::write_data(&mut out, stream, &chunk, last, n.max(1));
        let written = conn.to_upstream(&out).await;
        if last || written.is_err() {
            // Released only once the stream has ended at containerd: until then the
            // client's own DATA on it is swallowed, never read there as the message.
            conn.flow().release(stream);
            return written;
        }
    }
}

async fn refuse(conn: &Conn, stream: u32, status: &Status) -> std::io::Result<()> {
    // Answered here: containerd going away now owes the client nothing more on it.
    conn.closed(stream);
    // Reset at containerd before the stream is released (see `send`).
    let mut up = BytesMut::new();
    h2::write_rst_stream(&mut up, stream, error::CANCEL);
    let reset = conn.to_upstream(&up).await;
    if !conn.flow().release(stream) {
        // The client reset the stream, or containerd ended it (a deadline): no one to tell.
        return reset;
    }
    reset?;
    let mut down = BytesMut::new();
    write_status(&mut down, stream, status);
    conn.to_client(&down).await
}
