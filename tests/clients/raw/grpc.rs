//! gRPC on the raw client: the two unary calls, the outcome classes compared between
//! containerd and the proxy, and a collector that runs every case before failing.

use std::path::Path;

use super::frame::{error_name, Field, Outcome, Request, Shape};
use super::h2::{Conn, IO_TIMEOUT};
use super::hpack::Hpack;
use crate::common::World;

/// containerd's own Version service.
pub const VERSION: &str = "/containerd.services.version.v1.Version/Version";
/// The CRI plugin's Version.
pub const CRI_VERSION: &str = "/runtime.v1.RuntimeService/Version";

/// The gRPC-framed request message for `path`: `VersionRequest{version: "v1"}` for the
/// CRI, empty otherwise.
fn message(path: &str) -> Vec<u8> {
    let msg: &[u8] = if path.ends_with("RuntimeService/Version") {
        &[0x0a, 2, b'v', b'1']
    } else {
        &[]
    };
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// A unary call as grpc-go sends it, with `:authority` when given.
pub fn call(path: &str, authority: Option<&str>) -> Request {
    let req = Request {
        fields: Vec::new(),
        body: message(path),
        shape: Shape::default(),
    }
    .with(":method", "POST")
    .with(":scheme", "http")
    .with(":path", path);
    match authority {
        Some(a) => req.with(":authority", a),
        None => req,
    }
    .with("content-type", "application/grpc")
    .with("te", "trailers")
}

fn get(fields: &[Field], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// A response field: from the trailers, else the headers (a trailers-only response).
fn status_field(o: &Outcome, name: &str) -> Option<String> {
    match o {
        Outcome::Ended {
            headers, trailers, ..
        } => trailers
            .as_deref()
            .and_then(|t| get(t, name))
            .or_else(|| get(headers, name)),
        _ => None,
    }
}

/// `grpc-message`, percent-decoded.
pub fn grpc_message(o: &Outcome) -> String {
    let raw = status_field(o, "grpc-message").unwrap_or_default();
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if b[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn varint(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i).ok_or("truncated varint")?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// Field 1 (a string: the version) of the one gRPC message in `body`.
pub fn version(body: &[u8]) -> Result<String, String> {
    let len = body
        .get(1..5)
        .map(|l| u32::from_be_bytes(l.try_into().unwrap()) as usize)
        .ok_or(format!("{} bytes, no gRPC message", body.len()))?;
    let msg = body.get(5..5 + len).ok_or("truncated gRPC message")?;
    let mut i = 0;
    while i < msg.len() {
        let key = varint(msg, &mut i)?;
        let n = match key & 7 {
            0 => {
                varint(msg, &mut i)?;
                0
            }
            2 => varint(msg, &mut i)? as usize,
            t => return Err(format!("wire type {t}")),
        };
        let value = msg.get(i..i + n).ok_or("truncated field")?;
        i += n;
        if key == (1 << 3 | 2) {
            return Ok(String::from_utf8_lossy(value).into_owned());
        }
    }
    Err("no field 1".into())
}

/// What an outcome is, compared between containerd and the proxy: `OK "1.6.20~ds1"`,
/// `grpc-status 12`, `HTTP 415 without grpc-status`, `RST_STREAM PROTOCOL_ERROR`,
/// `GOAWAY PROTOCOL_ERROR`, `connection closed`, `no answer in time`.
pub fn class(o: &Outcome) -> String {
    match o {
        Outcome::Ended { headers, body, .. } => match status_field(o, "grpc-status").as_deref() {
            Some("0") => match version(body) {
                Ok(v) => format!("OK {v:?}"),
                Err(e) => format!("OK with an unreadable message ({e})"),
            },
            Some(s) => format!("grpc-status {s}"),
            None => format!(
                "HTTP {} without grpc-status",
                get(headers, ":status").unwrap_or("?".into())
            ),
        },
        Outcome::Reset(c) => format!("RST_STREAM {}", error_name(*c)),
        Outcome::GoAway(c) => format!("GOAWAY {}", error_name(*c)),
        Outcome::Closed => "connection closed".into(),
        Outcome::TimedOut => "no answer in time".into(),
        Outcome::Broken(why) => format!("failed: {}", why.lines().next().unwrap_or("")),
    }
}

/// One exchange on one socket: its streams' outcomes and classes, and the frame trace.
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub classes: Vec<String>,
    pub trace: String,
}

impl Run {
    pub fn new(outcomes: Vec<Outcome>, trace: String) -> Self {
        let classes = outcomes.iter().map(class).collect();
        Self {
            outcomes,
            classes,
            trace,
        }
    }

    /// A connection that could not be made.
    pub fn failed(why: String) -> Self {
        Self::new(vec![Outcome::Broken(why.clone())], why)
    }

    /// The classes, identical ones counted (`50 × OK "1.6.20~ds1"`).
    pub fn summary(&self) -> String {
        let mut groups: Vec<(&String, usize)> = Vec::new();
        for c in &self.classes {
            match groups.iter_mut().find(|(g, _)| *g == c) {
                Some((_, n)) => *n += 1,
                None => groups.push((c, 1)),
            }
        }
        groups
            .iter()
            .map(|(c, n)| {
                if *n == 1 {
                    (*c).clone()
                } else {
                    format!("{n} × {c}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn all_ok(&self) -> bool {
        !self.classes.is_empty() && self.classes.iter().all(|c| c.starts_with("OK \""))
    }
}

/// `req` alone on a fresh connection to `socket`.
pub fn once(socket: &Path, req: &Request) -> Run {
    match Conn::connect(socket, Hpack::fixed()) {
        Ok(mut c) => {
            let id = c.send(req);
            Run::new(c.wait(&[id], IO_TIMEOUT), c.trace())
        }
        Err(e) => Run::failed(e),
    }
}

/// Runs every case, then fails once, listing every failed case.
pub struct Checks {
    total: usize,
    failures: Vec<String>,
    /// `case | containerd | proxy` rows, printed at the end.
    rows: Vec<String>,
}

impl Checks {
    pub fn new() -> Self {
        Self {
            total: 0,
            failures: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        self.total += 1;
        if !ok {
            self.failures.push(failure());
        }
    }

    /// Runs `exchange` on containerd's socket and on the proxy's.
    pub fn both(&mut self, w: &World, case: &str, exchange: impl Fn(&Path) -> Run) -> [Run; 2] {
        let direct = exchange(&w.containerd.socket);
        let proxy = exchange(&w.proxy.socket);
        let message = |r: &Run| match r.outcomes.first().map(grpc_message) {
            Some(m) if !m.is_empty() => format!(" ({m:?})"),
            _ => String::new(),
        };
        self.rows.push(format!(
            "{case} | {}{} | {}{}",
            direct.summary(),
            message(&direct),
            proxy.summary(),
            message(&proxy)
        ));
        [direct, proxy]
    }

    /// Through the proxy exactly as directly, and directly a success.
    pub fn succeeds(&mut self, w: &World, case: &str, exchange: impl Fn(&Path) -> Run) {
        let [direct, proxy] = self.both(w, case, exchange);
        self.check(direct.all_ok(), || {
            format!(
                "{case}: containerd itself answered {} (is the test client wrong?)\nframes:\n{}",
                direct.summary(),
                direct.trace
            )
        });
        self.same_classes(case, &direct, &proxy);
    }

    /// The proxy's outcome classes equal containerd's.
    pub fn same_classes(&mut self, case: &str, direct: &Run, proxy: &Run) {
        self.check(direct.classes == proxy.classes, || {
            format!(
                "{case}: containerd answered {}, the proxy {}\nframes through the proxy:\n{}",
                direct.summary(),
                proxy.summary(),
                proxy.trace
            )
        });
    }

    /// Prints the table; fails listing every failed case, with the daemons' logs' tails.
    pub fn finish(self, w: &World) {
        eprintln!("case | containerd | proxy\n{}", self.rows.join("\n"));
        if self.failures.is_empty() {
            return;
        }
        let tail = |name: &str, log: String| {
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(25);
            format!(
                "--- {name} log, last lines ---\n{}",
                lines[from..].join("\n")
            )
        };
        let tail = format!(
            "{}\n{}",
            tail("proxy", w.proxy.log()),
            tail("containerd", w.containerd.log())
        );
        panic!(
            "{} of {} checks failed:\n\n{}\n\n{tail}",
            self.failures.len(),
            self.total,
            self.failures.join("\n\n")
        );
    }
}
