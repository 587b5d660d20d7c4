//! Resource bounds: what a client can make the proxy hold. 10 000 connections (silent, or
//! speaking HTTP/2) get a clean refusal beyond `proxy.maxConnections` while other clients
//! are served; silent ones are closed after the preface timeout; running out of
//! descriptors (EMFILE) backs off instead of spinning; a 17 MiB admitted message, a body
//! that never ends, and a frame larger than containerd allows are refused with a gRPC
//! status or GOAWAY, and nothing of them stays; bodies held across connections are
//! bounded; a client that leaves 16 MiB of answers unread is closed. See
//! docs/proxy.md#limits.

const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc"];

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::procstat::{open_fds, rss_kib};
use common::{Containerd, Proxy};
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{Container, CreateContainerRequest};
use portcullis::net::h2::{self, flag, hpack, kind, Head};
use tonic::Code;

const FLOOD: usize = 10_000;

/// A proxy in front of a private containerd, with the default limits.
fn start() -> (tempfile::TempDir, Containerd, Proxy) {
    common::check_prerequisites();
    let dir = tempfile::Builder::new()
        .prefix("portcullis-bounds-")
        .tempdir()
        .unwrap();
    let containerd = Containerd::start(dir.path());
    let proxy = Proxy::start(dir.path(), &containerd.socket, "{}\n");
    (dir, containerd, proxy)
}

/// A containerd `Version` call through `socket` on a connection of its own, given `within`.
/// A connect refused with EAGAIN (the listen backlog full while the proxy works through a
/// flood) is retried, as gRPC clients do.
fn version(socket: &Path, within: Duration) -> Result<String, tonic::Status> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(within, async {
            let channel = loop {
                match containerd_client::connect(socket).await {
                    Ok(channel) => break channel,
                    Err(e) if format!("{e:?}").contains("WouldBlock") => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => return Err(tonic::Status::unavailable(format!("connecting: {e:?}"))),
                }
            };
            let v = VersionClient::new(channel).version(()).await?;
            Ok(v.into_inner().version)
        })
        .await
        .unwrap_or_else(|_| panic!("a Version call through the proxy hung for {within:?}"))
    })
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit, which must fit the flood.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(
        hard >= FLOOD as u64 + 1_000,
        "RLIMIT_NOFILE hard limit {hard} is below the flood"
    );
}

/// `FLOOD` connections to `socket`, each having sent `hello`.
fn flood(socket: &Path, hello: &[u8]) -> Vec<UnixStream> {
    (0..FLOOD)
        .map(|_| {
            let mut s = UnixStream::connect(socket).expect("connecting to the proxy");
            if !hello.is_empty() {
                let _ = s.write_all(hello);
            }
            s
        })
        .collect()
}

/// What `s` says within `within` until it closes: (frames, whether it closed).
fn frames(s: &mut UnixStream, within: Duration) -> (Vec<(Head, Vec<u8>)>, bool) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = Vec::new();
    let closed = loop {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // Closed with our bytes unread: a unix socket's peer reads ECONNRESET.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let mut bytes = BytesMut::from(&buf[..]);
    let mut out = Vec::new();
    while let Some((head, frame)) = h2::next_frame(&mut bytes) {
        out.push((head, frame[h2::HEAD..].to_vec()));
    }
    (out, closed)
}

/// The proxy's descriptors and RSS while nothing is going on, after one call: (fds, KiB).
fn at_rest(proxy: &Proxy) -> (usize, u64) {
    let pid = proxy.pid().unwrap();
    version(&proxy.socket, Duration::from_secs(5)).expect("a call before");
    std::thread::sleep(Duration::from_millis(300));
    (open_fds(pid).unwrap(), rss_kib(pid).unwrap())
}

