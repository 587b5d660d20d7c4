//! HTTP/2 at the frame level (RFC 9113), as far as a relay needs it: frame heads, the
//! frames a relay writes itself, and header blocks re-encoded between two peers.
//!
//! Hand-rolled on purpose. The `h2` crate, under hyper, is a whole endpoint: it validates
//! `:authority` into an `http::Uri` and refuses what grpc-go accepts (the socket path that
//! grpc-go clients send when they dial a unix socket, the percent-encoded path of gRPC
//! C-core, an empty value), its maintainers have declined to relax that, and relaying
//! through two such endpoints costs two HTTP/2 state machines per call. A relay needs far
//! less: the 9-byte frame head (§4.1), a handful of frames it writes on its own (SETTINGS
//! ACK, WINDOW_UPDATE, RST_STREAM, GOAWAY, HEADERS), and HPACK, which comes from the
//! `loona-hpack` crate with a Huffman decoder of ours (`hpack`, `huffman`).

pub mod hpack;
mod huffman;
pub mod lenient;

use bytes::{BufMut, BytesMut};

/// The client connection preface (§3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Size of a frame head.
pub const HEAD: usize = 9;
/// Largest frame payload the protocol allows (2^24 - 1).
pub const MAX_FRAME: usize = (1 << 24) - 1;
/// SETTINGS_MAX_FRAME_SIZE and SETTINGS_INITIAL_WINDOW_SIZE until a peer says otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16_384;
pub const DEFAULT_WINDOW: i64 = 65_535;
/// SETTINGS_HEADER_TABLE_SIZE until a peer says otherwise.
pub const DEFAULT_TABLE_SIZE: usize = 4_096;

/// Frame types (§6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (§6).
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (§7).
pub mod error {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS identifiers (§6.5.2) the relay reads.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// A frame head: payload length, type, flags and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads a head from the first nine bytes of `b`, if there are nine.
    pub fn parse(b: &[u8]) -> Option<Head> {
        let b: &[u8; HEAD] = b.get(..HEAD)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize,
            kind: b[3],
            flags: b[4],
            // The reserved bit is ignored on receipt (§4.1).
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn write(&self, out: &mut BytesMut) {
        debug_assert!(self.len <= MAX_FRAME);
        out.put_slice(&(self.len as u32).to_be_bytes()[1..]);
        out.put_u8(self.kind);
        out.put_u8(self.flags);
        out.put_u32(self.stream);
    }
}

/// Splits the next whole frame (head and payload) off the front of `buf`; `None`, with room
/// reserved for the rest of it, while it has not all arrived.
pub fn next_frame(buf: &mut BytesMut) -> Option<(Head, BytesMut)> {
    let head = Head::parse(buf)?;
    let len = HEAD + head.len;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return None;
    }
    Some((head, buf.split_to(len)))
}

/// What a frame's payload says once padding (and, on HEADERS, the priority block) is
/// taken off (§6.1, §6.2): the content, or `None` if the padding does not fit.
pub fn unpadded(head: &Head, payload: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut start = 0;
    let mut end = payload.len();
    if head.has(flag::PADDED) {
        let pad = *payload.first()? as usize;
        start = 1;
        end = end.checked_sub(pad)?;
    }
    if head.kind == kind::HEADERS && head.has(flag::PRIORITY) {
        start += 5;
    }
    (start <= end).then_some(start..end)
}

/// The (identifier, value) pairs of a SETTINGS payload; `None` if it is not a multiple of
/// six bytes (a FRAME_SIZE_ERROR the peer will report).
pub fn settings(payload: &[u8]) -> Option<impl Iterator<Item = (u16, u32)> + '_> {
    payload.len().is_multiple_of(6).then(|| {
        payload.chunks_exact(6).map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
    })
}

/// The increment of a WINDOW_UPDATE payload.
pub fn window_increment(payload: &[u8]) -> Option<u32> {
    let b: [u8; 4] = payload.try_into().ok()?;
    Some(u32::from_be_bytes(b) & 0x7fff_ffff)
}

pub fn write_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    Head {
        len: 4,
        kind: kind::WINDOW_UPDATE,
        flags: 0,
        stream,
    }
    .write(out);
    out.put_u32(increment);
}

pub fn write_rst_stream(out: &mut BytesMut, stream: u32, code: u32) {
    Head {
        len: 4,
        kind: kind::RST_STREAM,
        flags: 0,
        stream,
    }
    .write(out);
    out.put_u32(code);
}

pub fn write_goaway(out: &mut BytesMut, last_stream: u32, code: u32, debug: &str) {
    Head {
        len: 8 + debug.len(),
        kind: kind::GOAWAY,
        flags: 0,
        stream: 0,
    }
    .write(out);
    out.put_u32(last_stream);
    out.put_u32(code);
    out.put_slice(debug.as_bytes());
}

/// An empty SETTINGS frame (every setting at its default), or its ACK.
pub fn write_settings(out: &mut BytesMut, ack: bool) {
    Head {
        len: 0,
        kind: kind::SETTINGS,
        flags: if ack { flag::ACK } else { 0 },
        stream: 0,
    }
    .write(out);
}

