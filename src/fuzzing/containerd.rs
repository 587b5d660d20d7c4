//! The fuzz targets' containerd: a gRPC server on a unix socket that answers the calls the
//! proxy makes of its own (`Containers/Get`, `Images/Get`, `Content/Info`,
//! `Snapshots/Stat` and `Mounts`) with what the input says, so that the admitted calls
//! which need a lookup are fuzzed past it: the answer's HTTP/2 and gRPC framing (hyper's
//! client, `grpc::unframe`), its protobuf decoding, and the conversion and decision of the
//! container, image or mounts it describes. containerd's answers are input too: a
//! container record is whatever a caller stored with `Containers/Create` or `Update`.
//!
//! A server of our own rather than a real containerd: the answers must be the fuzzer's,
//! thousands a second, and the code under test is the client side, which is the real one.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixListener;

use crate::proxy::grpc;

/// The calls the proxy makes of its own, in the order an input gives their answers. Keyed
/// by method, not by the order of the calls: some are made concurrently
/// (`CreateContainer` asks for the image and the sandbox at once), and an input must be
/// answered the same way every time it is replayed.
pub const LOOKUPS: &[&str] = &[
    "/containerd.services.containers.v1.Containers/Get",
    "/containerd.services.images.v1.Images/Get",
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.snapshots.v1.Snapshots/Stat",
    "/containerd.services.snapshots.v1.Snapshots/Mounts",
    "/runtime.v1.ImageService/ImageStatus",
    "/runtime.v1.RuntimeService/ListContainers",
    "/runtime.v1.RuntimeService/PodSandboxStatus",
    "/runtime.v1.RuntimeService/ContainerStatus",
];

/// The answer to each of [`LOOKUPS`] (missing ones: an empty message).
#[derive(Default)]
struct Script {
    answers: Vec<Bytes>,
}

/// The server and what it will answer.
pub(super) struct Stub {
    script: Arc<Mutex<Script>>,
    /// Held by the entry point for one input: the targets may be replayed from several
    /// threads (tests/fuzz_corpus.rs), and each input's answers are its own.
    turn: Mutex<()>,
}

impl Stub {
    /// Listens on `socket` and serves on `runtime` (the fixture's: it runs while an entry
    /// point blocks on it, which is when the proxy calls).
    pub fn start(runtime: &tokio::runtime::Runtime, socket: &Path) -> Self {
        let _ = std::fs::remove_file(socket);
        let listener = runtime
            .block_on(async { UnixListener::bind(socket) })
            .expect("the fuzz containerd's socket");
        let script = Arc::new(Mutex::new(Script::default()));
        runtime.spawn(serve(listener, script.clone()));
        Self {
            script,
            turn: Mutex::new(()),
        }
    }

    /// Sets this input's answers and holds the stub for it until the guard is dropped.
    pub fn script(&self, answers: Vec<Bytes>) -> MutexGuard<'_, ()> {
        let turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        lock(&self.script).answers = answers;
        turn
    }
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(listener: UnixListener, script: Arc<Mutex<Script>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let script = script.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let answer = LOOKUPS
                    .iter()
                    .position(|p| *p == request.uri().path())
                    .and_then(|i| lock(&script).answers.get(i).cloned())
                    .unwrap_or_default();
                async move { Ok::<_, Infallible>(respond(&answer)) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One answer: its first byte says how (0: a gRPC-framed message, 1: the body as it is,
/// 2: a failure whose code is the next byte), the rest is the message, body or text.
fn respond(answer: &[u8]) -> http::Response<Full<Bytes>> {
    let (how, rest) = answer.split_first().unwrap_or((&0, &[]));
    let response = http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/grpc");
    let built = match how % 3 {
        0 => response.body(Full::new(grpc::frame(rest))),
        1 => response.body(Full::new(Bytes::copy_from_slice(rest))),
        _ => {
            let (code, text) = rest.split_first().unwrap_or((&2, &[]));
            let text: String = String::from_utf8_lossy(text)
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .collect();
            response
                .header("grpc-status", code.to_string())
                .header("grpc-message", text)
                .body(Full::new(Bytes::new()))
        }
    };
    built.unwrap_or_default()
}

/// Splits a `*_lookups` input after its method byte: a count, that many answers (each a
/// big-endian u16 length and its bytes: the answers to [`LOOKUPS`] in order), then the
/// request message.
pub(super) fn answers_and_message(data: &[u8]) -> Option<(Vec<Bytes>, &[u8])> {
    let (&count, mut rest) = data.split_first()?;
    let mut answers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return None;
        }
        let (answer, tail) = tail.split_at(len);
        answers.push(Bytes::copy_from_slice(answer));
        rest = tail;
    }
    Some((answers, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_split_into_answers_and_the_request() {
        let (answers, message) = answers_and_message(&[2, 0, 1, 9, 0, 2, 7, 8, 42, 43]).unwrap();
        assert_eq!(
            answers,
            vec![Bytes::from_static(&[9]), Bytes::from_static(&[7, 8])]
        );
        assert_eq!(message, &[42, 43]);
        assert!(answers_and_message(&[1, 0, 5, 1]).is_none(), "short answer");
        assert!(answers_and_message(&[]).is_none());
    }

    #[test]
    fn every_answer_is_a_response() {
        for answer in [
            &b""[..],
            &[0, 1, 2],
            &[1, 0, 0, 0, 0, 9],
            &[2, 5, 0xff, b'x', b'\n'],
        ] {
            let response = respond(answer);
            assert_eq!(response.status(), 200);
        }
        assert_eq!(respond(&[2, 5, b'n', b'o']).headers()["grpc-message"], "no");
    }
}