/// After `what`: another client is served, the descriptors are back to idle, and RSS is
/// within `slack_kib` of idle once the heap has been trimmed (every 5 s after connections
/// end).
#[track_caller]
fn assert_back_to_idle(
    proxy: &Proxy,
    (idle_fds, idle_rss): (usize, u64),
    slack_kib: u64,
    what: &str,
) {
    let pid = proxy.pid().unwrap();
    version(&proxy.socket, Duration::from_secs(5)).expect("a call after");
    let fds = wait_for_fds(pid, idle_fds, Duration::from_secs(5));
    assert_eq!(fds, idle_fds, "descriptors after {what}");
    let trimmed = Instant::now() + Duration::from_secs(7);
    let mut rss = rss_kib(pid).unwrap();
    while rss > idle_rss + slack_kib && Instant::now() < trimmed {
        std::thread::sleep(Duration::from_millis(100));
        rss = rss_kib(pid).unwrap();
    }
    println!("bounds: RSS before {what} {idle_rss} KiB, after {rss} KiB");
    assert!(
        rss <= idle_rss + slack_kib,
        "RSS after {what}: {rss} KiB, before {idle_rss} KiB"
    );
}

/// The GOAWAY among `frames`: (error code, debug text).
fn goaway(frames: &[(Head, Vec<u8>)]) -> Option<(u32, String)> {
    let (_, p) = frames.iter().find(|(h, _)| h.kind == kind::GOAWAY)?;
    let code = u32::from_be_bytes(p[4..8].try_into().unwrap());
    Some((code, String::from_utf8_lossy(&p[8..]).into_owned()))
}

fn wait_for_fds(pid: u32, at_most: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let fds = open_fds(pid).unwrap();
        if fds <= at_most || Instant::now() > deadline {
            return fds;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system) of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn ten_thousand_connections_are_refused_cleanly_beyond_the_limit_and_others_are_served() {
    raise_fd_limit();
    let (_dir, _containerd, proxy) = start();
    let pid = proxy.pid().unwrap();
    let idle = at_rest(&proxy).0;
    let limit = 1024;

    // Speaking clients: the first `limit` are relayed, the rest refused.
    let mut hello = h2::PREFACE.to_vec();
    let mut settings = BytesMut::new();
    h2::write_settings(&mut settings, false);
    hello.extend_from_slice(&settings);
    let started = Instant::now();
    let mut speaking = flood(&proxy.socket, &hello);
    println!(
        "bounds: {FLOOD} speaking connections opened in {:.2?}",
        started.elapsed()
    );
    let (last, closed) = frames(speaking.last_mut().unwrap(), Duration::from_secs(5));
    assert!(
        closed,
        "a connection beyond the limit was left open: {last:?}"
    );
    let (_, why) = goaway(&last).expect("no GOAWAY beyond the limit");
    assert!(why.contains("proxy.maxConnections"), "{why}");
    let held = open_fds(pid).unwrap();
    assert!(
        held <= idle + 4 * limit + 8,
        "the proxy holds {held} descriptors (idle {idle})"
    );
    // Refused connections in their one-second answer have gone: a new client is answered
    // ResourceExhausted naming the limit, not left hanging.
    std::thread::sleep(Duration::from_millis(1500));
    let refused = version(&proxy.socket, Duration::from_secs(5)).unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("proxy.maxConnections"),
        "{refused:?}"
    );
    drop(speaking);
    let fds = wait_for_fds(pid, idle, Duration::from_secs(10));
    assert_eq!(fds, idle, "descriptors after the speaking flood closed");
    version(&proxy.socket, Duration::from_secs(5)).expect("a call after the speaking flood");

    // Silent clients (slowloris): with the preface slots full, the connection waiting
    // longest is closed for a new one, so a client that speaks is served meanwhile; the
    // last `limit` are closed after the preface timeout.
    let started = Instant::now();
    let mut silent = flood(&proxy.socket, b"");
    println!(
        "bounds: {FLOOD} silent connections opened in {:.2?}",
        started.elapsed()
    );
    let answered = Instant::now();
    version(&proxy.socket, Duration::from_secs(5)).expect("a call during the silent flood");
    println!(
        "bounds: a Version call during the silent flood took {:.2?}",
        answered.elapsed()
    );
    let (first, closed) = frames(&mut silent[0], Duration::from_secs(5));
    assert!(closed, "{first:?}");
    let (code, why) = goaway(&first).expect("no GOAWAY for an evicted connection");
    assert!(code == 0xb && why.contains("proxy.maxConnections"), "{why}");
    let (last, closed) = frames(silent.last_mut().unwrap(), Duration::from_secs(15));
    assert!(
        closed,
        "a silent connection outlived the preface timeout: {last:?}"
    );
    assert!(
        goaway(&last).is_some_and(|(_, why)| why.contains("preface")),
        "{last:?}"
    );
    let fds = wait_for_fds(pid, idle, Duration::from_secs(5));
    assert_eq!(
        fds, idle,
        "descriptors once the silent connections timed out"
    );
    println!(
        "bounds: silent connections closed by the proxy {:.2?} after the flood",
        started.elapsed()
    );
    drop(silent);

    // EMFILE: with its descriptors capped below the limit, accepts fail and are retried
    // every 100 ms, not in a loop; the proxy stays up and serves once descriptors free.
    let capped = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={}:{}", idle + 50, idle + 50),
        ])
        .status()
        .unwrap();
    assert!(capped.success());
    let extra: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&proxy.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - before;
    println!("bounds: CPU while out of descriptors: {spent} ticks in 2 s");
    assert!(
        spent < 50,
        "the proxy spun on EMFILE: {spent} ticks of CPU in 2 s"
    );
    assert!(
        proxy.log().contains("accepting a proxy connection"),
        "{}",
        proxy.log()
    );
    drop(extra);
    let fds = wait_for_fds(pid, idle, Duration::from_secs(5));
    assert_eq!(fds, idle, "descriptors after EMFILE");
    version(&proxy.socket, Duration::from_secs(5)).expect("a call after EMFILE");
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
}