/// DATA frames carrying `data`, none larger than `max_frame`; the last one ends the stream
/// if `end_stream`.
pub fn write_data(
    out: &mut BytesMut,
    stream: u32,
    data: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let mut chunks = data.chunks(max_frame.max(1)).peekable();
    if chunks.peek().is_none() {
        Head {
            len: 0,
            kind: kind::DATA,
            flags: if end_stream { flag::END_STREAM } else { 0 },
            stream,
        }
        .write(out);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        Head {
            len: chunk.len(),
            kind: kind::DATA,
            flags: if last && end_stream {
                flag::END_STREAM
            } else {
                0
            },
            stream,
        }
        .write(out);
        out.put_slice(chunk);
    }
}

/// A header block as one HEADERS frame and as many CONTINUATION frames as `max_frame`
/// requires (§6.10).
pub fn write_headers(
    out: &mut BytesMut,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let mut chunks = block.chunks(max_frame.max(1));
    let first = chunks.next().unwrap_or_default();
    let mut rest = chunks.peekable();
    let end_headers = if rest.peek().is_none() {
        flag::END_HEADERS
    } else {
        0
    };
    Head {
        len: first.len(),
        kind: kind::HEADERS,
        flags: end_headers | if end_stream { flag::END_STREAM } else { 0 },
        stream,
    }
    .write(out);
    out.put_slice(first);
    while let Some(chunk) = rest.next() {
        Head {
            len: chunk.len(),
            kind: kind::CONTINUATION,
            flags: if rest.peek().is_none() {
                flag::END_HEADERS
            } else {
                0
            },
            stream,
        }
        .write(out);
        out.put_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_and_ignore_the_reserved_bit() {
        let head = Head {
            len: 0x01_0203,
            kind: kind::DATA,
            flags: flag::END_STREAM,
            stream: 7,
        };
        let mut out = BytesMut::new();
        head.write(&mut out);
        assert_eq!(Head::parse(&out), Some(head));
        out[5] |= 0x80;
        assert_eq!(Head::parse(&out).unwrap().stream, 7);
        assert_eq!(Head::parse(&out[..8]), None);
    }

    #[test]
    fn frames_come_off_the_buffer_only_when_whole() {
        let mut buf = BytesMut::new();
        write_rst_stream(&mut buf, 1, error::CANCEL);
        write_goaway(&mut buf, 1, error::NO_ERROR, "bye");
        let whole = buf.len();
        let mut partial = buf.split_to(whole - 1);
        let (head, frame) = next_frame(&mut partial).unwrap();
        assert_eq!((head.kind, frame.len()), (kind::RST_STREAM, HEAD + 4));
        assert!(next_frame(&mut partial).is_none());
        assert!(partial.capacity() >= HEAD + 11);
        partial.unsplit(buf);
        assert_eq!(next_frame(&mut partial).unwrap().0.kind, kind::GOAWAY);
        assert!(partial.is_empty() && next_frame(&mut partial).is_none());
    }

    #[test]
    fn padding_and_priority_are_taken_off() {
        let head = Head {
            len: 10,
            kind: kind::HEADERS,
            flags: flag::PADDED | flag::PRIORITY,
            stream: 1,
        };
        // pad length 2, 5 priority bytes, 2 content bytes, 2 padding bytes.
        let payload = [2, 0, 0, 0, 0, 16, b'a', b'b', 0, 0];
        assert_eq!(unpadded(&head, &payload), Some(6..8));
        assert_eq!(unpadded(&head, &[9, 0]), None);
        assert_eq!(unpadded(&head, &[]), None);
        let data = Head {
            kind: kind::DATA,
            flags: 0,
            ..head
        };
        assert_eq!(unpadded(&data, b"xyz"), Some(0..3));
    }

    #[test]
    fn header_blocks_split_into_continuations() {
        let mut out = BytesMut::new();
        write_headers(&mut out, 3, &[7; 10], true, 4);
        let mut frames = Vec::new();
        let mut rest = &out[..];
        while let Some(h) = Head::parse(rest) {
            frames.push((h.kind, h.flags, h.len));
            rest = &rest[HEAD + h.len..];
        }
        assert_eq!(
            frames,
            [
                (kind::HEADERS, flag::END_STREAM, 4),
                (kind::CONTINUATION, 0, 4),
                (kind::CONTINUATION, flag::END_HEADERS, 2)
            ]
        );
    }

    #[test]
    fn data_is_chunked_and_only_the_last_frame_ends_the_stream() {
        let mut out = BytesMut::new();
        write_data(&mut out, 1, &[1; 5], true, 2);
        let mut rest = &out[..];
        let mut seen = Vec::new();
        while let Some(h) = Head::parse(rest) {
            seen.push((h.len, h.flags));
            rest = &rest[HEAD + h.len..];
        }
        assert_eq!(seen, [(2, 0), (2, 0), (1, flag::END_STREAM)]);
        let mut empty = BytesMut::new();
        write_data(&mut empty, 1, &[], true, 2);
        assert_eq!(Head::parse(&empty).unwrap().flags, flag::END_STREAM);
    }

    #[test]
    fn settings_and_window_updates_parse() {
        let payload = [0, 4, 0, 1, 0, 0, 0, 5, 0, 0, 64, 0];
        let pairs: Vec<_> = settings(&payload).unwrap().collect();
        assert_eq!(pairs, [(4, 65536), (5, 16384)]);
        assert!(settings(&payload[..5]).is_none());
        assert_eq!(window_increment(&[0x80, 0, 1, 0]), Some(256));
        assert_eq!(window_increment(&[0, 0]), None);
    }
}
