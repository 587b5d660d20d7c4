//! Durability of the decision log under `kill -9`: concurrent clients ask the proxy (and
//! `serve`) for ~1 000 decisions, the daemon is SIGKILLed at a random point, restarted on
//! the same (now stale) socket, and the run finishes. Then every decision a client was
//! answered for must have its record in the log with the verdict the client saw, every line
//! must be one whole JSON record (no torn or interleaved line, not even a final partial one:
//! `core::log` cuts a killed writer's fragment off before the next append), and the
//! restarted daemon appends to the same file.
//!
//! `PORTCULLIS_LONG=1`: 10 000 decisions and five kills each.

mod common;
// Each test binary uses a part of it.
#[allow(dead_code)]
#[path = "faults/kit.rs"]
mod kit;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox"];

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{unique, Proxy, Serve, World, IMAGE, IMAGE_LATEST};
use serde_json::{json, Value};

const CLIENTS: usize = 12;

/// (decisions, kills).
fn size() -> (usize, usize) {
    if std::env::var_os("PORTCULLIS_LONG").is_some_and(|v| v != "0") {
        (10_000, 5)
    } else {
        (1_000, 1)
    }
}

/// `kills` points at random, one in each of `kills` equal slices of the middle 80 %.
fn kill_points(total: usize, kills: usize) -> Vec<usize> {
    let slice = total * 8 / 10 / kills;
    (0..kills)
        .map(|i| {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            total / 10 + i * slice + (random as usize) % slice
        })
        .collect()
}

/// Every third decision is asked for a `:latest` image, which the policy refuses.
fn violating(n: usize) -> bool {
    n.is_multiple_of(3)
}

/// One client: asks decision `n`, `Ok((id, allowed))` when answered, `Err(id)` when not.
type Ask = Box<dyn FnMut(usize) -> Result<(String, bool), String> + Send>;

#[derive(Default)]
struct Tally {
    answered: Vec<(String, bool)>,
    unanswered: Vec<String>,
}

/// `CLIENTS` clients ask until `total` decisions are answered; with `kill_at`, the daemon
/// is killed once `kill_at.0` are, and each client stops at its first unanswered call.
fn round(
    total: usize,
    next: &AtomicUsize,
    tally: &Mutex<Tally>,
    client: &(dyn Fn() -> Ask + Sync),
    kill_at: Option<(usize, &dyn Fn())>,
) {
    let answered = || tally.lock().unwrap().answered.len();
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let mut ask = client();
                while answered() < total {
                    match ask(next.fetch_add(1, Ordering::SeqCst)) {
                        Ok(done) => tally.lock().unwrap().answered.push(done),
                        Err(id) => {
                            tally.lock().unwrap().unanswered.push(id);
                            return;
                        }
                    }
                }
            });
        }
        if let Some((at, kill)) = kill_at {
            while answered() < at {
                std::thread::sleep(Duration::from_millis(1));
            }
            kill();
        }
    });
}

/// Every line of the log, parsed; fails on a line that is not one whole JSON record.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "the log ends in a partial line: {:?}",
        &text[text.len().saturating_sub(200)..]
    );
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not a JSON record: {e}: {l:.300}", i + 1))
        })
        .collect()
}

/// Runs `total` decisions with the kills, then checks the log against what clients saw.
fn run_and_check(
    what: &str,
    log: &Path,
    key: &str,
    client: &(dyn Fn() -> Ask + Sync),
    kill: &dyn Fn(),
    restart: &mut dyn FnMut(usize),
) {
    let (total, kills) = size();
    let points = kill_points(total, kills);
    let (next, tally) = (AtomicUsize::new(0), Mutex::new(Tally::default()));
    let started = Instant::now();
    let mut lines_at_kill = Vec::new();
    for (n, &at) in points.iter().enumerate() {
        round(total, &next, &tally, client, Some((at, kill)));
        lines_at_kill.push(records(log).len());
        restart(n);
    }
    round(total, &next, &tally, client, None);
    let took = started.elapsed();
    let tally = tally.into_inner().unwrap();
    let records = records(log);
    let mut logged: HashMap<&str, Vec<bool>> = HashMap::new();
    for r in &records {
        if let (Some(id), Some(allowed)) = (r[key].as_str(), r["allowed"].as_bool()) {
            logged.entry(id).or_default().push(allowed);
        }
    }
    for (id, allowed) in &tally.answered {
        let seen = logged.get(id.as_str());
        assert!(
            seen.is_some_and(|v| v.contains(allowed)),
            "{what}: {id} was answered (allowed: {allowed}) but its record is {seen:?}"
        );
    }
    let unanswered_logged = tally
        .unanswered
        .iter()
        .filter(|id| logged.contains_key(id.as_str()))
        .count();
    assert!(tally.answered.len() >= total);
    assert!(
        *lines_at_kill.last().unwrap() < records.len(),
        "nothing appended after the restart"
    );
    println!(
        "{what}: {} decisions answered in {} ms, SIGKILL after {points:?} answered; {} calls \
         unanswered at the kills ({unanswered_logged} of them logged); {} log lines ({:?} at \
         the kills), every line whole JSON, every answered decision logged with its verdict",
        tally.answered.len(),
        kit::ms(took),
        tally.unanswered.len(),
        records.len(),
        lines_at_kill,
    );
}

