//! The relay between one client connection and containerd, at the HTTP/2 frame level.
//!
//! Each client connection gets its own connection to containerd, and a frame keeps its
//! stream id across the relay. From the client, header blocks are decoded (to read the
//! `:path` and, for admitted calls, the metadata) and re-encoded; every other frame goes
//! on as it came: DATA of passthrough calls as it arrives, SETTINGS, PING, WINDOW_UPDATE,
//! PRIORITY, RST_STREAM and GOAWAY end to end, so the two peers negotiate their windows,
//! keepalives and limits with each other as on a direct connection. From containerd,
//! frames go back unchanged but for the WINDOW_UPDATEs that repay the relay's own sends
//! ([`flow`]). Nothing is validated that containerd validates itself: whatever
//! `:authority` (a socket path, percent-encoded, empty, absent), header or frame a client
//! sends, containerd sees and judges exactly that.
//!
//! What the relay does decide: a `:path` that is not `/service/method` is refused (grpc-go
//! routes `service/method` without its slash, which would reach an admitted method by a
//! name the proxy does not know), and the methods in [`admit::Method`] are admitted: their
//! HEADERS go on at once (containerd requires stream ids in order), their body is held and
//! decided, then sent (as it was, or rewritten) or the stream is reset towards containerd
//! and refused towards the client with a trailers-only gRPC status.
//!
//! [`admit::Method`]: super::admit::Method

mod admitted;
mod flow;
mod outbox;
mod requests;
mod responses;
mod unavailable;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, Notify};

use super::grpc::{Code, Status};
use super::{Caller, Proxy};
use crate::net::h2::{self, error, hpack};
use flow::Flow;

/// One client connection and its connection to containerd.
struct Conn {
    proxy: Arc<Proxy>,
    caller: Arc<Caller>,
    /// Frames for the client ([`outbox`]: no reader waits on the client's socket).
    out: Arc<outbox::Outbox>,
    upstream: tokio::sync::Mutex<OwnedWriteHalf>,
    flow: Mutex<Flow>,
    /// Woken whenever `flow` gains window or a held stream ends.
    flow_changed: Notify,
    /// Woken when containerd's connection ends ([`Conn::unless_gone`]).
    gone: Notify,
    /// The streams open at containerd, or why containerd is gone.
    open: Mutex<Open>,
    /// Bytes of admitted bodies the connection may hold, from their first DATA until sent
    /// or refused ([`requests::HELD_BYTES`]; [`admitted::Charge`]).
    held: Arc<tokio::sync::Semaphore>,
}

/// Streams opened at containerd that it has not ended, and whether it has sent their
/// response headers: if containerd goes away, each is answered `Unavailable`, and so is
/// every stream the client opens after (`gone`), until the connection is closed.
#[derive(Default)]
struct Open {
    streams: HashMap<u32, bool>,
    gone: Option<Status>,
    /// The highest stream id the client opened.
    last: u32,
    /// The lowest last-stream id a GOAWAY to the client named (containerd's, or the
    /// relay's): a later one may not name a higher one (RFC 9113 §6.8).
    goaway: Option<u32>,
}

impl Open {
    /// The last-stream id for a GOAWAY that would name `want`.
    fn goaway(&mut self, want: u32) -> u32 {
        let id = self.goaway.map_or(want, |told| told.min(want));
        self.goaway = Some(id);
        id
    }
}

/// After containerd's connection ended, how long calls the client sent before it read the
/// relay's GOAWAY are still answered (a round trip on a local socket is far shorter).
const GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// Why a connection ended early; logged at debug.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error from the client: {0}")]
    Protocol(&'static str),
    #[error("a client header block does not decode (HPACK)")]
    Compression,
    #[error("a client frame is larger than containerd's SETTINGS_MAX_FRAME_SIZE")]
    FrameSize,
}

impl Conn {
    fn flow(&self) -> std::sync::MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames for the client; waits while the client is slow to read them, so containerd
    /// (or the decision) sending them waits with it.
    async fn to_client(&self, frames: BytesMut) -> std::io::Result<()> {
        self.out.send(frames.freeze(), outbox::RESPONSE_LIMIT).await
    }

