//! Client → containerd: header blocks re-encoded, admitted bodies held, the rest passed on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::unix::OwnedReadHalf;
use tokio::task::JoinSet;

use super::admitted::{self, Call, Charge};
use super::{outbox, write_status, Conn, Ended, ReadRoom};
use crate::net::h2::{self, error, flag, hpack, kind, Head};
use crate::proxy::grpc::{Code, Status, MAX_MESSAGE};
use crate::proxy::limits::BODIES_HELD;
use crate::proxy::route::{route, Route};

/// Bytes of admitted bodies one connection may hold at once (a few full-size messages):
/// arriving, waiting for a decision, or decided and waiting for containerd's window.
pub(super) const HELD_BYTES: usize = 4 * (MAX_MESSAGE + 5);
/// Streams answered here that the client may still send DATA on.
const LOCAL_STREAMS: usize = 1024;

/// A header block being read (HEADERS then CONTINUATION frames).
struct Block {
    stream: u32,
    end_stream: bool,
    fragment: Vec<u8>,
}

/// What a request's header block says that the relay acts on.
#[derive(Default)]
struct Fields {
    paths: Vec<Vec<u8>>,
    namespaces: Vec<Vec<u8>>,
    content_type: Option<Vec<u8>>,
}

struct Pump {
    conn: Arc<Conn>,
    decoder: hpack::Decoder,
    block: Option<Block>,
    /// Admitted calls whose body is still arriving.
    held: HashMap<u32, Call>,
    held_bytes: usize,
    /// Streams answered by the relay and never opened at containerd.
    local: HashSet<u32>,
    /// The highest stream id the client opened: a header block on a stream at or below it
    /// is trailers.
    last_opened: u32,
    tasks: JoinSet<()>,
    /// Frames for containerd, and for the client, from the current read.
    up: BytesMut,
    down: BytesMut,
}