/// A `Containers/Create` whose spec is `size` bytes, through `socket`.
fn create(socket: &Path, size: usize) -> Result<(), tonic::Status> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = containerd_client::connect(socket).await.unwrap();
        let container = Container {
            id: "huge".into(),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: vec![b' '; size],
            }),
            ..Default::default()
        };
        let mut req = tonic::Request::new(CreateContainerRequest {
            container: Some(container),
        });
        req.metadata_mut()
            .insert("containerd-namespace", "default".parse().unwrap());
        let mut client = ContainersClient::new(channel);
        tokio::time::timeout(Duration::from_secs(30), client.create(req))
            .await
            .expect("a 17 MiB create hung")
            .map(|_| ())
    })
}

/// Preface, SETTINGS and the HEADERS of a `Containers/Create` on stream 1, left open.
fn open_create(socket: &Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).unwrap();
    let mut out = BytesMut::new();
    out.extend_from_slice(h2::PREFACE);
    h2::write_settings(&mut out, false);
    create_headers(&mut out, 1);
    s.write_all(&out).unwrap();
    s
}

/// The HEADERS of a `Containers/Create` on `stream`, left open.
fn create_headers(out: &mut BytesMut, stream: u32) {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (
            ":path",
            "/containerd.services.containers.v1.Containers/Create",
        ),
        (":authority", "containerd"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("containerd-namespace", "default"),
    ] {
        hpack::encode_field(&mut block, name.as_bytes(), value.as_bytes());
    }
    h2::write_headers(out, stream, &block, false, h2::DEFAULT_MAX_FRAME);
}

/// The grpc-status and message of stream 1's trailers among `frames`.
fn status_of(frames: &[(Head, Vec<u8>)]) -> Option<(String, String)> {
    let (_, block) = frames
        .iter()
        .find(|(h, _)| h.kind == kind::HEADERS && h.stream == 1 && h.has(flag::END_STREAM))?;
    let (mut code, mut message) = (String::new(), String::new());
    hpack::Decoder::default()
        .decode(block, |name, value| match name {
            b"grpc-status" => code = String::from_utf8_lossy(value).into_owned(),
            b"grpc-message" => message = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        })
        .ok()?;
    Some((code, message))
}

