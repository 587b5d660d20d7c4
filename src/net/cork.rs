//! A write-coalescing ("corking") stream for HTTP/2 relays.
//!
//! hyper flushes a request's HEADERS frame before its body's DATA frame can be queued
//! (the body is sent once h2 grants it flow-control capacity, one scheduler turn later),
//! so a relayed unary call leaves as two writes and wakes containerd twice. This wrapper
//! defers a flush by one scheduler turn, letting the DATA frame join the HEADERS in one
//! write. The extra turn costs microseconds; a peer wake-up costs tens of them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Writes buffered up to this size before they go out regardless of flushes.
const MAX_BUFFER: usize = 256 << 10;

pub struct Cork<S> {
    inner: S,
    buffer: Vec<u8>,
    /// A flush has been put off once; the next one writes.
    deferred: bool,
}

impl<S> Cork<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            buffer: Vec::with_capacity(16 << 10),
            deferred: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> Cork<S> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buffer.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffer))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buffer.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Cork<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Cork<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.buffer.len() >= MAX_BUFFER {
            std::task::ready!(self.drain(cx))?;
        }
        self.buffer.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffer.is_empty() {
            self.deferred = false;
            return Pin::new(&mut self.inner).poll_flush(cx);
        }
        if !self.deferred {
            self.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        std::task::ready!(self.drain(cx))?;
        self.deferred = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_before_a_flush_leave_together_and_nothing_is_lost() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut cork = Cork::new(a);
        cork.write_all(b"headers").await.unwrap();
        cork.write_all(b"+data").await.unwrap();
        // Nothing leaves before a flush.
        let mut buf = [0u8; 64];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(20), b.read(&mut buf)).await;
        assert!(early.is_err(), "bytes left before the flush");
        cork.flush().await.unwrap();
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"headers+data");
        // More than the buffer bound goes out without waiting for a flush.
        let big = vec![7u8; MAX_BUFFER + 10];
        cork.write_all(&big).await.unwrap();
        cork.write_all(b"x").await.unwrap();
        cork.shutdown().await.unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), big.len() + 1);
    }
}