    /// The relay's own last words to the client (GOAWAY, `Unavailable`): queued, never
    /// waited on (a client that has failed gets nothing more).
    fn tell_client(&self, frames: BytesMut) {
        let _ = self.out.queue(frames.freeze());
    }

    async fn to_upstream(&self, bytes: &[u8]) -> std::io::Result<()> {
        if self.open().gone.is_some() {
            // Frames for a containerd that has gone (PING, WINDOW_UPDATE...) go nowhere.
            return Ok(());
        }
        self.upstream.lock().await.write_all(bytes).await
    }

    /// The stream ended (reset by either side, or answered by containerd): if the relay
    /// holds it, nothing more is sent on it.
    fn end_held(&self, stream: u32) {
        let mut flow = self.flow();
        if flow.is_held(stream) {
            flow.end(stream);
            drop(flow);
            self.flow_changed.notify_waiters();
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client opens `stream` at containerd; `Err` with the status to answer it with
    /// once containerd is gone.
    fn opened(&self, stream: u32) -> Result<(), Status> {
        let mut open = self.open();
        open.last = open.last.max(stream);
        match &open.gone {
            Some(status) => Err(status.clone()),
            None => {
                open.streams.insert(stream, false);
                Ok(())
            }
        }
    }

    /// Either side ended or reset `stream`, or the relay answered it.
    fn closed(&self, stream: u32) {
        self.open().streams.remove(&stream);
    }

    /// containerd's response headers for `stream` went to the client.
    fn responded(&self, stream: u32) {
        if let Some(responded) = self.open().streams.get_mut(&stream) {
            *responded = true;
        }
    }

    /// containerd's connection ended: each call still open gets a clean `Unavailable`
    /// (trailers after response headers already sent, else a trailers-only response), and
    /// so does every call opened from now on; the client gets a GOAWAY admitting every
    /// stream id (HTTP/2's graceful close, RFC 9113 §6.8). A bare close would leave gRPC
    /// clients a transport error (tonic reports it as `Unknown`).
    fn fail_open(&self) {
        let status = Status::new(
            super::grpc::Code::Unavailable,
            format!(
                "portcullis: containerd at {} closed the connection during the call",
                self.proxy.upstream.socket().display()
            ),
        );
        let (open, last): (Vec<(u32, bool)>, u32) = {
            let mut open = self.open();
            open.gone = Some(status.clone());
            (open.streams.drain().collect(), open.goaway(0x7fff_ffff))
        };
        self.gone.notify_waiters();
        let mut out = BytesMut::new();
        for (stream, responded) in open {
            if responded {
                write_trailers(&mut out, stream, &status);
            } else {
                write_status(&mut out, stream, &status);
            }
        }
        h2::write_goaway(&mut out, last, h2::error::NO_ERROR, "containerd went away");
        self.tell_client(out);
    }

    /// The closing GOAWAY, naming the last stream the client opened.
    fn goaway(&self) {
        let last = {
            let mut open = self.open();
            let last = open.last;
            open.goaway(last)
        };
        let mut out = BytesMut::new();
        h2::write_goaway(&mut out, last, h2::error::NO_ERROR, "containerd went away");
        self.tell_client(out);
    }

    /// `wait`, unless containerd's connection ends first (`None`). What the client pump waits
    /// for on a call's behalf (a turn to decide it, budget for its body) no longer matters
    /// then: [`Conn::fail_open`] has answered the call, and the pump must get on with
    /// answering what the client sends until it reads the GOAWAY.
    async fn unless_gone<T>(&self, wait: impl std::future::Future<Output = T>) -> Option<T> {
        let gone = self.gone.notified();
        tokio::pin!(gone);
        // Registered before the check, so an end in between still wakes it.
        gone.as_mut().enable();
        if self.open().gone.is_some() {
            return None;
        }
        tokio::select! {
            t = wait => Some(t),
            _ = gone => None,
        }
    }

    /// Waits until `f` answers `Some` from the flow state, re-asking whenever it changes.
    async fn when<T>(&self, mut f: impl FnMut(&mut Flow) -> Option<T>) -> T {
        loop {
            let changed = self.flow_changed.notified();
            if let Some(t) = f(&mut self.flow()) {
                return t;
            }
            changed.await;
        }
    }
}

/// How long a new connection may take to send the HTTP/2 client preface. Clients send it
/// as soon as they connect; grpc-go (containerd) allows 120 s, which would let silent
/// connections hold their slots (and descriptors) for two minutes each.
pub(super) const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection just accepted: once it has sent the preface (or is closed, if `evicted`
/// fires or [`PREFACE_TIMEOUT`] passes first) it is relayed (containerd is dialled only
/// then), or, with no relay slot free, its calls are answered `ResourceExhausted`.
pub(super) async fn accept(
    proxy: Arc<Proxy>,
    caller: Arc<Caller>,
    mut client: UnixStream,
    evicted: oneshot::Receiver<()>,
) {
    // The preface and no more: what follows is read by the relay's own reads ([`ReadRoom`]).
    let mut buf = BytesMut::with_capacity(h2::PREFACE.len());
    let read = tokio::time::timeout(PREFACE_TIMEOUT, read_preface(&mut client, &mut buf));
    let why = tokio::select! {
        read = read => match read {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => Some((error::PROTOCOL_ERROR, "the connection does not start with the HTTP/2 preface")),
            Ok(Err(_)) => return,
            Err(_) => Some((error::NO_ERROR, "portcullis: no HTTP/2 preface within 10 s")),
        },
        _ = evicted => Some((error::ENHANCE_YOUR_CALM, "portcullis: closed to make room: proxy.maxConnections connections were waiting for their HTTP/2 preface")),
    };
    if let Some((code, why)) = why {
        tracing::debug!(why, "connection closed before relaying");
        let mut out = BytesMut::new();
        h2::write_goaway(&mut out, 0, code, why);
        let _ = client.write_all(&out).await;
        return;
    }
    let limits = proxy.limits.clone();
    if let Ok(slot) = limits.relayed.clone().try_acquire_owned() {
        serve(proxy, caller, client, buf).await;
        drop(slot);
        limits.connection_ended();
        return;
    }
    let max = limits.max;
    let Ok(_answering) = limits.answering.clone().try_acquire_owned() else {
        let why = "portcullis: too many connections (proxy.maxConnections)";
        return crate::proxy::limits::refuse_now(&client, why);
    };
    tracing::debug!(max_connections = max, "answering a connection ResourceExhausted: proxy.maxConnections connections are relayed already");
    let status = Status::new(
        Code::ResourceExhausted,
        format!("portcullis: {max} connections are relayed already (proxy.maxConnections); close idle connections or raise the limit"),
    );
    unavailable::answer(client, &status, buf).await;
}

/// Reads until `buf` holds the 24-byte preface: whether it is the preface (`false` on
/// anything else, or a close before it).
async fn read_preface(client: &mut UnixStream, buf: &mut BytesMut) -> std::io::Result<bool> {
    while buf.len() < h2::PREFACE.len() {
        if client.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(&buf[..h2::PREFACE.len()] == h2::PREFACE)
}

/// Relays one client connection, whose first bytes (the preface, and what followed it in
/// the same read) are `buf`, until either side closes it.
async fn serve(proxy: Arc<Proxy>, caller: Arc<Caller>, client: UnixStream, buf: BytesMut) {
    let upstream = match UnixStream::connect(proxy.upstream.socket()).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let status = proxy.upstream.unreachable(&e);
            tracing::debug!(error = %e, "containerd unreachable; answering the connection's calls with Unavailable");
            unavailable::answer(client, &status, buf).await;
            return;
        }
    };
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let conn = Arc::new(Conn {
        proxy,
        caller,
        out: Arc::default(),
        upstream: tokio::sync::Mutex::new(upstream_write),
        flow: Mutex::new(Flow::default()),
        flow_changed: Notify::new(),
        gone: Notify::new(),
        open: Mutex::new(Open::default()),
        held: Arc::new(tokio::sync::Semaphore::new(requests::HELD_BYTES)),
    });
    let mut writer = tokio::spawn({
        let out = conn.out.clone();
        async move { out.write(client_write).await }
    });
    let mut requests = tokio::spawn(requests::pump(conn.clone(), client_read, buf));
    let responses = responses::pump(conn.clone(), upstream_read);
    tokio::pin!(responses);
    tokio::select! {
        ended = &mut requests => match ended.unwrap_or(Ok(())) {
            // The client is done sending: tell containerd, then relay what it still says.
            Ok(()) => {
                let _ = conn.upstream.lock().await.shutdown().await;
                log_end("containerd", responses.await);
                conn.fail_open();
            }
            // A protocol error, told to the client with GOAWAY: nothing more is relayed.
            Err(e) => log_end("client", Err(e)),
        },
        ended = &mut responses => {
            log_end("containerd", ended);
            conn.fail_open();
            // The client pump answers the calls still on their way, then stops.
            let _ = tokio::time::timeout(GRACE, &mut requests).await;
            requests.abort();
        }
    }
    conn.goaway();
    conn.out.close();
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        // A client that reads nothing for this long does not get its last frames.
        writer.abort();
    }
}

/// How long a closing connection's last frames may take to reach a client that reads slowly.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How much one read may bring: 2 KiB at first, doubled after each read that fills it,
/// up to `max`. A bulk stream (image content) soon reads in large chunks.
///
/// The buffer is taken only once the socket is readable, and let go once every frame in it
/// has been handled: a quiet connection (most of them: the kubelet's, dockerd's, `ctr`'s
/// between calls) holds no buffer at all. A thousand connections each keeping 16 KiB both
/// ways would be 32 MiB of the proxy's memory doing nothing (RELIABILITY.md#load).
struct ReadRoom {
    want: usize,
    max: usize,
}

impl ReadRoom {
    fn new(max: usize) -> Self {
        Self { want: 2 << 10, max }
    }

