//! An admitted call once its body is in: decided by the core, then its body sent to
//! containerd within containerd's windows, or the stream reset there and refused to the
//! client.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::flow::Take;
use super::{write_status, Conn};
use crate::net::h2::{self, error};
use crate::proxy::admit::Method;
use crate::proxy::grpc::Status;

/// An admitted call as the relay collects it.
pub(super) struct Call {
    pub method: Method,
    pub namespace: String,
    /// The gRPC-framed request message.
    pub body: BytesMut,
    /// The body's share of the connection's and the proxy's budgets.
    pub charge: Charge,
}

/// What one call's body holds of the two budgets for admitted bodies: its connection's
/// ([`Conn::held`]), which a connection waits for (its own decided calls give it back),
/// and the proxy's across connections ([`BODIES_HELD`]), which is never waited for (bodies
/// still arriving on other connections may hold it as long as their clients like), so a
/// body that does not fit is refused.
///
/// [`BODIES_HELD`]: crate::proxy::limits::BODIES_HELD
pub(super) struct Charge {
    pub conn: Taken,
    pub proxy: Taken,
}

impl Charge {
    pub fn new(conn: Arc<Semaphore>, proxy: Arc<Semaphore>) -> Self {
        Self {
            conn: Taken::new(conn),
            proxy: Taken::new(proxy),
        }
    }
}

/// Bytes taken from one budget, given back when dropped: sent, refused, reset or
/// abandoned alike.
pub(super) struct Taken {
    budget: Arc<Semaphore>,
    bytes: usize,
}

impl Taken {
    fn new(budget: Arc<Semaphore>) -> Self {
        Self { budget, bytes: 0 }
    }

    /// Takes `n` more bytes of the budget now, if it has them.
    pub fn try_add(&mut self, n: usize) -> bool {
        let Some(permit) = u32::try_from(n)
            .ok()
            .and_then(|n| self.budget.try_acquire_many(n).ok())
        else {
            return false;
        };
        permit.forget();
        self.bytes += n;
        true
    }

    /// Waits for `n` more bytes of the budget (`n` fits a frame, so a `u32`).
    pub async fn add(&mut self, n: usize) {
        let Ok(wanted) = u32::try_from(n) else { return };
        // The budget is never closed.
        if let Ok(permit) = self.budget.acquire_many(wanted).await {
            permit.forget();
            self.bytes += n;
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.budget.add_permits(self.bytes);
    }
}

/// Decides `call` in `turn` (one of [`limits::DECIDING`], taken by the client pump before it
/// read on), then sends its body to containerd or refuses it.
///
/// [`limits::DECIDING`]: crate::proxy::limits::DECIDING
pub(super) async fn run(conn: Arc<Conn>, stream: u32, call: Call, turn: OwnedSemaphorePermit) {
    // Boxed, so a call waiting for containerd's window after its decision holds its body
    // and not the decision's (large) state.
    let decided = Box::pin(conn.proxy.admit_message(
        call.method,
        &conn.caller,
        &call.namespace,
        call.body.freeze(),
    ))
    .await;
    drop(turn);
    let _charge = call.charge;
    let sent = match decided {
        Ok(body) => send(&conn, stream, body).await,
        Err(status) => refuse(&conn, stream, &status).await,
    };
    if let Err(e) = sent {
        tracing::debug!(stream, error = %e, "admitted call not delivered");
    }
}

async fn send(conn: &Conn, stream: u32, mut body: Bytes) -> std::io::Result<()> {
    loop {
        let want = body.len();
        let take = conn
            .when(|f| match f.take(stream, want) {
                Take::Wait => None,
                granted_or_ended => Some(granted_or_ended),
            })
            .await;
        let Take::Granted(n) = take else {
            // Reset by the client, or answered by containerd already.
            conn.flow().release(stream);
            return Ok(());
        };
        let chunk = body.split_to(n);
        let last = body.is_empty();
        let mut out = BytesMut::with_capacity(h2::HEAD + n);
        // One frame: `n` is within containerd's SETTINGS_MAX_FRAME_SIZE (`Flow::take`).
        h2::write_data(&mut out, stream, &chunk, last, n.max(1));
        let written = conn.to_upstream(&out).await;
        if last || written.is_err() {
            // Released only once the stream has ended at containerd: until then the
            // client's own DATA on it is swallowed, never read there as the message.
            conn.flow().release(stream);
            return written;
        }
    }
}

async fn refuse(conn: &Conn, stream: u32, status: &Status) -> std::io::Result<()> {
    // Answered here: containerd going away now owes the client nothing more on it.
    conn.closed(stream);
    // Reset at containerd before the stream is released (see `send`).
    let mut up = BytesMut::new();
    h2::write_rst_stream(&mut up, stream, error::CANCEL);
    let reset = conn.to_upstream(&up).await;
    if !conn.flow().release(stream) {
        // The client reset the stream, or containerd ended it (a deadline): no one to tell.
        return reset;
    }
    reset?;
    let mut down = BytesMut::new();
    write_status(&mut down, stream, status);
    conn.to_client(down).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_charge_takes_from_the_budget_and_gives_it_back_when_dropped() {
        let budget = Arc::new(Semaphore::new(100));
        let mut first = Taken::new(budget.clone());
        assert!(first.try_add(60));
        let mut second = Taken::new(budget.clone());
        assert!(!second.try_add(50), "only 40 left");
        assert!(second.try_add(40));
        assert_eq!(budget.available_permits(), 0);
        let waiting = tokio::spawn(async move {
            let mut third = Taken::new(budget.clone());
            third.add(30).await;
            (third, budget)
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits while the budget is spent");
        drop(first);
        let (third, budget) = waiting.await.unwrap();
        assert_eq!(budget.available_permits(), 30);
        drop((second, third));
        assert_eq!(budget.available_permits(), 100);
    }

    #[test]
    fn a_call_gives_back_both_budgets() {
        let (conn, proxy) = (Arc::new(Semaphore::new(10)), Arc::new(Semaphore::new(20)));
        let mut charge = Charge::new(conn.clone(), proxy.clone());
        assert!(charge.conn.try_add(8) && charge.proxy.try_add(8));
        assert_eq!(
            (conn.available_permits(), proxy.available_permits()),
            (2, 12)
        );
        drop(charge);
        assert_eq!(
            (conn.available_permits(), proxy.available_permits()),
            (10, 20)
        );
    }
}
