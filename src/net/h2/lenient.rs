//! A client's HTTP/2 byte stream made acceptable to hyper's server (the `h2` crate) for
//! what grpc-go would accept: `:authority` values that are not a URI authority.
//!
//! Node clients dialling a unix socket send the socket path (grpc-go), the percent-encoded
//! path (gRPC C-core), or an empty value as `:authority`; `h2` resets such streams with
//! PROTOCOL_ERROR. `Lenient` sits between the socket and hyper and rewrites each request
//! header block: an `:authority` that does not parse as one is dropped (an absent
//! `:authority` is valid HTTP/2, and nothing served on a unix socket routes by it); every
//! other field and every other frame passes as it came. Blocks are re-encoded without
//! indexing ([`super::hpack`]), so hyper's decoder never needs the client's table.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{flag, hpack, kind};

pub struct Lenient<S> {
    inner: S,
    /// Read from the client, not yet looked at.
    raw: BytesMut,
    /// Looked at, for hyper to read.
    ready: BytesMut,
    preface_passed: bool,
    /// The client does not speak HTTP/2 with prior knowledge: bytes pass as they are.
    passthrough: bool,
    decoder: hpack::Decoder,
    /// A header block being collected: stream, END_STREAM, fragment.
    block: Option<(u32, bool, Vec<u8>)>,
}

impl<S> Lenient<S> {
    /// Wraps a client's stream: HTTP/2 with prior knowledge is rewritten, anything else
    /// (HTTP/1.1) passes unchanged.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            raw: BytesMut::with_capacity(16 << 10),
            ready: BytesMut::new(),
            preface_passed: false,
            passthrough: false,
            decoder: hpack::Decoder::default(),
            block: None,
        }
    }

    /// Moves every complete frame of `raw` to `ready`, header blocks rewritten.
    fn process(&mut self) -> io::Result<()> {
        if self.passthrough {
            self.ready.unsplit(self.raw.split());
            return Ok(());
        }
        if !self.preface_passed {
            let n = self.raw.len().min(super::PREFACE.len());
            if self.raw[..n] != super::PREFACE[..n] {
                // Not HTTP/2 with prior knowledge (HTTP/1.1): nothing to rewrite.
                self.passthrough = true;
                self.ready.unsplit(self.raw.split());
                return Ok(());
            }
            if n < super::PREFACE.len() {
                return Ok(());
            }
            self.ready.unsplit(self.raw.split_to(super::PREFACE.len()));
            self.preface_passed = true;
        }
        while let Some((head, frame)) = super::next_frame(&mut self.raw) {
            let payload = &frame[super::HEAD..];
            match (head.kind, &mut self.block) {
                (kind::HEADERS, None) => {
                    let range = super::unpadded(&head, payload)
                        .ok_or_else(|| invalid("HEADERS padding"))?;
                    self.block = Some((
                        head.stream,
                        head.has(flag::END_STREAM),
                        payload[range].to_vec(),
                    ));
                }
                (kind::CONTINUATION, Some((stream, _, fragment))) if *stream == head.stream => {
                    fragment.extend_from_slice(payload)
                }
                // Anything else inside a header block is the server's to refuse.
                (_, Some(_)) | (kind::CONTINUATION, None) => {
                    self.block = None;
                    self.ready.extend_from_slice(&frame);
                    continue;
                }
                _ => {
                    self.ready.extend_from_slice(&frame);
                    continue;
                }
            }
            if head.has(flag::END_HEADERS) {
                let (stream, end_stream, fragment) = self.block.take().expect("set above");
                let mut block = Vec::with_capacity(fragment.len() + 32);
                self.decoder
                    .decode(&fragment, |name, value| {
                        if name == b":authority" && http::uri::Authority::try_from(value).is_err() {
                            return;
                        }
                        hpack::encode_field(&mut block, name, value);
                    })
                    .map_err(|e| invalid(&format!("header block does not decode: {e}")))?;
                super::write_headers(
                    &mut self.ready,
                    stream,
                    &block,
                    end_stream,
                    super::DEFAULT_MAX_FRAME,
                );
            }
        }
        Ok(())
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("HTTP/2 from the client: {what}"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Lenient<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut space = [0u8; 16 << 10];
            let mut chunk = ReadBuf::new(&mut space);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            let n = chunk.filled().len();
            if n == 0 {
                // End of stream; an unfinished frame is the server's to complain about.
                let rest = this.raw.split();
                buf.put_slice(&rest[..rest.len().min(buf.remaining())]);
                return Poll::Ready(Ok(()));
            }
            this.raw.extend_from_slice(chunk.filled());
            this.process()?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Lenient<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::h2;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request with `authority` (or none) to a hyper HTTP/2 server behind `Lenient`:
    /// the response's `:status` block arrives (rather than RST_STREAM).
    async fn status_for(authority: Option<&[u8]>) -> Result<(), String> {
        let (client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                    bytes::Bytes,
                >::new()))
            });
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(Lenient::new(server)), service)
                .await;
        });
        let (mut read, mut write) = tokio::io::split(client);
        let mut out = BytesMut::new();
        out.extend_from_slice(h2::PREFACE);
        h2::write_settings(&mut out, false);
        let mut block = Vec::new();
        // Indexed by a real encoder first, so the rewrite must follow its table.
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", b"/healthz"),
        ];
        fields.extend(authority.map(|a| (&b":authority"[..], a)));
        block.extend(loona_hpack::Encoder::new().encode(fields));
        h2::write_headers(&mut out, 1, &block, true, 5);
        write.write_all(&out).await.unwrap();
        let mut buf = BytesMut::new();
        loop {
            while let Some((head, _)) = h2::next_frame(&mut buf) {
                match (head.kind, head.stream) {
                    (h2::kind::HEADERS, 1) => return Ok(()),
                    (h2::kind::RST_STREAM, 1) | (h2::kind::GOAWAY, _) => {
                        return Err(format!("{head:?}"))
                    }
                    _ => {}
                }
            }
            if read.read_buf(&mut buf).await.unwrap() == 0 {
                return Err("closed".into());
            }
        }
    }

    #[tokio::test]
    async fn http1_passes_unchanged() {
        let (mut client, server) = tokio::io::duplex(1 << 12);
        let mut lenient = Lenient::new(server);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        drop(client);
        let mut seen = Vec::new();
        lenient.read_to_end(&mut seen).await.unwrap();
        assert_eq!(seen, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn authorities_h2_refuses_are_dropped_and_valid_ones_kept() {
        for authority in [
            Some(&b"/run/portcullis/serve.sock"[..]),
            Some(b"%2Frun%2Fportcullis%2Fserve.sock"),
            Some(b""),
            Some(b"localhost"),
            None,
        ] {
            let shown = authority.map(String::from_utf8_lossy);
            assert_eq!(status_for(authority).await, Ok(()), "authority {shown:?}");
        }
    }
}
