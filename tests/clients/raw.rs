//! A raw HTTP/2 client (`raw/h2.rs`: hand-built frames, no hyper or h2, which refuse the
//! very headers tested here) as a differential test: the same frames go to containerd's
//! socket and to the proxy's, and must get the same outcome. containerd 1.6 is grpc-go
//! (golang.org/x/net/http2's framer), so what it accepts the proxy must accept.
//!
//! Each test runs every case, prints a `case | containerd | proxy` table (`--nocapture`)
//! and fails once listing every case that failed, with the frames exchanged.

#[path = "raw/frame.rs"]
mod frame;
#[path = "raw/grpc.rs"]
mod grpc;
#[path = "raw/h2.rs"]
mod h2;
#[path = "raw/hpack.rs"]
mod hpack;

use std::time::{Duration, Instant};

use crate::common::World;
use frame::Shape;
use grpc::{call, grpc_message, once, Checks, Run, CRI_VERSION, VERSION};
use h2::{Conn, IO_TIMEOUT};
use hpack::Hpack;

/// A proxy with no webhook and no policy: it only relays.
const CONFIG: &str = "proxy: {}\n";

/// Every byte but RFC 3986's unreserved ones as `%XX`, as grpc C-core (>= 1.57) writes a
/// unix socket path into `:authority`.
fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn every_authority_containerd_accepts_passes_the_proxy() {
    let w = World::with_cri(CONFIG);
    // The same frames both ways: the authority a client of the proxy would send.
    let path = w.proxy.socket.to_str().unwrap().to_owned();
    let authorities = [
        ("absent", None),
        ("empty", Some(String::new())),
        ("`localhost`", Some("localhost".to_owned())),
        ("the socket path (grpc-go)", Some(path.clone())),
        (
            "the percent-encoded socket path (grpc C-core >= 1.57)",
            Some(percent_encoded(&path)),
        ),
        ("`unix:PATH`", Some(format!("unix:{path}"))),
        ("`unix://PATH`", Some(format!("unix://{path}"))),
    ];
    let mut checks = Checks::new();
    for (what, authority) in &authorities {
        for method in [VERSION, CRI_VERSION] {
            let req = call(method, authority.as_deref());
            checks.succeeds(&w, &format!(":authority {what}, {method}"), |s| {
                once(s, &req)
            });
        }
    }
    checks.finish(&w);
}