    async fn read(
        &mut self,
        read: &mut OwnedReadHalf,
        buf: &mut BytesMut,
    ) -> std::io::Result<usize> {
        if buf.is_empty() {
            // Frames split off it may still share the allocation; they free it when done.
            *buf = BytesMut::new();
        }
        loop {
            read.readable().await?;
            if buf.capacity() - buf.len() < self.want / 2 {
                buf.reserve(self.want);
            }
            let spare = buf.capacity() - buf.len();
            match read.try_read_buf(buf) {
                Ok(n) => {
                    if n >= spare {
                        self.want = (self.want * 2).min(self.max);
                    }
                    return Ok(n);
                }
                // Readiness was spurious (another reader, or an edge already consumed).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn log_end(side: &str, ended: Result<(), Ended>) {
    if let Err(e) = ended {
        tracing::debug!(side, error = %e, "relay ended");
    }
}

/// A trailers-only response carrying `status` (gRPC over HTTP/2: HEADERS with END_STREAM).
fn write_status(out: &mut BytesMut, stream: u32, status: &Status) {
    let response: http::Response<()> = super::grpc::status_response(status);
    let mut block = Vec::with_capacity(256);
    hpack::encode_field(&mut block, b":status", b"200");
    for (name, value) in response.headers() {
        hpack::encode_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }
    h2::write_headers(out, stream, &block, true, h2::DEFAULT_MAX_FRAME);
}

/// Trailers carrying `status`, for a stream whose response headers were already sent.
fn write_trailers(out: &mut BytesMut, stream: u32, status: &Status) {
    let response: http::Response<()> = super::grpc::status_response(status);
    let mut block = Vec::with_capacity(256);
    for (name, value) in response.headers() {
        if name.as_str().starts_with("grpc-") {
            hpack::encode_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    h2::write_headers(out, stream, &block, true, h2::DEFAULT_MAX_FRAME);
}