/// Relays the client's frames; `buf` starts with the preface, already checked.
pub(super) async fn pump(
    conn: Arc<Conn>,
    mut read: OwnedReadHalf,
    mut buf: BytesMut,
) -> Result<(), Ended> {
    let mut room = ReadRoom::new(64 << 10);
    let mut pump = Pump {
        conn,
        decoder: hpack::Decoder::default(),
        block: None,
        held: HashMap::new(),
        held_bytes: 0,
        local: HashSet::new(),
        last_opened: 0,
        tasks: JoinSet::new(),
        up: buf.split_to(h2::PREFACE.len()),
        down: BytesMut::new(),
    };
    loop {
        loop {
            let next = match next_frame(&pump.conn, &mut buf) {
                Ok(Some((head, frame))) => {
                    if buf.is_empty() {
                        // Let the allocation go with the last frame split off it, which
                        // may wait (for a decision's turn) long after it is handled.
                        buf = BytesMut::new();
                    }
                    pump.frame(head, frame).await
                }
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if let Err(e) = next {
                pump.fail(&e).await;
                return Err(e);
            }
        }
        pump.flush().await?;
        while pump.tasks.try_join_next().is_some() {}
        if room.read(&mut read, &mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// The next whole frame in `buf`, refusing one larger than containerd allows before its
/// payload is buffered: a frame head may announce 16 MiB, and containerd (grpc-go) would
/// only refuse it once the relay had read it all.
fn next_frame(conn: &Conn, buf: &mut BytesMut) -> Result<Option<(Head, BytesMut)>, Ended> {
    if Head::parse(buf).is_some_and(|head| head.len > conn.flow().max_frame()) {
        return Err(Ended::FrameSize);
    }
    Ok(h2::next_frame(buf))
}

impl Pump {
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.up.is_empty() {
            // A fresh buffer, so the next frames are split off the read buffer without a
            // copy (`BytesMut::unsplit` of contiguous parts).
            let up = std::mem::take(&mut self.up);
            if let Err(e) = self.conn.to_upstream(&up).await {
                // containerd's end of the connection is gone. The responses pump sees it
                // too and answers every stream opened there `Unavailable` (`fail_open`);
                // this pump reads on, to answer what the client sends until it has read
                // the GOAWAY. Ending here left those calls a bare close (tonic: "transport
                // error"), which the faults test caught.
                tracing::debug!(error = %e, "writing to containerd failed");
            }
        }
        if !self.down.is_empty() {
            // Queued, never waited on (`outbox`): the client may be blocked writing to us.
            let down = std::mem::take(&mut self.down).freeze();
            if self.conn.out.queue(down)? > outbox::UNREAD_MAX {
                return Err(std::io::Error::other(
                    "the client leaves 16 MiB of its answers unread",
                ));
            }
        }
        Ok(())
    }

    /// A connection error: GOAWAY to the client, which is then closed.
    async fn fail(&mut self, e: &Ended) {
        let _ = self.flush().await;
        let (code, why) = match e {
            Ended::Io(_) => return,
            Ended::Protocol(why) => (error::PROTOCOL_ERROR, *why),
            Ended::Compression => (error::COMPRESSION_ERROR, "header block does not decode"),
            Ended::FrameSize => (
                error::FRAME_SIZE_ERROR,
                "frame larger than SETTINGS_MAX_FRAME_SIZE",
            ),
        };
        let mut out = BytesMut::new();
        h2::write_goaway(&mut out, 0x7fff_ffff, code, why);
        self.conn.tell_client(out);
    }

    async fn frame(&mut self, head: Head, frame: BytesMut) -> Result<(), Ended> {
        let payload = &frame[h2::HEAD..];
        if let Some(block) = &mut self.block {
            if head.kind != kind::CONTINUATION || head.stream != block.stream {
                return Err(Ended::Protocol(
                    "a header block was interrupted by another frame",
                ));
            }
            block.fragment.extend_from_slice(payload);
            if block.fragment.len() > MAX_MESSAGE {
                return Err(Ended::Protocol("a header block is larger than 16 MiB"));
            }
            if head.has(flag::END_HEADERS) {
                drop(frame);
                let block = self.block.take().expect("checked above");
                self.headers(block).await?;
            }
            return Ok(());
        }
        match head.kind {
            kind::HEADERS => {
                let range = h2::unpadded(&head, payload)
                    .ok_or(Ended::Protocol("HEADERS padding longer than the frame"))?;
                let block = Block {
                    stream: head.stream,
                    end_stream: head.has(flag::END_STREAM),
                    fragment: payload[range].to_vec(),
                };
                // Copied out; `headers` may wait for a decision's turn (`Pump::dispatch`).
                drop(frame);
                if head.has(flag::END_HEADERS) {
                    self.headers(block).await?;
                } else {
                    self.block = Some(block);
                }
            }
            kind::CONTINUATION => {
                return Err(Ended::Protocol("CONTINUATION without a header block"))
            }
            kind::DATA => self.data(head, frame).await?,
            kind::RST_STREAM => {
                if self.local.remove(&head.stream) {
                    return Ok(());
                }
                self.conn.closed(head.stream);
                if self.take_held(head.stream).is_some() {
                    // Still arriving: no decision will release it.
                    self.conn.flow().release(head.stream);
                } else {
                    self.conn.end_held(head.stream);
                }
                self.up.unsplit(frame);
            }
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, GOAWAY and frames of unknown types
            // are the two peers' business.
            _ => self.up.unsplit(frame),
        }
        Ok(())
    }

    async fn data(&mut self, head: Head, frame: BytesMut) -> Result<(), Ended> {
        let stream = head.stream;
        let end = head.has(flag::END_STREAM);
        if self.held.contains_key(&stream) {
            return self.body(head, frame).await;
        }
        if self.local.contains(&stream) {
            if end {
                self.local.remove(&stream);
            }
            self.grant(head.len);
            return Ok(());
        }
        if self.conn.flow().is_held(stream) {
            // DATA after the END_STREAM of an admitted call being decided: containerd must
            // not read it as the message (the relay's body ends the stream there).
            self.grant(head.len);
            return Ok(());
        }
        if !self.conn.flow().take_passthrough(head.len) {
            self.flush().await?;
            let conn = self.conn.clone();
            conn.when(|f| f.take_passthrough(head.len).then_some(()))
                .await;
        }
        self.up.unsplit(frame);
        Ok(())
    }

    /// DATA of an admitted call whose body is still arriving: held within the budgets, or
    /// the call refused.
    async fn body(&mut self, head: Head, frame: BytesMut) -> Result<(), Ended> {
        let (stream, end) = (head.stream, head.has(flag::END_STREAM));
        let range = h2::unpadded(&head, &frame[h2::HEAD..])
            .ok_or(Ended::Protocol("DATA padding longer than the frame"))?;
        let content = &frame[h2::HEAD..][range];
        let n = content.len();
        let arriving = self.held_bytes;
        let call = self.held_mut(stream)?;
        if call.body.len() + n > MAX_MESSAGE + 5 || arriving + n > HELD_BYTES {
            let status = Status::new(
                Code::ResourceExhausted,
                format!("portcullis: {:?} request larger than {MAX_MESSAGE} bytes, or too many admitted calls arriving at once on this connection", call.method),
            );
            self.refuse_arriving(head, &status);
            return Ok(());
        }
        // What this connection's arriving bodies hold is within its budget; calls it has
        // dispatched may hold the rest for a while (until containerd has taken their
        // bodies), and then the client waits, as it would for containerd's window.
        if !call.charge.conn.try_add(n) {
            self.flush().await?;
            let gone = match self.held.get_mut(&stream) {
                Some(call) => self
                    .conn
                    .unless_gone(call.charge.conn.add(n))
                    .await
                    .is_none(),
                None => false,
            };
            if gone {
                // containerd has gone and the call is answered (`fail_open`).
                self.take_held(stream);
                self.conn.flow().release(stream);
                self.grant(head.len);
                return Ok(());
            }
        }
        if !self.held_mut(stream)?.charge.proxy.try_add(n) {
            let status = Status::new(
                Code::ResourceExhausted,
                format!("portcullis: the proxy holds {BODIES_HELD} bytes of admitted request bodies across connections; retry once calls in flight are done"),
            );
            self.refuse_arriving(head, &status);
            return Ok(());
        }
        self.held_mut(stream)?.body.extend_from_slice(content);
        self.held_bytes += n;
        // containerd never sees these bytes: the client's connection window comes back
        // from the relay.
        self.grant(head.len);
        // The body is copied out: the read buffer the frame shares is not kept while the
        // call waits for its turn.
        drop(frame);
        if end {
            self.dispatch(stream).await?;
        } else if head.len > 0 {
            h2::write_window_update(&mut self.down, stream, head.len as u32);
        }
        Ok(())
    }

    /// Refuses the admitted call whose body `head`'s frame was part of.
    fn refuse_arriving(&mut self, head: Head, status: &Status) {
        self.take_held(head.stream);
        self.refuse_held(head.stream, status, head.has(flag::END_STREAM));
        self.grant(head.len);
    }

    fn grant(&mut self, len: usize) {
        if len > 0 {
            h2::write_window_update(&mut self.down, 0, len as u32);
        }
    }

    /// An admitted call whose body is still arriving (the caller has just seen it there).
    fn held_mut(&mut self, stream: u32) -> Result<&mut Call, Ended> {
        self.held.get_mut(&stream).ok_or(Ended::Protocol(
            "an admitted call vanished while its body arrived",
        ))
    }

    /// Removes an admitted call whose body is still arriving.
    fn take_held(&mut self, stream: u32) -> Option<Call> {
        let call = self.held.remove(&stream)?;
        self.held_bytes -= call.body.len();
        Some(call)
    }

    async fn headers(&mut self, block: Block) -> Result<(), Ended> {
        let stream = block.stream;
        let end = block.end_stream;
        let (table_size, max_frame, sent_on) = {
            let flow = self.conn.flow();
            (flow.table_size(), flow.max_frame(), flow.is_held(stream))
        };
        self.decoder.allow_table_size(table_size);
        let mut encoded = Vec::with_capacity(block.fragment.len() + 64);
        let mut fields = Fields::default();
        self.decoder
            .decode(&block.fragment, |name, value| {
                match name {
                    b":path" => fields.paths.push(value.to_vec()),
                    b"containerd-namespace" => fields.namespaces.push(value.to_vec()),
                    b"content-type" => fields.content_type = Some(value.to_vec()),
                    _ => {}
                }
                hpack::encode_field(&mut encoded, name, value);
            })
            .map_err(|_| Ended::Compression)?;
        // Trailers of a stream the relay holds or answered: nothing goes to containerd.
        if self.held.contains_key(&stream) {
            if end {
                self.dispatch(stream).await?;
            }
            return Ok(());
        }
        if self.local.contains(&stream) || sent_on {
            if end {
                self.local.remove(&stream);
            }
            return Ok(());
        }
        if stream <= self.last_opened {
            // Trailers of a relayed stream (stream ids only grow, §5.1.1): containerd
            // already routed the stream by its first block.
            h2::write_headers(&mut self.up, stream, &encoded, end, max_frame);
            return Ok(());
        }
        self.last_opened = stream;
        let method = match route(&fields.paths, self.conn.proxy.cri) {
            Route::Relay => {
                if let Err(status) = self.conn.opened(stream) {
                    return self.refuse_local(stream, &status, end);
                }
                h2::write_headers(&mut self.up, stream, &encoded, end, max_frame);
                return Ok(());
            }
            Route::Refuse(status) => return self.refuse_local(stream, &status, end),
            Route::Admit(method) => method,
        };
        let namespace = match namespace(&fields) {
            Ok(ns) => ns,
            Err(status) => return self.refuse_local(stream, &status, end),
        };
        // Opened at containerd now, so stream ids reach it in order; the body follows
        // once decided, ending the stream.
        if let Err(status) = self.conn.opened(stream) {
            return self.refuse_local(stream, &status, end);
        }
        self.conn.flow().hold(stream);
        h2::write_headers(&mut self.up, stream, &encoded, false, max_frame);
        let call = Call {
            method,
            namespace,
            body: BytesMut::new(),
            charge: Charge::new(
                self.conn.held.clone(),
                self.conn.proxy.limits.bodies.clone(),
            ),
        };
        self.held.insert(stream, call);
        if end {
            self.dispatch(stream).await?;
        }
        Ok(())
    }

    /// The held call's body is complete: once it has a turn to be decided
    /// ([`limits::DECIDING`]), decide it. The client's next frames wait for that turn: what
    /// waits is one body per connection, not every call a client can send.
    ///
    /// [`limits::DECIDING`]: crate::proxy::limits::DECIDING
    async fn dispatch(&mut self, stream: u32) -> std::io::Result<()> {
        let Some(call) = self.take_held(stream) else {
            return Ok(());
        };
        let deciding = self.conn.proxy.limits.deciding.clone();
        let turn = match deciding.clone().try_acquire_owned() {
            Ok(turn) => Some(turn),
            Err(_) => {
                // What was read so far (window for this body, other streams' frames) must
                // not wait with it.
                self.flush().await?;
                // The semaphore is never closed, so never an error.
                self.conn
                    .unless_gone(deciding.acquire_owned())
                    .await
                    .and_then(Result::ok)
            }
        };
        let Some(turn) = turn.filter(|_| self.conn.open().gone.is_none()) else {
            // containerd has gone: `fail_open` answered the call, nothing will take it.
            self.conn.flow().release(stream);
            return Ok(());
        };
        self.tasks
            .spawn(admitted::run(self.conn.clone(), stream, call, turn));
        Ok(())
    }

    /// Refuses a stream that was never opened at containerd.
    fn refuse_local(&mut self, stream: u32, status: &Status, end: bool) -> Result<(), Ended> {
        tracing::info!(stream, code = ?status.code, message = %status.message, "refused");
        write_status(&mut self.down, stream, status);
        if !end {
            if self.local.len() >= LOCAL_STREAMS {
                return Err(Ended::Protocol("too many refused streams left open"));
            }
            self.local.insert(stream);
        }
        Ok(())
    }

    /// Refuses an admitted stream already opened at containerd: reset there, answered here.
    fn refuse_held(&mut self, stream: u32, status: &Status, end: bool) {
        tracing::info!(stream, code = ?status.code, message = %status.message, "refused");
        self.conn.flow().release(stream);
        self.conn.closed(stream);
        h2::write_rst_stream(&mut self.up, stream, error::CANCEL);
        write_status(&mut self.down, stream, status);
        if !end && self.local.len() < LOCAL_STREAMS {
            self.local.insert(stream);
        }
    }
}

/// The namespace of an admitted call, as containerd will read it: exactly one
/// `containerd-namespace` (containerd reads the first of several; the proxy refuses them).
fn namespace(fields: &Fields) -> Result<String, Status> {
    let invalid = |m: &str| {
        Err(Status::new(
            Code::InvalidArgument,
            format!("portcullis: {m}"),
        ))
    };
    if !fields
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with(b"application/grpc"))
    {
        return invalid("an admitted call must have content-type application/grpc");
    }
    match fields.namespaces.as_slice() {
        [] => Ok(String::new()),
        [ns] => match std::str::from_utf8(ns) {
            Ok(ns) => Ok(ns.to_owned()),
            Err(_) => invalid("containerd-namespace is not UTF-8"),
        },
        _ => invalid("more than one containerd-namespace header"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admitted_call_names_one_namespace_in_grpc_content() {
        let mut f = Fields {
            content_type: Some(b"application/grpc+proto".to_vec()),
            ..Fields::default()
        };
        assert_eq!(namespace(&f).unwrap(), "");
        f.namespaces.push(b"default".to_vec());
        assert_eq!(namespace(&f).unwrap(), "default");
        f.namespaces.push(b"other".to_vec());
        assert!(namespace(&f).unwrap_err().message.contains("more than one"));
        f.namespaces.truncate(1);
        f.content_type = Some(b"text/plain".to_vec());
        assert!(namespace(&f).is_err());
    }
}
