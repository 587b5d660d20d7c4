//! A raw HTTP/2 client over a unix socket: hand-built frames, blocking I/O, a deadline on
//! every read. It sends exactly what it is told (any header name, pseudo-headers anywhere,
//! any frame cut) and reports, per stream, what came back: the response, a RST_STREAM, a
//! GOAWAY, the connection closing, or nothing in time. Every frame both ways is traced
//! for failure messages.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::frame::*;
use super::hpack::Hpack;

/// How long any one wait for the server may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why reading stopped.
#[derive(Clone, Debug)]
enum End {
    Eof,
    TimedOut,
    Broken(String),
}

#[derive(Default)]
struct Stream {
    headers: Option<Vec<Field>>,
    trailers: Option<Vec<Field>>,
    body: Vec<u8>,
    unacked: usize,
}

/// A header block still waiting for its CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    fragment: Vec<u8>,
}

/// One HTTP/2 connection.
pub struct Conn {
    sock: UnixStream,
    pub hpack: Hpack,
    decoder: loona_hpack::Decoder<'static>,
    next_id: u32,
    open: HashMap<u32, Stream>,
    done: HashMap<u32, Outcome>,
    block: Option<Block>,
    goaway: Option<(u32, u32)>,
    end: Option<End>,
    acks: Vec<[u8; 8]>,
    settings: bool,
    unacked: usize,
    /// The header block of the last request sent.
    pub last_block: Vec<u8>,
    trace: Vec<String>,
}

