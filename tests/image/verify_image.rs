//! `portcullis verify-image` as containerd 2.x runs it (`tests/common/verifier.rs` redoes
//! containerd's runner): installed by `portcullis install image-verifier` into a `bin_dir`,
//! run with containerd's argv and descriptor, judged by its exit code and stdout alone,
//! deciding through the daemon when one answers and in-process when not, and killed with
//! its process group at containerd's timeout without leaving anything behind.

use std::path::Path;
use std::time::Duration;

use crate::common::verifier::{self, descriptor, install};
use crate::common::Serve;

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
/// containerd's default `per_verifier_timeout`.
const TIMEOUT: Duration = Duration::from_secs(10);

const POLICY: &str = "images: {allowedRegistries: ['127.0.0.1:5000']}\n";

fn pull(bin: &Path, name: &str) -> verifier::Judgement {
    verifier::run(bin, name, &descriptor(DIGEST, 1609), TIMEOUT)
}

#[test]
fn a_pull_is_admitted_or_refused_with_the_reason_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bin = install(dir.path(), POLICY);
    let allowed = pull(&bin, "127.0.0.1:5000/app:1");
    assert!(allowed.ok(), "{allowed:?}");
    assert_eq!(allowed.reason, "portcullis: allowed", "{allowed:?}");

    let refused = pull(&bin, "docker.io/library/busybox:1.36");
    assert_eq!(refused.exit_code, Some(1), "{refused:?}");
    for part in [
        "portcullis: refused",
        "images.allowedRegistries",
        &format!("docker.io/library/busybox:1.36@{DIGEST}"),
    ] {
        assert!(refused.reason.contains(part), "no {part:?} in {refused:?}");
    }
    // One line: the reason, nothing else on stdout.
    assert_eq!(refused.reason.lines().count(), 1, "{refused:?}");

    // A descriptor naming another digest than the arguments: refused, not guessed.
    let mut other = descriptor(DIGEST, 1609);
    other["digest"] =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000".into();
    let mismatch = verifier::run_with_digest(&bin, "127.0.0.1:5000/app:1", &other, DIGEST, TIMEOUT);
    assert_eq!(mismatch.exit_code, Some(1), "{mismatch:?}");
    assert!(
        mismatch.reason.contains("stdin's descriptor names"),
        "{mismatch:?}"
    );
}

#[test]
fn the_daemon_decides_when_it_answers_and_the_verifier_falls_back_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let mut serve = Serve::serve(
        dir.path(),
        &format!("{POLICY}decisionLog: {{file: '{}'}}\n", log.display()),
        &[],
    );
    // The verifier's own config allows everything: a refusal can only be the daemon's.
    let bin = install(
        dir.path(),
        &format!("hook:\n  daemonSocket: '{}'\n", serve.socket.display()),
    );
    let refused = pull(&bin, "docker.io/library/busybox:1.36");
    assert_eq!(refused.exit_code, Some(1), "{refused:?}\n{}", serve.log());
    assert!(
        refused.reason.contains("images.allowedRegistries"),
        "{refused:?}"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let entry = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e.to_string().contains("busybox:1.36"))
        .unwrap_or_else(|| panic!("no decision logged: {logged}"));
    assert_eq!(entry["door"], "verify-image", "{entry}");

    serve.stop();
    let fallback = pull(&bin, "docker.io/library/busybox:1.36");
    assert!(
        fallback.ok(),
        "in-process, its own config allows it: {fallback:?}"
    );
    assert!(
        fallback.stderr.contains("deciding in-process"),
        "{fallback:?}"
    );
}

#[test]
fn at_containerds_timeout_the_verifier_group_is_killed_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    // A daemon socket that accepts and never answers, and a daemon timeout beyond
    // containerd's: containerd's kill ends it.
    let socket = dir.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(5));
        drop(conns);
    });
    let bin = install(
        dir.path(),
        &format!(
            "hook:\n  daemonSocket: '{}'\n  timeout: 60s\n",
            socket.display()
        ),
    );
    let judged = verifier::run(
        &bin,
        "127.0.0.1:5000/app:1",
        &descriptor(DIGEST, 1609),
        Duration::from_secs(1),
    );
    assert_eq!(judged.exit_code, None, "{judged:?}");
    assert!(judged.elapsed < Duration::from_secs(4), "{judged:?}");
    assert!(!verifier::group_alive(judged.pgid), "{judged:?}");
    held.join().unwrap();
}
