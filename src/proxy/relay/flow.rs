//! Flow control towards containerd (RFC 9113 §5.2, §6.9), for the bytes the relay sends
//! on its own.
//!
//! Passthrough DATA needs no accounting: the client sees containerd's SETTINGS and
//! WINDOW_UPDATEs unchanged and keeps within containerd's windows by itself. Two things
//! break that symmetry, both for admitted calls:
//!
//! - The relay holds the client's request body while it decides, and grants the client
//!   the window back itself (containerd never saw those bytes, so the client's view of the
//!   connection window stays equal to containerd's).
//! - It then sends the admitted body (the original or a rewritten one) from its own
//!   account: within the stream's window, which containerd grants to the relay (those
//!   WINDOW_UPDATEs are not forwarded), and within the connection window, shared with the
//!   client. containerd will grant the connection bytes back; the relay keeps that much of
//!   containerd's next connection WINDOW_UPDATEs (`debt`), so the client is never
//!   credited twice. Until then the client may believe in more window than containerd
//!   has left, so passthrough DATA is checked against `conn` and waits when it would
//!   overrun; containerd (grpc-go) grants connection window as it receives, so the wait
//!   ends.

use std::collections::HashMap;

use crate::net::h2::{self, setting};

/// One admitted stream the relay sends on.
#[derive(Debug)]
struct Held {
    window: i64,
    /// containerd or the client has ended the stream: send nothing more.
    ended: bool,
}

/// What may be sent now on an admitted stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// This many bytes (at least one).
    Granted(usize),
    /// No window now: wait for a WINDOW_UPDATE.
    Wait,
    /// The stream is gone.
    Ended,
}

#[derive(Debug)]
pub struct Flow {
    /// containerd's connection window, as the relay counts it.
    conn: i64,
    /// Connection bytes the relay sent itself and containerd has not yet granted back.
    debt: u64,
    initial: i64,
    max_frame: usize,
    table_size: usize,
    held: HashMap<u32, Held>,
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            conn: h2::DEFAULT_WINDOW,
            debt: 0,
            initial: h2::DEFAULT_WINDOW,
            max_frame: h2::DEFAULT_MAX_FRAME,
            table_size: h2::DEFAULT_TABLE_SIZE,
            held: HashMap::new(),
        }
    }
}

impl Flow {
    /// containerd's SETTINGS (not an ACK). A new initial window changes every open
    /// stream's window by the difference (§6.9.2).
    pub fn on_settings(&mut self, payload: &[u8]) {
        let Some(settings) = h2::settings(payload) else {
            return;
        };
        for (id, value) in settings {
            match id {
                setting::INITIAL_WINDOW_SIZE => {
                    let delta = value as i64 - self.initial;
                    self.initial = value as i64;
                    for held in self.held.values_mut() {
                        held.window += delta;
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    self.max_frame = (value as usize).clamp(h2::DEFAULT_MAX_FRAME, h2::MAX_FRAME)
                }
                setting::HEADER_TABLE_SIZE => self.table_size = value as usize,
                _ => {}
            }
        }
    }

    /// A WINDOW_UPDATE from containerd: the increment to pass on to the client, if any.
    pub fn on_window_update(&mut self, stream: u32, increment: u32) -> Option<u32> {
        if stream == 0 {
            self.conn += increment as i64;
            let kept = self.debt.min(increment as u64);
            self.debt -= kept;
            let rest = increment - kept as u32;
            return (rest > 0).then_some(rest);
        }
        match self.held.get_mut(&stream) {
            Some(held) => {
                held.window += increment as i64;
                None
            }
            None => Some(increment),
        }
    }

    /// Counts `len` bytes of the client's DATA against the connection window; `false` if
    /// they do not fit yet.
    pub fn take_passthrough(&mut self, len: usize) -> bool {
        if len as i64 > self.conn {
            return false;
        }
        self.conn -= len as i64;
        true
    }

    /// Starts sending on `stream`, at containerd's initial window.
    pub fn hold(&mut self, stream: u32) {
        self.held.insert(
            stream,
            Held {
                window: self.initial,
                ended: false,
            },
        );
    }

    pub fn is_held(&self, stream: u32) -> bool {
        self.held.contains_key(&stream)
    }

    /// The stream ended (reset, or containerd answered it): whatever the relay still
    /// holds for it is dropped.
    pub fn end(&mut self, stream: u32) {
        if let Some(held) = self.held.get_mut(&stream) {
            held.ended = true;
        }
    }

    /// Done sending on `stream`; `false` if it had ended before.
    pub fn release(&mut self, stream: u32) -> bool {
        self.held.remove(&stream).is_some_and(|h| !h.ended)
    }

    /// Up to `want` bytes (and one frame) the relay may send on `stream` now; counted as
    /// sent.
    pub fn take(&mut self, stream: u32, want: usize) -> Take {
        let max_frame = self.max_frame;
        let Some(held) = self.held.get_mut(&stream) else {
            return Take::Ended;
        };
        if held.ended {
            return Take::Ended;
        }
        let n = (want as i64)
            .min(held.window)
            .min(self.conn)
            .min(max_frame as i64);
        if n <= 0 && want > 0 {
            return Take::Wait;
        }
        let n = n.max(0);
        held.window -= n;
        self.conn -= n;
        self.debt += n as u64;
        Take::Granted(n as usize)
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    pub fn table_size(&self) -> usize {
        self.table_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect()
    }

    #[test]
    fn connection_grants_repay_the_relays_own_bytes_before_reaching_the_client() {
        let mut f = Flow::default();
        f.hold(1);
        assert_eq!(f.take(1, 1000), Take::Granted(1000));
        assert_eq!(f.conn, 65_535 - 1000);
        // containerd grants 600, then 600: the first 1000 were the relay's.
        assert_eq!(f.on_window_update(0, 600), None);
        assert_eq!(f.on_window_update(0, 600), Some(200));
        assert_eq!(f.on_window_update(0, 5), Some(5));
        assert_eq!(f.conn, 65_535 + 205);
    }

    #[test]
    fn passthrough_waits_when_the_relays_bytes_used_the_window() {
        let mut f = Flow::default();
        f.hold(1);
        assert_eq!(f.take(1, 65_535), Take::Granted(16_384));
        assert!(!f.take_passthrough(65_535));
        assert!(f.take_passthrough(65_535 - 16_384));
        assert!(!f.take_passthrough(1));
    }

    #[test]
    fn admitted_streams_follow_their_own_window_and_settings() {
        let mut f = Flow::default();
        f.on_window_update(0, 1 << 20);
        f.on_settings(&settings(&[(setting::MAX_FRAME_SIZE, 1 << 20)]));
        f.hold(3);
        assert_eq!(f.take(3, 100_000), Take::Granted(65_535));
        assert_eq!(f.take(3, 10), Take::Wait);
        // Stream grants go to the relay, not the client.
        assert_eq!(f.on_window_update(3, 10), None);
        assert_eq!(f.on_window_update(5, 10), Some(10));
        assert_eq!(f.take(3, 100), Take::Granted(10));
        // A larger initial window opens the held stream by the difference.
        f.on_settings(&settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535 + 50)]));
        assert_eq!(f.take(3, 100), Take::Granted(50));
        f.end(3);
        assert_eq!(f.take(3, 1), Take::Ended);
        assert!(!f.release(3));
        assert_eq!(f.take(3, 1), Take::Ended);
    }

    #[test]
    fn an_empty_final_frame_is_always_granted() {
        let mut f = Flow::default();
        f.hold(1);
        f.take(1, 65_535);
        assert_eq!(f.take(1, 0), Take::Granted(0));
    }
}
