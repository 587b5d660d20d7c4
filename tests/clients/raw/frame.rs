//! HTTP/2 wire vocabulary for the raw client: frame types and flags, error names, and
//! what a request is (header fields, body, how its frames are cut) and what became of it.

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// A header field: raw name and value bytes.
pub type Field = (Vec<u8>, Vec<u8>);

/// An HTTP/2 error code's name.
pub fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("error {code:#x}"), |n| (*n).to_owned())
}

pub fn kind_name(kind: u8) -> String {
    const NAMES: [&str; 10] = [
        "DATA",
        "HEADERS",
        "PRIORITY",
        "RST_STREAM",
        "SETTINGS",
        "PUSH_PROMISE",
        "PING",
        "GOAWAY",
        "WINDOW_UPDATE",
        "CONTINUATION",
    ];
    NAMES
        .get(kind as usize)
        .map_or_else(|| format!("frame type {kind:#x}"), |n| (*n).to_owned())
}

/// How a request's frames are cut.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// The header block goes in HEADERS plus this many CONTINUATION frames.
    pub continuations: usize,
    /// HEADERS carries the PADDED flag and this many bytes of padding.
    pub header_padding: Option<u8>,
    /// HEADERS carries the PRIORITY flag (dependency on stream 0, weight 16).
    pub priority: bool,
    /// A PRIORITY frame for the (still idle) stream goes before its HEADERS.
    pub priority_frame: bool,
    /// Every DATA frame carries the PADDED flag and this many bytes of padding.
    pub data_padding: Option<u8>,
    /// The body is cut into this many DATA frames (one when 0).
    pub data_frames: usize,
    /// END_STREAM goes on an extra empty DATA frame after the body.
    pub empty_end: bool,
    /// The request's bytes are written one byte a write.
    pub dribble: bool,
    /// A DATA frame with these bytes follows the one that ended the stream (a protocol
    /// violation a hostile client may try: the bytes must never reach containerd).
    pub after_end: Option<Vec<u8>>,
}

/// One request: header fields in order (pseudo-headers included), body, frame cut.
#[derive(Clone, Debug)]
pub struct Request {
    pub fields: Vec<Field>,
    pub body: Vec<u8>,
    pub shape: Shape,
}

pub fn field(name: &str, value: &str) -> Field {
    (name.as_bytes().to_vec(), value.as_bytes().to_vec())
}

impl Request {
    /// Appends a field.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.fields.push(field(name, value));
        self
    }

    /// Inserts a field at `index`.
    pub fn insert(mut self, index: usize, name: &str, value: &str) -> Self {
        self.fields.insert(index, field(name, value));
        self
    }

    /// Sets the value of every field named `name`.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        for (n, v) in &mut self.fields {
            if n == name.as_bytes() {
                *v = value.as_bytes().to_vec();
            }
        }
        self
    }

    /// Drops every field named `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| n != name.as_bytes());
        self
    }

    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }
}

/// What became of one stream.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The server ended the stream: its header block, trailers (if a second block came)
    /// and body (DATA payloads, padding removed).
    Ended {
        headers: Vec<Field>,
        trailers: Option<Vec<Field>>,
        body: Vec<u8>,
    },
    /// RST_STREAM with this code.
    Reset(u32),
    /// GOAWAY with this code, the stream not (or no longer) being processed.
    GoAway(u32),
    /// The connection closed with the stream unanswered and no GOAWAY.
    Closed,
    /// Nothing ended the stream in time.
    TimedOut,
    /// The server sent something this client cannot read.
    Broken(String),
}

/// `n` consecutive pieces of `bytes` (some empty when it is shorter than `n`).
pub fn pieces(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let n = n.max(1);
    (0..n)
        .map(|i| &bytes[bytes.len() * i / n..bytes.len() * (i + 1) / n])
        .collect()
}

pub fn fields_text(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A padded frame's content.
pub fn unpad(flags: u8, p: &[u8]) -> Result<&[u8], String> {
    if flags & PADDED == 0 {
        return Ok(p);
    }
    let pad = *p.first().ok_or("PADDED frame with no pad length")? as usize;
    if pad + 1 > p.len() {
        return Err("padding longer than the frame".into());
    }
    Ok(&p[1..p.len() - pad])
}