#[test]
fn messages_beyond_16_mib_are_refused_and_nothing_of_them_stays() {
    let (_dir, _containerd, proxy) = start();
    let idle = at_rest(&proxy);

    // A 17 MiB spec: refused by the proxy, which holds no more than 16 MiB of it.
    let refused = create(&proxy.socket, 17 << 20).unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("larger than 16777216 bytes"),
        "{refused:?}"
    );

    // A body that never ends: DATA frames past 16 MiB without END_STREAM, written while
    // the answer is read.
    let mut s = open_create(&proxy.socket);
    let mut writer = s.try_clone().unwrap();
    let blaster = std::thread::spawn(move || {
        let mut out = BytesMut::new();
        h2::write_data(
            &mut out,
            1,
            &vec![0u8; 1 << 20],
            false,
            h2::DEFAULT_MAX_FRAME,
        );
        for _ in 0..20 {
            if writer.write_all(&out).is_err() {
                break;
            }
        }
    });
    let (got, _) = frames(&mut s, Duration::from_secs(10));
    let (code, message) = status_of(&got).expect("no status for the endless body");
    assert_eq!(code, "8", "{message}");
    assert!(message.contains("larger than 16777216 bytes"), "{message}");
    blaster.join().unwrap();
    drop(s);

    // A frame head announcing 16 MiB: refused before its payload is read.
    let mut s = open_create(&proxy.socket);
    let mut out = BytesMut::new();
    Head {
        len: h2::MAX_FRAME,
        kind: kind::DATA,
        flags: 0,
        stream: 1,
    }
    .write(&mut out);
    s.write_all(&out).unwrap();
    let (got, closed) = frames(&mut s, Duration::from_secs(5));
    assert!(closed, "{got:?}");
    assert_eq!(goaway(&got).map(|(code, _)| code), Some(0x6), "{got:?}");
    drop(s);

    assert_back_to_idle(&proxy, idle, 40 << 10, "the large messages");
}

/// Thousands of admitted calls in flight on one connection, each with a 10 KiB spec and a
/// response as large (containerd echoes the container): calls wait for their turn to be
/// decided while the client keeps writing, and tonic (hyper's h2) stops reading while its
/// writes are blocked. Every call must be answered; before the relay wrote to clients from
/// a task of its own, both sides could end up blocked writing to each other for good
/// (docs/proxy.md#limits).
#[test]
fn thousands_of_calls_on_one_connection_that_writes_before_it_reads_are_all_answered() {
    const CALLS: usize = 3_000;
    let (_dir, containerd, proxy) = start();
    let fixture = format!(
        "{}/tests/fixtures/runtime-specs/docker/plain.container.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let spec = serde_json::to_vec(&record["Spec"]).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers = rt.block_on(async {
        let channel = containerd_client::connect(&proxy.socket).await.unwrap();
        let calls = (0..CALLS).map(|i| {
            let mut client = ContainersClient::new(channel.clone());
            let container = common::container(format!("many-{i}"), spec.clone());
            let mut req = tonic::Request::new(CreateContainerRequest {
                container: Some(container),
            });
            req.metadata_mut()
                .insert("containerd-namespace", "many".parse().unwrap());
            tokio::spawn(async move { client.create(req).await.map(|_| ()) })
        });
        tokio::time::timeout(
            Duration::from_secs(120),
            futures_util::future::join_all(calls),
        )
        .await
        .expect("calls on one connection hung: the relay and the client blocked each other")
    });
    for answer in answers {
        answer.unwrap().expect("a create on the crowded connection");
    }
    let listed = common::ctr(
        &containerd.socket,
        &["-n", "many", "containers", "ls", "-q"],
    );
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        CALLS
    );
    version(&proxy.socket, Duration::from_secs(5)).expect("a call after");
}

