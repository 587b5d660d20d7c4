//! Faults under load, end to end: a steady stream of `Containers/Create` (+ `Delete`)
//! through the proxy in front of a private containerd while (1) containerd is SIGKILLed and
//! restarted, (2) a webhook hangs, answers garbage or closes its connections, (3) the config
//! file is replaced by a broken one. Every call has a client deadline and the tests assert
//! none reaches it; each prints the figures RELIABILITY.md quotes (`--nocapture`).
//!
//! `PORTCULLIS_LONG=1` runs the long form: more rounds and longer outages.

mod common;
// Each test binary uses a part of it.
#[allow(dead_code)]
#[path = "faults/kit.rs"]
mod kit;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox"];

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::procstat::{open_fds, threads};
use common::{unique, World, IMAGE, IMAGE_LATEST};
use kit::{ms, Call, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn long() -> bool {
    std::env::var_os("PORTCULLIS_LONG").is_some_and(|v| v != "0")
}

/// Calls one client makes until `stop`: creates (every third of a `:latest` image, which
/// the policy refuses) and deletes what was created.
async fn stream(
    socket: std::path::PathBuf,
    spec: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<(bool, Call)>>>,
) {
    let channel = kit::channel(&socket).await;
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let violating = n.is_multiple_of(3);
        let image = if violating { IMAGE_LATEST } else { IMAGE };
        let id = unique("fault");
        let created = kit::create(&channel, &spec, &id, image, &[]).await;
        let made = created.outcome == Outcome::Ok;
        calls.lock().unwrap().push((violating, created));
        if made {
            let deleted = kit::delete(&channel, &id).await;
            calls.lock().unwrap().push((false, deleted));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` clients calling through the proxy at `socket` (each a [`stream`]) until finished.
struct Streams {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<(bool, Call)>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Streams {
    fn start(
        rt: &tokio::runtime::Runtime,
        socket: &std::path::Path,
        spec: &Arc<Vec<u8>>,
        n: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..n)
            .map(|_| {
                rt.spawn(stream(
                    socket.to_owned(),
                    spec.clone(),
                    stop.clone(),
                    calls.clone(),
                ))
            })
            .collect();
        Streams {
            stop,
            calls,
            clients,
        }
    }

    /// Stops the clients and returns every call they made: (violating, the call).
    fn finish(self, rt: &tokio::runtime::Runtime) -> Vec<(bool, Call)> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            rt.block_on(c).unwrap();
        }
        let calls = self.calls.lock().unwrap().clone();
        calls
    }
}

/// Whether `call` got the answer the policy gives with containerd up.
fn as_decided(violating: bool, call: &Call) -> bool {
    match &call.outcome {
        Outcome::Ok => !violating,
        Outcome::Failed(tonic::Code::PermissionDenied, m) => {
            violating && m.contains("uses the tag latest")
        }
        _ => false,
    }
}

#[test]
fn containerd_killed_mid_run_fails_calls_cleanly_and_the_proxy_reconnects() {
    let mut w = World::new("images: {disallowLatest: true}\n");
    let spec = Arc::new(kit::spec(&w, IMAGE));
    let proxy = w.proxy.pid().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rounds, outage) = if long() {
        (5, Duration::from_secs(5))
    } else {
        (1, Duration::from_secs(2))
    };
    let streams = Streams::start(&rt, &w.proxy.socket, &spec, 4);
    let mut outages = Vec::new();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..rounds {
        let killed = Instant::now();
        kit::kill9(w.containerd.pid().unwrap());
        std::thread::sleep(outage);
        w.containerd.restart();
        let up = Instant::now();
        outages.push((killed, up));
        std::thread::sleep(Duration::from_secs(3));
    }
    let calls = streams.finish(&rt);
    let logs = w.logs();
    assert!(
        std::fs::metadata(format!("/proc/{proxy}")).is_ok() && w.proxy.pid() == Some(proxy),
        "the proxy must outlive containerd's restarts\n{logs}"
    );
    let hung: Vec<_> = calls
        .iter()
        .filter(|(_, c)| c.outcome == Outcome::Hung)
        .collect();
    assert!(
        hung.is_empty(),
        "calls reached their deadline: {hung:?}\n{logs}"
    );
    let (mut failed, mut never_sent, mut slowest_failure) = (0, 0, Duration::ZERO);
    for (violating, call) in &calls {
        if as_decided(*violating, call) {
            continue;
        }
        // A call may fail only if it overlapped an outage (containerd down, or the first
        // redial after it), and only as Unavailable.
        let during = outages.iter().any(|(killed, up)| {
            call.ended() >= *killed && call.started <= *up + Duration::from_secs(2)
        });
        // Unavailable from the proxy; or, for a call the client had queued on a connection
        // at the instant it closed (it never left the client), tonic's own Cancelled.
        let clean = match &call.outcome {
            Outcome::Failed(tonic::Code::Unavailable, m) => m.starts_with("portcullis: containerd"),
            Outcome::Failed(tonic::Code::Cancelled, m) => {
                never_sent += 1;
                m == "operation was canceled"
            }
            _ => false,
        };
        let since: Vec<_> = outages
            .iter()
            .map(|(killed, up)| {
                (
                    call.started.checked_duration_since(*killed),
                    call.started.checked_duration_since(*up),
                )
            })
            .collect();
        assert!(
            during && clean,
            "{call:?} outside an outage or not a clean Unavailable (started after (kill, up): \
             {since:?})\n{logs}"
        );
        failed += 1;
        slowest_failure = slowest_failure.max(call.took);
    }
    assert!(failed > 0, "no call saw the outage");
    assert!(
        slowest_failure <= Duration::from_secs(2),
        "a failed call took {slowest_failure:?}"
    );
    let (killed, up) = *outages.last().unwrap();
    let recovered = calls
        .iter()
        .filter(|(v, c)| c.started >= up && as_decided(*v, c))
        .map(|(_, c)| c.ended())
        .min()
        .expect("no call succeeded after the restart");
    let after: Vec<_> = calls
        .iter()
        .filter(|(_, c)| c.started > up + Duration::from_secs(2))
        .collect();
    assert!(!after.is_empty() && after.iter().all(|(v, c)| as_decided(*v, c)));
    let ok = calls.len() - failed;
    let in_flight = calls
        .iter()
        .filter(|(_, c)| matches!(&c.outcome, Outcome::Failed(_, m) if m.contains("closed the connection during the call")))
        .count();
    println!(
        "containerd SIGKILL x{rounds}, outage {outage:?}: {} calls, {ok} answered as decided, \
         {failed} failed (slowest {} ms; {never_sent} of them Cancelled by the client, never \
         sent; {in_flight} in flight at the kill), 0 hung; first answer {} ms after containerd was \
         back ({} ms after the last kill)",
        calls.len(),
        ms(slowest_failure),
        ms(recovered - up),
        ms(recovered - killed),
    );
}

/// How the misbehaving webhook answers.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
enum Mode {
    Answer = 0,
    Hang = 1,
    Garbage = 2,
    Close = 3,
}

/// A webhook on loopback whose behaviour the test switches, counting the connections it
/// holds open (each one the proxy has not closed).
struct BadWebhook {
    port: u16,
    mode: Arc<AtomicU8>,
    open: Arc<AtomicUsize>,
}

impl BadWebhook {
    fn start(rt: &tokio::runtime::Runtime) -> Self {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, open) = (Arc::new(AtomicU8::new(0)), Arc::new(AtomicUsize::new(0)));
        let (m, o) = (mode.clone(), open.clone());
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                o.fetch_add(1, Ordering::SeqCst);
                let (m, o) = (m.clone(), o.clone());
                tokio::spawn(async move {
                    let _ = connection(stream, &m).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self { port, mode, open }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

/// One HTTP/1.1 connection: requests answered as the mode says, until either side closes.
async fn connection(mut stream: tokio::net::TcpStream, mode: &AtomicU8) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(body) = read_request(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        let answer = match mode.load(Ordering::SeqCst) {
            0 => {
                let review: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let response = common::webhook::allow(&review);
                serde_json::json!({"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response}).to_string()
            }
            // Hang: hold the request until the proxy gives up and closes the connection.
            1 => {
                while stream.read(&mut [0u8; 1024]).await? > 0 {}
                return Ok(());
            }
            2 => "{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionRev".to_owned(),
            _ => return Ok(()),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(answer.as_bytes()).await?;
    }
}

/// The next request's body, `None` at the end of the connection.
async fn read_request(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = buf[end + 4..end + 4 + length].to_vec();
                buf.drain(..end + 4 + length);
                return Ok(Some(body));
            }
        }
        let mut chunk = [0u8; 16 << 10];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn webhook_config(port: u16) -> String {
    let entry = |name: &str, policy: &str, label: &str| {
        format!(
            "- name: {name}\n  clientConfig: {{url: 'http://127.0.0.1:{port}/validate'}}\n  \
             rules: [{{operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [pods]}}]\n  \
             objectSelector: {{matchLabels: {{policy: {label}}}}}\n  \
             failurePolicy: {policy}\n  timeoutSeconds: 1\n"
        )
    };
    format!(
        "webhooks:\n{}{}",
        entry("fail.faults.test", "Fail", "fail"),
        entry("ignore.faults.test", "Ignore", "ignore")
    )
}

/// `clients` concurrent clients, each `rounds` creates (+ deletes), half of them labelled
/// for the `Fail` webhook, half for the `Ignore` one: (labelled fail, the create).
fn burst(
    rt: &tokio::runtime::Runtime,
    channels: &[tonic::transport::Channel],
    spec: &Arc<Vec<u8>>,
    rounds: usize,
) -> Vec<(bool, Call)> {
    let tasks: Vec<_> = channels
        .iter()
        .enumerate()
        .map(|(i, channel)| {
            let (channel, spec) = (channel.clone(), spec.clone());
            rt.spawn(async move {
                let fail = i.is_multiple_of(2);
                let label = [("policy", if fail { "fail" } else { "ignore" })];
                let mut out = Vec::new();
                for _ in 0..rounds {
                    let id = unique("hook");
                    let call = kit::create(&channel, &spec, &id, IMAGE, &label).await;
                    if call.outcome == Outcome::Ok {
                        kit::delete(&channel, &id).await;
                    }
                    out.push((fail, call));
                }
                out
            })
        })
        .collect();
    tasks
        .into_iter()
        .flat_map(|t| rt.block_on(t).unwrap())
        .collect()
}

#[test]
fn a_webhook_that_hangs_answers_garbage_or_closes_is_judged_by_failure_policy_without_leaks() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hook = BadWebhook::start(&rt);
    let w = World::new(&webhook_config(hook.port));
    let spec = Arc::new(kit::spec(&w, IMAGE));
    let pid = w.proxy.pid().unwrap();
    let channels: Vec<_> = (0..8)
        .map(|_| rt.block_on(kit::channel(&w.proxy.socket)))
        .collect();
    let rounds = if long() { 20 } else { 3 };
    let answered = burst(&rt, &channels, &spec, rounds);
    assert!(
        answered.iter().all(|(_, c)| c.outcome == Outcome::Ok),
        "{answered:?}\n{}",
        w.logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    // The proxy's fds less the webhook connections it pools (the server holds their
    // other ends), and its threads, with the webhook answering.
    let fds = |pid| open_fds(pid).unwrap() - hook.open.load(Ordering::SeqCst);
    let (idle_fds, idle_threads) = (fds(pid), threads(pid).unwrap());
    let slack = Duration::from_millis(1500);
    for mode in [Mode::Hang, Mode::Garbage, Mode::Close] {
        hook.set(mode);
        let calls = burst(&rt, &channels, &spec, rounds);
        let mut slowest = Duration::ZERO;
        for (fail, call) in &calls {
            let expected = if *fail {
                matches!(&call.outcome, Outcome::Failed(tonic::Code::Internal, m)
                    if m.contains(r#"failed calling webhook "fail.faults.test""#))
            } else {
                call.outcome == Outcome::Ok
            };
            assert!(expected, "{mode:?}: {call:?}\n{}", w.logs());
            assert!(
                call.took <= Duration::from_secs(1) + slack,
                "{mode:?}: {call:?}"
            );
            slowest = slowest.max(call.took);
        }
        println!(
            "webhook {mode:?}: {} calls (Fail refused, Ignore admitted), slowest {} ms; proxy \
             fds {} (+{} webhook connections), threads {}",
            calls.len(),
            ms(slowest),
            fds(pid),
            hook.open.load(Ordering::SeqCst),
            threads(pid).unwrap()
        );
    }
    hook.set(Mode::Answer);
    burst(&rt, &channels, &spec, rounds);
    // Blocking-pool threads (name resolution of each new connection) end after 10 s idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = Instant::now();
    while fds(pid) > idle_fds || threads(pid).unwrap() > idle_threads {
        assert!(
            Instant::now() < deadline,
            "the proxy did not return to idle: fds {} (idle {idle_fds}), threads {} (idle \
             {idle_threads}), webhook connections {}",
            fds(pid),
            threads(pid).unwrap(),
            hook.open.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "webhook faults: idle fds {idle_fds} threads {idle_threads}; after: fds {} threads {} \
         (settled in {} ms), webhook connections open {}",
        fds(pid),
        threads(pid).unwrap(),
        ms(settled.elapsed()),
        hook.open.load(Ordering::SeqCst)
    );
}

#[test]
fn a_broken_config_written_under_load_is_rejected_and_the_last_good_one_keeps_deciding() {
    let good = "images: {disallowLatest: true}\n";
    let w = World::new(good);
    let spec = Arc::new(kit::spec(&w, IMAGE));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let streams = Streams::start(&rt, &w.proxy.socket, &spec, 4);
    std::thread::sleep(Duration::from_secs(1));
    // A half-written file, then one with an unknown key: each rejected in turn.
    let broken = [
        "images: {disallowLatest: tr".to_owned(),
        format!("{good}bogusKey: 1\n"),
    ];
    let rounds = if long() { 5 } else { 1 };
    for (n, text) in broken.iter().cycle().take(2 * rounds).enumerate() {
        std::fs::write(&w.proxy.config, text).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.proxy.log().matches("config reload rejected").count() <= n {
            assert!(
                Instant::now() < deadline,
                "not rejected: {text}\n{}",
                w.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let calls = streams.finish(&rt);
    let wrong: Vec<_> = calls.iter().filter(|(v, c)| !as_decided(*v, c)).collect();
    assert!(wrong.is_empty(), "{wrong:?}\n{}", w.logs());
    let refused = calls.iter().filter(|(v, _)| *v).count();
    let log = w.proxy.log();
    assert!(log.contains("bogusKey"), "{log}");

    // A good version is picked up again.
    let fixed = "images: {disallowLatest: true, deny: ['*busybox:1.36*']}\n";
    std::fs::write(&w.proxy.config, fixed).unwrap();
    let channel = rt.block_on(kit::channel(&w.proxy.socket));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let call = rt.block_on(kit::create(&channel, &spec, &unique("fixed"), IMAGE, &[]));
        if matches!(&call.outcome, Outcome::Failed(_, m) if m.contains("matches the denied pattern"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fixed config was not loaded\n{}",
            w.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "broken config x{} under load: {} calls all decided by the last good config ({refused} \
         violating refused, {} compliant admitted), then the fixed config loaded",
        2 * rounds,
        calls.len(),
        calls.len() - refused
    );
}