#[test]
fn header_block_and_frame_shapes_pass_the_proxy() {
    let w = World::with_cri(CONFIG);
    let mut checks = Checks::new();
    let shapes = [
        (
            "HEADERS + 4 CONTINUATION",
            Shape {
                continuations: 4,
                ..Shape::default()
            },
        ),
        (
            "PADDED HEADERS (20 bytes)",
            Shape {
                header_padding: Some(20),
                ..Shape::default()
            },
        ),
        (
            "PADDED HEADERS (0 bytes)",
            Shape {
                header_padding: Some(0),
                ..Shape::default()
            },
        ),
        (
            "HEADERS with PRIORITY",
            Shape {
                priority: true,
                ..Shape::default()
            },
        ),
        (
            "PADDED + PRIORITY HEADERS + 2 CONTINUATION",
            Shape {
                header_padding: Some(7),
                priority: true,
                continuations: 2,
                ..Shape::default()
            },
        ),
        (
            "a PRIORITY frame before HEADERS",
            Shape {
                priority_frame: true,
                ..Shape::default()
            },
        ),
        (
            "PADDED DATA (16 bytes)",
            Shape {
                data_padding: Some(16),
                ..Shape::default()
            },
        ),
        (
            "the body in 3 DATA, END_STREAM on an empty 4th",
            Shape {
                data_frames: 3,
                empty_end: true,
                ..Shape::default()
            },
        ),
        (
            "one byte a write, CONTINUATION and PADDED DATA",
            Shape {
                continuations: 2,
                data_padding: Some(3),
                dribble: true,
                ..Shape::default()
            },
        ),
    ];
    for (what, shape) in &shapes {
        for method in [VERSION, CRI_VERSION] {
            let req = call(method, Some("localhost")).shaped(shape.clone());
            checks.succeeds(&w, &format!("{what}, {method}"), |s| once(s, &req));
        }
    }

    // The encoder's dynamic table carried across sequential streams: the second request
    // is six one-byte indices; then the table is emptied and regrown (size updates at the
    // start of a block) and filled again.
    checks.succeeds(&w, "HPACK dynamic table across 4 streams", |s| {
        let mut c = match Conn::connect(s, Hpack::dynamic()) {
            Ok(c) => c,
            Err(e) => return Run::failed(e),
        };
        let mut outcomes = Vec::new();
        for (n, method) in [VERSION, VERSION, CRI_VERSION, VERSION].iter().enumerate() {
            if n == 3 {
                if let Hpack::Dynamic(t) = &mut c.hpack {
                    t.resize(0);
                    t.resize(4096);
                }
            }
            let id = c.send(&call(method, Some("localhost")));
            match n {
                // Six fields, newest entry 62: `te` (sent last) is 62, `:method` 67.
                1 => assert_eq!(c.last_block, [0xc3, 0xc2, 0xc1, 0xc0, 0xbf, 0xbe]),
                3 => assert_eq!(c.last_block[..4], [0x20, 0x3f, 0xe1, 0x1f]),
                _ => {}
            }
            outcomes.extend(c.wait(&[id], IO_TIMEOUT));
        }
        Run::new(outcomes, c.trace())
    });

    // Many streams open at once on one connection (header blocks indexed after the
    // first), all answered.
    checks.succeeds(&w, "50 concurrent streams", |s| {
        let mut c = match Conn::connect(s, Hpack::dynamic()) {
            Ok(c) => c,
            Err(e) => return Run::failed(e),
        };
        let ids: Vec<u32> = (0..50)
            .map(|i| c.send(&call([VERSION, CRI_VERSION][i % 2], Some("localhost"))))
            .collect();
        Run::new(c.wait(&ids, Duration::from_secs(10)), c.trace())
    });

    // PING on an idle connection, then with a stream open.
    let [direct, proxy] = checks.both(&w, "PING, idle and with a stream open", |s| {
        let mut c = match Conn::connect(s, Hpack::fixed()) {
            Ok(c) => c,
            Err(e) => return Run::failed(e),
        };
        let ack = |ok| if ok { "PING ACK" } else { "no PING ACK" }.to_owned();
        let idle = ack(c.ping(*b"portcull"));
        let id = c.send(&call(VERSION, Some("localhost")));
        let busy = ack(c.ping(*b"is-busy!"));
        let outcomes = c.wait(&[id], IO_TIMEOUT);
        let mut run = Run::new(outcomes, c.trace());
        run.classes.splice(0..0, [idle, busy]);
        run
    });
    checks.check(
        matches!(&direct.classes[..], [a, b, ok] if a == "PING ACK" && b == a && ok.starts_with("OK")),
        || {
            format!(
                "PING: containerd answered {}\n{}",
                direct.summary(),
                direct.trace
            )
        },
    );
    checks.same_classes("PING", &direct, &proxy);
    checks.finish(&w);
}

