//! containerd → client: frames passed back as they come, but for the WINDOW_UPDATEs that
//! belong to the relay's own sends (see [`super::flow`]).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::unix::OwnedReadHalf;

use super::{Conn, Ended, ReadRoom};
use crate::net::h2::{self, flag, kind, Head};

pub(super) async fn pump(conn: Arc<Conn>, mut read: OwnedReadHalf) -> Result<(), Ended> {
    let mut buf = BytesMut::new();
    let mut room = ReadRoom::new(256 << 10);
    loop {
        if room.read(&mut read, &mut buf).await? == 0 {
            return Ok(());
        }
        let mut out = BytesMut::new();
        while let Some((head, frame)) = h2::next_frame(&mut buf) {
            if let Some(frame) = pass(&conn, head, frame) {
                // Contiguous parts of the read buffer join without a copy.
                out.unsplit(frame);
            }
        }
        if !out.is_empty() {
            conn.to_client(out).await?;
        }
    }
}

/// What of one frame from containerd goes to the client.
fn pass(conn: &Conn, head: Head, mut frame: BytesMut) -> Option<BytesMut> {
    let payload = &frame[h2::HEAD..];
    match head.kind {
        kind::SETTINGS if !head.has(flag::ACK) => conn.flow().on_settings(payload),
        kind::WINDOW_UPDATE => {
            let increment = h2::window_increment(payload)?;
            let passed = conn.flow().on_window_update(head.stream, increment);
            conn.flow_changed.notify_waiters();
            match passed {
                None => return None,
                Some(n) if n != increment => {
                    frame.truncate(h2::HEAD);
                    frame.extend_from_slice(&n.to_be_bytes());
                }
                Some(_) => {}
            }
        }
        // containerd answered or reset the stream: a body the relay still holds for it is
        // not sent.
        kind::HEADERS | kind::DATA if head.has(flag::END_STREAM) => {
            conn.closed(head.stream);
            conn.end_held(head.stream)
        }
        kind::HEADERS => conn.responded(head.stream),
        kind::GOAWAY if payload.len() >= 4 => {
            let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            conn.open().goaway(last & 0x7fff_ffff);
        }
        kind::RST_STREAM => {
            conn.closed(head.stream);
            conn.end_held(head.stream)
        }
        _ => {}
    }
    Some(frame)
}
