//! What one client can make the proxy hold (docs/proxy.md#limits): connections waiting for
//! their HTTP/2 preface, connections relayed (each with its own to containerd), and the
//! memory a burst of them leaves behind.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::{oneshot, Semaphore};

use crate::net::h2;

/// Admitted calls decided at once, across connections. A connection whose call is complete
/// waits for a turn before it reads on (tokio's semaphore is fair, so each waiting
/// connection gets one turn per round: a client sending a thousand calls on one
/// connection does not queue them all ahead of another client's one call), and the call
/// that waits holds only its request body (docs/proxy.md#limits). A decision holds the
/// decoded spec, the Pod, the review and the policies' working memory (about 100 KiB for a
/// `docker run` spec with its seccomp profile), so a thousand at once would take the proxy
/// past 100 MiB. 32 is twice the evaluations that run off the workers at once
/// (`core::blocking::MAX_BLOCKING`, 16): those keep the CPU busy, and the other half
/// overlaps webhooks' I/O; 64 only had more decoded specs wait for an evaluation slot
/// (3 MiB more at the peak of 1 000 connections, no faster: RELIABILITY.md#load). A
/// turn is held only while deciding, never while waiting for a window or a peer, and
/// nothing a decision waits on (the decision log, webhooks, containerd lookups on the
/// proxy's own client) needs a turn or a relayed connection: no cycle.
pub const DECIDING: usize = 32;

/// Bytes of admitted request bodies the proxy holds at once, across connections: from a
/// body's first DATA frame until containerd has it. Each connection may hold up to 64 MiB
/// (four 16 MiB messages; `relay::requests::HELD_BYTES`), which times `maxConnections` would
/// bound nothing a host has; past this, a body that does not fit is refused
/// `ResourceExhausted` (never waited for: bodies still arriving elsewhere may hold it as
/// long as their clients like). A `docker run` spec is about 20 KiB: ten thousand fit.
pub const BODIES_HELD: usize = 256 << 20;

/// The proxy's bounds, from `proxy.maxConnections` (`max`).
pub(super) struct Limits {
    pub max: usize,
    /// One sender per connection still in its preface, oldest first; a closed one is a
    /// connection that has moved on.
    waiting: Mutex<VecDeque<oneshot::Sender<()>>>,
    pub relayed: Arc<Semaphore>,
    /// Connections beyond `relayed` whose calls are being answered `ResourceExhausted`.
    pub answering: Arc<Semaphore>,
    /// Admitted calls being decided at once, across connections ([`DECIDING`]).
    pub deciding: Arc<Semaphore>,
    /// Bytes of admitted bodies held, across connections ([`BODIES_HELD`]).
    pub bodies: Arc<Semaphore>,
    /// Relayed connections ended so far (see [`Limits::trim_memory`]).
    ended: AtomicU64,
}

impl Limits {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            waiting: Mutex::new(VecDeque::new()),
            relayed: Arc::new(Semaphore::new(max)),
            answering: Arc::new(Semaphore::new(max)),
            deciding: Arc::new(Semaphore::new(DECIDING)),
            bodies: Arc::new(Semaphore::new(BODIES_HELD)),
            ended: AtomicU64::new(0),
        }
    }

    /// Descriptors the proxy may hold at once: a client connection in each of the `max`
    /// preface slots, relayed (with containerd's) and answering, plus its own.
    pub fn descriptors(&self) -> u64 {
        4 * self.max as u64 + 64
    }

    /// A new connection takes a preface slot; with all `max` taken, the one waiting
    /// longest is evicted (its receiver fires). Clients send the preface as they connect,
    /// so the oldest waiting is a silent one: a flood of silent connections cannot keep
    /// a speaking client out, as refusing the newest would.
    pub fn wait_for_preface(&self) -> (oneshot::Receiver<()>, bool) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.len() >= self.max {
            waiting.retain(|w| !w.is_closed());
        }
        let mut evicted = false;
        while waiting.len() >= self.max {
            if let Some(oldest) = waiting.pop_front() {
                evicted |= oldest.send(()).is_ok();
            }
        }
        let (tx, rx) = oneshot::channel();
        waiting.push_back(tx);
        (rx, evicted)
    }

    pub fn connection_ended(&self) {
        self.ended.fetch_add(1, Ordering::Relaxed);
    }

    /// Every 5 s after connections ended, hands the memory they freed back to the system.
    /// glibc keeps freed heap pages resident (its trim threshold only looks at the top of
    /// each arena), so a burst of a thousand connections would otherwise leave the proxy
    /// at its peak RSS for good; `malloc_trim` releases free pages anywhere in the heap.
    pub async fn trim_memory(self: Arc<Self>) {
        let mut seen = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let ended = self.ended.load(Ordering::Relaxed);
            if ended != seen {
                seen = ended;
                malloc_trim();
            }
        }
    }
}

/// Tells a connection it is closed and why (GOAWAY) without waiting on it: a fresh
/// socket's buffer takes the few bytes, and a client that reads nothing only loses the
/// reason.
pub(super) fn refuse_now(stream: &UnixStream, why: &str) {
    let mut out = bytes::BytesMut::new();
    h2::write_settings(&mut out, false);
    h2::write_goaway(&mut out, 0, h2::error::ENHANCE_YOUR_CALM, why);
    let _ = stream.try_write(&out);
}

#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn malloc_trim() {
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free lists, under
    // its arena locks.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Other C libraries return freed memory on their own (musl) or have no such call.
#[cfg(not(target_env = "gnu"))]
fn malloc_trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_waiting_connection_is_evicted_when_the_slots_are_full() {
        let limits = Limits::new(2);
        let (mut first, evicted) = limits.wait_for_preface();
        assert!(!evicted);
        let (second, _) = limits.wait_for_preface();
        let (_third, evicted) = limits.wait_for_preface();
        assert!(evicted);
        assert!(first.try_recv().is_ok());
        // A connection that moved on frees its slot: no one is evicted for the next.
        drop(second);
        let (_fourth, evicted) = limits.wait_for_preface();
        assert!(!evicted);
    }
}
