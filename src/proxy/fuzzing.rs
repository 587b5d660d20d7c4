//! The proxy's side of `crate::fuzzing`: the admitted path and the frame decoding reach
//! items private to the proxy, so their fuzz entry points live here.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::admit::Method;
use super::route::{route, Route};
use super::{grpc, Caller, Proxy};
use crate::config::CriMode;
use crate::net::h2::{self, flag, hpack, kind, setting};
use crate::review::UserInfo;

/// One admitted call to `/service/method` in `namespace`, decided as the relay hands it to
/// admission once its body is complete.
pub async fn admit(proxy: &Proxy, service: &str, method: &str, namespace: &str, framed: Bytes) {
    let path = format!("/{service}/{method}");
    let Route::Admit(method) = route(&[path.into_bytes()], CriMode::Admit) else {
        return;
    };
    // root, as the kubelet and ctr run: the CRI door refuses other uids before reading.
    let caller = Caller {
        user: UserInfo {
            username: "root".into(),
            uid: "0".into(),
            groups: vec!["root".into()],
            ..UserInfo::default()
        },
    };
    let _ = proxy
        .admit_message(method, &caller, namespace, framed)
        .await;
}

/// A client's bytes after the preface, read frame by frame with the decoders the relay's
/// request pump uses: frame heads and padding, SETTINGS (the HPACK table size), header
/// blocks across CONTINUATION frames through the HPACK decoder, routing by `:path`, and
/// the gRPC framing of admitted bodies.
pub fn frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut decoder = hpack::Decoder::default();
    let mut block: Option<(u32, Vec<u8>)> = None;
    let mut held: HashMap<u32, (Method, BytesMut)> = HashMap::new();
    while let Some((head, frame)) = h2::next_frame(&mut buf) {
        let payload = &frame[h2::HEAD..];
        let Some(range) = h2::unpadded(&head, payload) else {
            return;
        };
        let content = &payload[range];
        match head.kind {
            kind::SETTINGS => {
                let Some(pairs) = h2::settings(payload) else {
                    return;
                };
                for (id, value) in pairs {
                    if id == setting::HEADER_TABLE_SIZE {
                        decoder.allow_table_size(value as usize);
                    }
                }
            }
            kind::WINDOW_UPDATE => {
                let _ = h2::window_increment(payload);
            }
            kind::HEADERS | kind::CONTINUATION => {
                let (stream, mut fragment) = match block.take() {
                    Some((stream, f)) if head.kind == kind::CONTINUATION => (stream, f),
                    None if head.kind == kind::HEADERS => (head.stream, Vec::new()),
                    _ => return,
                };
                if stream != head.stream {
                    return;
                }
                fragment.extend_from_slice(content);
                if fragment.len() > grpc::MAX_MESSAGE {
                    return;
                }
                if !head.has(flag::END_HEADERS) {
                    block = Some((stream, fragment));
                    continue;
                }
                let mut paths = Vec::new();
                let decoded = decoder.decode(&fragment, |name, value| {
                    if name == b":path" {
                        paths.push(value.to_vec());
                    }
                });
                if decoded.is_err() {
                    return;
                }
                if let Route::Admit(method) = route(&paths, CriMode::Admit) {
                    held.insert(stream, (method, BytesMut::new()));
                }
            }
            kind::DATA => {
                if let Some((_, body)) = held.get_mut(&head.stream) {
                    body.extend_from_slice(content);
                    if head.has(flag::END_STREAM) {
                        let body = std::mem::take(body).freeze();
                        held.remove(&head.stream);
                        let _ = grpc::unframe(body);
                    }
                }
            }
            _ => {}
        }
    }
}