// What containerd 1.6.20 (grpc-go over golang.org/x/net/http2) does with each oddity,
// observed with this client (`:authority: localhost`, the Version call). The framer
// rejects malformed header blocks per stream; grpc-go itself checks little else.
//
// | request                                       | containerd 1.6.20                     |
// |-----------------------------------------------|---------------------------------------|
// | any `:authority` above, or none               | OK                                    |
// | uppercase header name (`User-Agent`)          | RST_STREAM PROTOCOL_ERROR (framer)    |
// | `connection: keep-alive`                      | OK (not refused)                      |
// | `te: gzip`; no `te` at all                    | OK (`te` not checked)                 |
// | a second `:path`                              | RST_STREAM PROTOCOL_ERROR (framer)    |
// | a pseudo-header after a regular header        | RST_STREAM PROTOCOL_ERROR (framer)    |
// | an unknown pseudo-header `:foo`               | RST_STREAM PROTOCOL_ERROR (framer)    |
// | no `:scheme`; `:method: GET`                  | OK (not checked)                      |
// | `content-type: text/plain`                    | RST_STREAM PROTOCOL_ERROR (not gRPC)  |
// | `content-type: application/grpc+proto`        | OK                                    |
// | unknown method / unknown service              | grpc-status 12 UNIMPLEMENTED          |
// | `:path` without the leading `/`               | OK: routed as if it had one           |
//
// No oddity here gets a GOAWAY or a closed connection from containerd.
#[test]
fn oddities_get_containerds_answer_through_the_proxy() {
    let w = World::with_cri(CONFIG);
    let mut checks = Checks::new();
    let base = || call(VERSION, Some("localhost"));
    let same = [
        (
            "uppercase header name `User-Agent`",
            base().with("User-Agent", "raw"),
        ),
        (
            "`connection: keep-alive`",
            base().with("connection", "keep-alive"),
        ),
        ("`te: gzip`", base().set("te", "gzip")),
        ("no `te`", base().without("te")),
        (
            "a pseudo-header after a regular one (`:authority` last)",
            base().without(":authority").with(":authority", "localhost"),
        ),
        (
            "an unknown pseudo-header `:foo`",
            base().insert(3, ":foo", "bar"),
        ),
        ("no `:scheme`", base().without(":scheme")),
        ("`:method: GET`", base().set(":method", "GET")),
        (
            "`content-type: text/plain`",
            base().set("content-type", "text/plain"),
        ),
        (
            "`content-type: application/grpc+proto`",
            base().set("content-type", "application/grpc+proto"),
        ),
        (
            "unknown method",
            call(
                "/containerd.services.version.v1.Version/Nope",
                Some("localhost"),
            ),
        ),
        (
            "unknown service",
            call("/portcullis.test.v1.Nope/Nope", Some("localhost")),
        ),
    ];
    for (what, req) in &same {
        let [direct, proxy] = checks.both(&w, what, |s| once(s, req));
        checks.same_classes(what, &direct, &proxy);
        if what.starts_with("unknown") {
            checks.check(direct.classes == ["grpc-status 12"], || {
                format!("{what}: containerd answered {}", direct.summary())
            });
        }
    }

    // grpc-go strips one leading `/` if there is one and routes the rest: containerd
    // answers a `:path` with no slash. The proxy must not: admission keys on the
    // canonical path, so a non-canonical one is refused, naming `:path`. Two `:path`s
    // containerd resets; the proxy refuses them the same way rather than guess which one
    // containerd's framer would have read.
    let refused = [
        (
            "`:path` without the leading slash",
            call(&VERSION[1..], Some("localhost")),
        ),
        ("a second `:path`", base().insert(3, ":path", CRI_VERSION)),
    ];
    for (what, req) in &refused {
        let [_, proxy] = checks.both(&w, what, |s| once(s, req));
        let message = proxy.outcomes.first().map(grpc_message).unwrap_or_default();
        checks.check(
            proxy.classes == ["grpc-status 3"] && message.contains(":path"),
            || {
                format!(
                    "{what}: the proxy answered {} {message:?}, not grpc-status 3 (INVALID_ARGUMENT) naming :path\n{}",
                    proxy.summary(),
                    proxy.trace
                )
            },
        );
    }
    checks.finish(&w);
}

#[test]
fn a_new_connection_after_containerd_restarts_gets_through() {
    let mut w = World::with_cri(CONFIG);
    let req = call(VERSION, Some("localhost"));
    let before = once(&w.proxy.socket, &req);
    assert!(
        before.all_ok(),
        "before the restart: {}\n{}\n{}",
        before.summary(),
        before.trace,
        w.logs()
    );
    w.containerd.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let run = once(&w.proxy.socket, &req);
        if run.all_ok() || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        after.all_ok(),
        "through the proxy 10 s after containerd restarted: {}\n{}\n{}",
        after.summary(),
        after.trace,
        w.logs()
    );
    assert_eq!(after.classes, before.classes, "the same containerd answers");
}

