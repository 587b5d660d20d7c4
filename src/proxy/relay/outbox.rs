//! Frames for the client, written by a task of their own.
//!
//! A relay must never stop reading one peer because it cannot write to that same peer.
//! HTTP/2 clients stop reading while their own writes are blocked (hyper's h2 flushes
//! before it reads the next frame), so a client pump that waited on the client's socket
//! (for the WINDOW_UPDATEs that repay a held body, or a refusal) while the client waited
//! on the proxy's socket would hang both for good: the load test found exactly that, with
//! 229 KiB queued each way and neither side reading; and again when the pump waited only
//! for the queue to shrink below a megabyte, since refusals and containerd's responses
//! fill the same queue. So the client pump never waits here: it queues what it answers
//! and reads on. What it queues is in proportion to what it read, and a client that lets
//! [`UNREAD_MAX`] pile up is not reading at all: its connection is closed, as Go's
//! net/http2 closes one that leaves too many control frames unread. containerd's
//! responses and the decisions' refusals wait for room instead, which passes the client's
//! backpressure on to containerd as a blocking write would.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::Notify;

/// Bytes queued that a client may leave unread before its connection is closed: far more
/// than a thousand calls in flight are answered with (a refusal is under 1 KiB).
pub const UNREAD_MAX: usize = 16 << 20;
/// Bytes queued beyond which containerd's responses wait (about one socket buffer): a
/// client that does not read holds up its own connection only.
pub const RESPONSE_LIMIT: usize = 256 << 10;

#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
    /// The writer has something to do.
    work: Notify,
    /// The writer has written (or failed).
    room: Notify,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    queued: usize,
    closed: bool,
    failed: bool,
}

fn broken() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the client's connection cannot be written",
    )
}

impl Outbox {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `frames` for the client, then waits while more than `limit` bytes are queued.
    /// An error once the client's connection has failed.
    pub async fn send(&self, frames: Bytes, limit: usize) -> std::io::Result<()> {
        if self.queue(frames)? <= limit {
            return Ok(());
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a write finishing in between still wakes it.
            room.as_mut().enable();
            {
                let state = self.state();
                if state.failed {
                    return Err(broken());
                }
                if state.queued <= limit {
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Queues `frames` without waiting; the bytes queued then. An error once the client's
    /// connection has failed.
    pub fn queue(&self, frames: Bytes) -> std::io::Result<usize> {
        let mut state = self.state();
        if state.failed {
            return Err(broken());
        }
        if !frames.is_empty() {
            state.queued += frames.len();
            state.frames.push_back(frames);
        }
        let queued = state.queued;
        drop(state);
        self.work.notify_one();
        Ok(queued)
    }

    /// Nothing more will be queued: the writer writes what is, then shuts the connection's
    /// write side.
    pub fn close(&self) {
        self.state().closed = true;
        self.work.notify_one();
    }

    /// The writer: writes the queue in order, in as few writes as it can.
    pub async fn write(&self, mut client: OwnedWriteHalf) {
        loop {
            let (frames, closed) = {
                let mut state = self.state();
                (state.frames.drain(..).collect::<Vec<_>>(), state.closed)
            };
            if frames.is_empty() {
                if closed {
                    let _ = client.shutdown().await;
                    return;
                }
                self.work.notified().await;
                continue;
            }
            let len: usize = frames.iter().map(Bytes::len).sum();
            let written = if let [one] = frames.as_slice() {
                client.write_all(one).await
            } else {
                // Joined for one write, and let go after it: an idle connection keeps none.
                let mut batch = BytesMut::with_capacity(len);
                frames.iter().for_each(|f| batch.extend_from_slice(f));
                client.write_all(&batch).await
            };
            drop(frames);
            let failed = written.is_err();
            {
                let mut state = self.state();
                state.queued -= len;
                state.failed |= failed;
                if failed {
                    state.frames.clear();
                    state.queued = 0;
                }
            }
            self.room.notify_waiters();
            if failed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixStream;

    #[tokio::test]
    async fn frames_arrive_in_order_and_the_connection_is_shut_once_closed() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        let outbox = Arc::new(Outbox::default());
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.write(write).await }
        });
        for part in [&b"one "[..], b"two ", b"three"] {
            outbox
                .send(Bytes::copy_from_slice(part), UNREAD_MAX)
                .await
                .unwrap();
        }
        outbox.close();
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"one two three");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_and_the_queue_never_blocks_below_its_limit() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        let outbox = Arc::new(Outbox::default());
        tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.write(write).await }
        });
        // Far more than the socket buffer: queued at once below the limit, nobody reading.
        let big = Bytes::from(vec![7u8; 4 << 20]);
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            outbox.send(big.clone(), 8 << 20),
        )
        .await
        .expect("a send within its limit does not wait for the client")
        .unwrap();
        // Over the limit: waits until the client reads.
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.send(Bytes::from_static(b"x"), 0).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        let mut got = vec![0; (4 << 20) + 1];
        theirs.read_exact(&mut got).await.unwrap();
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_client_gone_fails_every_send() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        drop(theirs);
        let outbox = Arc::new(Outbox::default());
        tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.write(write).await }
        });
        let first = outbox.send(Bytes::from_static(b"lost"), 0).await;
        assert!(first.is_err());
        assert!(outbox.send(Bytes::from_static(b"more"), 0).await.is_err());
    }
}