/// A client that writes and never reads: every DATA frame on a refused stream is repaid
/// with a 13-byte WINDOW_UPDATE, which the relay queues without waiting on the client
/// (`outbox`). Once 16 MiB of them lie unread, the connection is closed and what it held is
/// let go; other clients are served throughout.
#[test]
fn a_client_that_leaves_16_mib_unread_is_closed_and_others_are_served() {
    let (_dir, _containerd, proxy) = start();
    let idle = at_rest(&proxy);

    // Stream 1 is refused once its body passes 16 MiB; the one-byte frames after it are
    // each granted back.
    let mut s = open_create(&proxy.socket);
    let mut big = BytesMut::new();
    h2::write_data(
        &mut big,
        1,
        &vec![0u8; 1 << 20],
        false,
        h2::DEFAULT_MAX_FRAME,
    );
    let mut small = BytesMut::new();
    for _ in 0..100_000 {
        h2::write_data(&mut small, 1, &[0], false, h2::DEFAULT_MAX_FRAME);
    }
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    let closed = loop {
        let chunk = if sent < 17 { &big } else { &small };
        if let Err(e) = s.write_all(chunk) {
            break e;
        }
        sent += 1;
        // 16 MiB of WINDOW_UPDATEs take about 1.3 million frames: 13 batches.
        assert!(
            sent < 17 + 40,
            "the proxy still reads after {sent} batches unread"
        );
        if version(&proxy.socket, Duration::from_secs(5)).is_err() {
            panic!("another client was not served while this one piled up answers");
        }
    };
    println!(
        "bounds: the unread client was closed after {sent} batches in {:.1?}: {closed}",
        started.elapsed()
    );
    assert!(
        matches!(
            closed.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{closed}"
    );
    drop(s);
    // The queue is freed with the connection.
    assert_back_to_idle(&proxy, idle, 8 << 10, "the unread client");
}

/// Bodies still arriving on many connections are bounded across them: four connections
/// each holding four unfinished 16 MiB bodies fill the proxy's 256 MiB, and a fifth
/// connection's call is refused `ResourceExhausted` at once (not made to wait on clients
/// that may never finish); once they go, calls are judged again.
#[test]
fn admitted_bodies_are_bounded_across_connections() {
    let (_dir, _containerd, proxy) = start();
    let pid = proxy.pid().unwrap();
    let idle = at_rest(&proxy);
    let body = vec![0u8; 16 << 20];
    let fillers: Vec<UnixStream> = (0..4)
        .map(|_| {
            let mut s = UnixStream::connect(&proxy.socket).unwrap();
            let mut out = BytesMut::new();
            out.extend_from_slice(h2::PREFACE);
            h2::write_settings(&mut out, false);
            for stream in [1, 3, 5, 7] {
                create_headers(&mut out, stream);
                h2::write_data(&mut out, stream, &body, false, h2::DEFAULT_MAX_FRAME);
            }
            s.write_all(&out).unwrap();
            s
        })
        .collect();
    // Each frame is read (and its window granted) before the next: the proxy holds them.
    let held = Instant::now() + Duration::from_secs(30);
    while rss_kib(pid).unwrap() < idle.1 + (250 << 10) {
        assert!(Instant::now() < held, "the bodies were not all read");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = open_create(&proxy.socket);
    let mut out = BytesMut::new();
    h2::write_data(
        &mut out,
        1,
        &[0, 0, 0, 0, 2, 10, 0],
        true,
        h2::DEFAULT_MAX_FRAME,
    );
    s.write_all(&out).unwrap();
    let (got, _) = frames(&mut s, Duration::from_secs(2));
    let (code, message) = status_of(&got).expect("no answer while the proxy is full");
    assert_eq!(code, "8", "{message}");
    assert!(message.contains("across connections"), "{message}");
    println!("bounds: with 256 MiB of bodies held: {message}");
    version(&proxy.socket, Duration::from_secs(5)).expect("calls without a body go on");

    drop((fillers, s));
    let after = create(&proxy.socket, 1024).expect_err("a spec of spaces is no spec");
    assert_ne!(after.code(), Code::ResourceExhausted, "{after:?}");
    assert_back_to_idle(&proxy, idle, 40 << 10, "the bodies");
}