fn config(log: &Path) -> String {
    format!(
        "images: {{disallowLatest: true}}\ndecisionLog: {{file: '{}'}}\n",
        log.display()
    )
}

/// Keeps a killed daemon's log beside the new one's (the harness starts each afresh).
fn keep_log(dir: &Path, verb: &str, n: usize) {
    let _ = std::fs::rename(
        dir.join(format!("{verb}.log")),
        dir.join(format!("{verb}-killed-{n}.log")),
    );
}

#[test]
fn kill_9_of_the_proxy_loses_no_answered_decision_and_the_restart_appends() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("decisions.jsonl");
    let config = config(&log);
    let mut w = World::new(&config);
    let spec = kit::spec(&w, IMAGE);
    let socket = w.proxy.socket.clone();
    let run = unique("durable");
    let client = || -> Ask {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let channel = rt.block_on(kit::channel(&socket));
        let (spec, run) = (spec.clone(), run.clone());
        Box::new(move |n| {
            let id = format!("{run}-{n}");
            let image = if violating(n) { IMAGE_LATEST } else { IMAGE };
            let call = rt.block_on(kit::create(&channel, &spec, &id, image, &[]));
            match call.outcome {
                kit::Outcome::Ok => Ok((id, true)),
                kit::Outcome::Failed(tonic::Code::PermissionDenied, _) => Ok((id, false)),
                _ => Err(id),
            }
        })
    };
    let pid = Mutex::new(w.proxy.pid().unwrap());
    let kill = || kit::kill9(*pid.lock().unwrap());
    let dir = w.dir.path().to_path_buf();
    let containerd = w.containerd.socket.clone();
    let mut restart = |n: usize| {
        keep_log(&dir, "proxy", n);
        // Same --listen path: the killed proxy's socket file is still there.
        w.proxy = Proxy::start(&dir, &containerd, &config);
        *pid.lock().unwrap() = w.proxy.pid().unwrap();
    };
    run_and_check("proxy", &log, "name", &client, &kill, &mut restart);
    daemon_logs(w.dir.path(), "proxy");
}

/// One AdmissionReview of a Pod, over HTTP/1.1 on `serve`'s unix socket: the answer's
/// `allowed`, or `None` if no whole answer came.
fn review(socket: &Path, uid: &str, image: &str) -> Option<bool> {
    use std::io::{Read, Write};
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "namespace": "default", "name": uid,
            "userInfo": {"username": "durability"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": uid},
                "spec": {"containers": [{"name": "c", "image": image}]}}}
    })
    .to_string();
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(kit::DEADLINE)).ok()?;
    write!(
        stream,
        "POST /validate HTTP/1.1\r\nHost: serve\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let review: Value = serde_json::from_str(body).ok()?;
    (review["response"]["uid"] == uid).then_some(())?;
    review["response"]["allowed"].as_bool()
}

#[test]
fn kill_9_of_serve_loses_no_answered_review_and_the_restart_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let config = config(&log);
    let mut serve = Serve::serve(dir.path(), &config, &[]);
    let socket: PathBuf = serve.socket.clone();
    let run = unique("review");
    let client = || -> Ask {
        let (socket, run) = (socket.clone(), run.clone());
        Box::new(move |n| {
            let uid = format!("{run}-{n}");
            let image = if violating(n) { IMAGE_LATEST } else { IMAGE };
            match review(&socket, &uid, image) {
                Some(allowed) => Ok((uid, allowed)),
                None => Err(uid),
            }
        })
    };
    let pid = Mutex::new(serve.pid().unwrap());
    let kill = || kit::kill9(*pid.lock().unwrap());
    let mut restart = |n: usize| {
        keep_log(dir.path(), "serve", n);
        // Same --socket path: the killed server's socket file is still there.
        serve = Serve::serve(dir.path(), &config, &[]);
        *pid.lock().unwrap() = serve.pid().unwrap();
    };
    run_and_check("serve", &log, "uid", &client, &kill, &mut restart);
    daemon_logs(dir.path(), "serve");
}

/// Checks the daemons' own logs in `dir`: no decision went ahead without its record (the
/// `decisionLog.timeout` path, the one way an answer may precede its record), and says how
/// many torn lines a killed writer left that the next writer cut off.
fn daemon_logs(dir: &Path, what: &str) {
    let mut cut = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !text.contains("decision log is slow"),
                "{}: a decision went ahead without its record",
                path.display()
            );
            cut += text.matches("ended in a torn line").count();
        }
    }
    println!("{what}: torn last lines cut off at restart: {cut}");
}