/// A `Containers/Create` request message for container `id` (busybox, runc v2, a minimal
/// spec), gRPC-framed.
fn framed_create(id: &str) -> Vec<u8> {
    use containerd_client::services::v1::{container::Runtime, Container, CreateContainerRequest};
    use prost::Message;
    let spec = br#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#;
    let message = CreateContainerRequest {
        container: Some(Container {
            id: id.to_owned(),
            image: crate::common::IMAGE.to_owned(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".to_owned(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_owned(),
                value: spec.to_vec(),
            }),
            ..Default::default()
        }),
    }
    .encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

#[test]
fn data_after_the_end_of_an_admitted_call_never_reaches_containerd() {
    // A policy that refuses every container: nothing may be created through the proxy.
    let w = World::new("images: {allowedRegistries: [registry.invalid]}\n");
    let create = |body: Vec<u8>, after_end: Option<Vec<u8>>| {
        let mut req = call(
            "/containerd.services.containers.v1.Containers/Create",
            Some("localhost"),
        )
        .with("containerd-namespace", "default");
        req.body = body;
        req.shape.after_end = after_end;
        req
    };
    let id = crate::common::unique("smuggled");
    // The admitted body is refused (a policy, or a malformed frame); the frame after
    // END_STREAM carries a Create of its own that containerd would run as the message.
    for (what, body) in [
        (
            "a refused container",
            framed_create(&crate::common::unique("refused")),
        ),
        ("a malformed message", vec![0, 0, 0]),
    ] {
        let run = once(&w.proxy.socket, &create(body, Some(framed_create(&id))));
        let containers = w.containers("default");
        assert!(
            !containers.contains(&id),
            "{what}: the DATA after END_STREAM created {id} at containerd: {}\n{}\n{}",
            run.summary(),
            run.trace,
            w.logs()
        );
        let refused = run
            .classes
            .iter()
            .all(|c| c == "grpc-status 7" || c == "grpc-status 3");
        assert!(refused, "{what}: {}\n{}", run.summary(), run.trace);
    }
}

#[test]
fn admitted_calls_the_relay_cannot_judge_are_refused_and_never_reach_containerd() {
    // No policy: every refusal here is the relay's own.
    let w = World::new(CONFIG);
    let create = |id: &str| {
        let mut req = call(
            "/containerd.services.containers.v1.Containers/Create",
            Some("localhost"),
        )
        .with("containerd-namespace", "default");
        req.body = framed_create(id);
        req
    };
    let ids: Vec<String> = (0..3).map(|_| crate::common::unique("unjudged")).collect();
    let mut oversized = create(&ids[2]);
    // One byte past containerd's 16 MiB message limit, in ordinary 16 KiB frames.
    oversized.body.resize((16 << 20) + 6, 0);
    oversized.shape.data_frames = oversized.body.len() / 16_384 + 1;
    let cases = [
        // containerd reads the first of two namespaces; which one policy saw must not be a
        // guess.
        (
            "two containerd-namespace headers",
            create(&ids[0]).with("containerd-namespace", "other"),
            "grpc-status 3",
            "more than one containerd-namespace",
        ),
        (
            "a content type that is not gRPC",
            create(&ids[1]).set("content-type", "text/plain"),
            "grpc-status 3",
            "content-type application/grpc",
        ),
        (
            "a message over 16 MiB",
            oversized,
            "grpc-status 8",
            "larger than",
        ),
    ];
    for (what, req, class, message) in cases {
        let run = once(&w.proxy.socket, &req);
        let said = run.outcomes.first().map(grpc_message).unwrap_or_default();
        assert!(
            run.classes == [class] && said.contains(message),
            "{what}: the proxy answered {} {said:?}, not {class} with {message:?}\n{}",
            run.summary(),
            run.trace
        );
    }
    let containers = w.containers("default");
    for id in &ids {
        assert!(
            !containers.contains(id),
            "{id} exists at containerd: {containers:?}"
        );
    }
    // The connection and the proxy still serve an ordinary Create afterwards.
    let ok = crate::common::unique("judged");
    let run = once(&w.proxy.socket, &create(&ok));
    assert_eq!(run.classes.len(), 1, "{}", run.trace);
    assert!(
        w.containers("default").contains(&ok),
        "{}\n{}",
        run.summary(),
        w.logs()
    );
}