impl Conn {
    /// Connects, sends the preface and SETTINGS (no push), and waits for the server's
    /// SETTINGS.
    pub fn connect(path: &Path, hpack: Hpack) -> Result<Conn, String> {
        let sock = UnixStream::connect(path)
            .map_err(|e| format!("connecting to {}: {e}", path.display()))?;
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut c = Conn {
            sock,
            hpack,
            decoder: loona_hpack::Decoder::new(),
            next_id: 1,
            open: HashMap::new(),
            done: HashMap::new(),
            block: None,
            goaway: None,
            end: None,
            acks: Vec::new(),
            settings: false,
            unacked: 0,
            last_block: Vec::new(),
            trace: Vec::new(),
        };
        let mut out = PREFACE.to_vec();
        // SETTINGS_ENABLE_PUSH = 0.
        c.frame(&mut out, SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]);
        c.write(&out, false);
        let deadline = Instant::now() + IO_TIMEOUT;
        while !c.settings {
            if !c.step(deadline) {
                return Err(format!("no SETTINGS from the server:\n{}", c.trace()));
            }
        }
        Ok(c)
    }

    /// The frames sent and received so far, one a line (the first 30 and last 50 of
    /// more).
    pub fn trace(&self) -> String {
        let mut lines: Vec<&str> = self.trace.iter().map(String::as_str).collect();
        if lines.len() > 80 {
            lines.drain(30..lines.len() - 50);
            lines.insert(30, "...");
        }
        if let Some(end) = &self.end {
            return format!("{}\n(reading ended: {end:?})", lines.join("\n"));
        }
        lines.join("\n")
    }

    /// Appends one frame to `out` and traces it.
    fn frame(&mut self, out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = payload.len() as u32;
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        self.trace.push(format!(
            "-> {} s{stream} [{flags:#04x}] {len} bytes",
            kind_name(kind)
        ));
    }

    fn write(&mut self, bytes: &[u8], dribble: bool) {
        let result = if dribble {
            bytes.iter().try_for_each(|b| self.sock.write_all(&[*b]))
        } else {
            self.sock.write_all(bytes)
        };
        if let Err(e) = result {
            self.trace.push(format!("(write failed: {e})"));
        }
    }

    /// Sends `req` on a new stream; returns its id.
    pub fn send(&mut self, req: &Request) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let block = self.hpack.encode(&req.fields);
        self.last_block = block.clone();
        self.open.insert(id, Stream::default());
        let s = &req.shape;
        let mut out = Vec::new();
        if s.priority_frame {
            self.frame(&mut out, PRIORITY, 0, id, &[0, 0, 0, 0, 15]);
        }
        let cut = pieces(&block, s.continuations + 1);
        let mut flags = if req.body.is_empty() { END_STREAM } else { 0 };
        let mut payload = Vec::new();
        if let Some(pad) = s.header_padding {
            flags |= PADDED;
            payload.push(pad);
        }
        if s.priority {
            flags |= PRIORITY_FLAG;
            payload.extend_from_slice(&[0, 0, 0, 0, 15]);
        }
        payload.extend_from_slice(cut[0]);
        payload.extend(std::iter::repeat_n(
            0,
            s.header_padding.unwrap_or(0) as usize,
        ));
        if cut.len() == 1 {
            flags |= END_HEADERS;
        }
        self.frame(&mut out, HEADERS, flags, id, &payload);
        self.trace
            .push(format!("     {}", fields_text(&req.fields)));
        for (i, piece) in cut.iter().enumerate().skip(1) {
            let flags = if i == cut.len() - 1 { END_HEADERS } else { 0 };
            self.frame(&mut out, CONTINUATION, flags, id, piece);
        }
        if !req.body.is_empty() {
            let chunks = pieces(&req.body, s.data_frames);
            let mut chunks: Vec<(&[u8], bool)> = chunks.iter().map(|c| (*c, false)).collect();
            if s.empty_end {
                chunks.push((&[], true));
            } else {
                chunks.last_mut().unwrap().1 = true;
            }
            for (chunk, end) in chunks {
                let mut flags = if end { END_STREAM } else { 0 };
                let mut payload = Vec::new();
                if let Some(pad) = s.data_padding {
                    flags |= PADDED;
                    payload.push(pad);
                }
                payload.extend_from_slice(chunk);
                payload.extend(std::iter::repeat_n(0, s.data_padding.unwrap_or(0) as usize));
                self.frame(&mut out, DATA, flags, id, &payload);
            }
        }
        if let Some(extra) = &s.after_end {
            self.frame(&mut out, DATA, 0, id, extra);
        }
        self.write(&out, s.dribble);
        id
    }

    /// Reads until every stream in `ids` has ended, the connection has, or `within`
    /// passed; returns their outcomes in order.
    pub fn wait(&mut self, ids: &[u32], within: Duration) -> Vec<Outcome> {
        let deadline = Instant::now() + within;
        while !ids.iter().all(|id| self.done.contains_key(id)) && self.step(deadline) {}
        ids.iter()
            .map(|id| {
                self.done
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| match (&self.end, self.goaway) {
                        (Some(End::Broken(why)), _) => Outcome::Broken(why.clone()),
                        (Some(End::Eof), Some((_, code))) => Outcome::GoAway(code),
                        (Some(End::Eof), None) => Outcome::Closed,
                        _ => Outcome::TimedOut,
                    })
            })
            .collect()
    }

    /// Sends a PING; whether its ACK came back with the same payload in time.
    pub fn ping(&mut self, payload: [u8; 8]) -> bool {
        let mut out = Vec::new();
        self.frame(&mut out, PING, 0, 0, &payload);
        self.write(&out, false);
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.acks.contains(&payload) {
            if !self.step(deadline) {
                return false;
            }
        }
        true
    }

    /// Reads and handles one frame; false once reading has ended (closed, timed out,
    /// unreadable).
    fn step(&mut self, deadline: Instant) -> bool {
        if self.end.is_some() {
            return false;
        }
        match self.read_frame(deadline) {
            Ok((kind, flags, stream, payload)) => {
                if let Err(why) = self.handle(kind, flags, stream, payload) {
                    self.trace.push(format!("(unreadable: {why})"));
                    self.end = Some(End::Broken(why));
                }
            }
            Err(end) => self.end = Some(end),
        }
        self.end.is_none()
    }

    fn read_frame(&mut self, deadline: Instant) -> Result<(u8, u8, u32, Vec<u8>), End> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::TimedOut);
        }
        self.sock.set_read_timeout(Some(left)).unwrap();
        let mut head = [0u8; 9];
        self.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        self.read_exact(&mut payload)?;
        Ok((head[3], head[4], stream, payload))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), End> {
        self.sock.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::TimedOut,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => End::Eof,
            _ => End::Broken(format!("reading: {e}")),
        })
    }

    fn handle(&mut self, kind: u8, flags: u8, stream: u32, p: Vec<u8>) -> Result<(), String> {
        let mut note = String::new();
        match kind {
            DATA => {
                let data = unpad(flags, &p)?;
                self.unacked += p.len();
                let mut updates = Vec::new();
                if self.unacked >= 16384 {
                    updates.push((0, std::mem::take(&mut self.unacked)));
                }
                if let Some(s) = self.open.get_mut(&stream) {
                    s.body.extend_from_slice(data);
                    s.unacked += p.len();
                    if s.unacked >= 16384 && flags & END_STREAM == 0 {
                        updates.push((stream, std::mem::take(&mut s.unacked)));
                    }
                }
                self.trace_in(kind, flags, stream, &format!("{} bytes", p.len()));
                let mut out = Vec::new();
                for (id, n) in updates {
                    self.frame(&mut out, WINDOW_UPDATE, 0, id, &(n as u32).to_be_bytes());
                }
                self.write(&out, false);
                if flags & END_STREAM != 0 {
                    self.finish(stream);
                }
                return Ok(());
            }
            HEADERS => {
                let mut rest = unpad(flags, &p)?;
                if flags & PRIORITY_FLAG != 0 {
                    rest = rest.get(5..).ok_or("HEADERS too short for PRIORITY")?;
                }
                let block = Block {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    fragment: rest.to_vec(),
                };
                if self.block.replace(block).is_some() {
                    return Err("HEADERS while a header block was open".into());
                }
                if flags & END_HEADERS != 0 {
                    note = self.block_done()?;
                }
            }
            CONTINUATION => {
                let block = self
                    .block
                    .as_mut()
                    .ok_or("CONTINUATION with no header block")?;
                block.fragment.extend_from_slice(&p);
                if flags & END_HEADERS != 0 {
                    note = self.block_done()?;
                }
            }
            RST_STREAM => {
                let code = u32::from_be_bytes(p[..4].try_into().map_err(|_| "short RST")?);
                note = error_name(code);
                if self.open.remove(&stream).is_some() {
                    self.done.insert(stream, Outcome::Reset(code));
                }
            }
            SETTINGS if flags & ACK == 0 => {
                note = p
                    .chunks(6)
                    .map(|s| {
                        let id = u16::from_be_bytes([s[0], s[1]]);
                        let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                        format!("{id}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                self.trace_in(kind, flags, stream, &note);
                self.settings = true;
                let mut out = Vec::new();
                self.frame(&mut out, SETTINGS, ACK, 0, &[]);
                self.write(&out, false);
                return Ok(());
            }
            PING if flags & ACK == 0 => {
                self.trace_in(kind, flags, stream, "");
                let mut out = Vec::new();
                self.frame(&mut out, PING, ACK, 0, &p);
                self.write(&out, false);
                return Ok(());
            }
            PING => self
                .acks
                .push(p[..].try_into().map_err(|_| "PING not 8 bytes")?),
            GOAWAY => {
                let last = u32::from_be_bytes(p[..4].try_into().map_err(|_| "short GOAWAY")?);
                let code = u32::from_be_bytes(p[4..8].try_into().map_err(|_| "short GOAWAY")?);
                let last = last & 0x7fff_ffff;
                note = format!(
                    "last s{last} {} {:?}",
                    error_name(code),
                    String::from_utf8_lossy(&p[8..])
                );
                self.goaway = Some((last, code));
                let gone: Vec<u32> = self.open.keys().copied().filter(|id| *id > last).collect();
                for id in gone {
                    self.open.remove(&id);
                    self.done.insert(id, Outcome::GoAway(code));
                }
            }
            _ => {}
        }
        self.trace_in(kind, flags, stream, &note);
        Ok(())
    }

    fn trace_in(&mut self, kind: u8, flags: u8, stream: u32, note: &str) {
        self.trace.push(format!(
            "<- {} s{stream} [{note}] [{flags:#04x}]",
            kind_name(kind)
        ));
    }

    /// Decodes the completed header block (always: it moves the HPACK state) and gives it
    /// to its stream.
    fn block_done(&mut self) -> Result<String, String> {
        let block = self.block.take().unwrap();
        let fields = self
            .decoder
            .decode(&block.fragment)
            .map_err(|e| format!("HPACK: {e:?}"))?;
        let text = fields_text(&fields);
        if let Some(s) = self.open.get_mut(&block.stream) {
            if s.headers.is_none() {
                s.headers = Some(fields);
            } else {
                s.trailers = Some(fields);
            }
        }
        if block.end_stream {
            self.finish(block.stream);
        }
        Ok(text)
    }

    fn finish(&mut self, stream: u32) {
        if let Some(s) = self.open.remove(&stream) {
            let outcome = Outcome::Ended {
                headers: s.headers.unwrap_or_default(),
                trailers: s.trailers,
                body: s.body,
            };
            self.done.insert(stream, outcome);
        }
    }
}
