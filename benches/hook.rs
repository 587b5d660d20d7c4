//! Hook latency: `portcullis hook` as a runtime runs it (process start to exit, state JSON
//! on stdin), for an admitted Podman bundle, deciding in-process (Pod Security `baseline`
//! on the `podman` namespace, no daemon); against `/bin/true` started the same way (the
//! cost of any hook process).
//!
//!     cargo bench --bench hook           (figures go to docs/hook.md and BENCHMARKS.md)
//!
//! Env: BENCH_RUNS (default 300).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/runtime-specs/podman"
);

fn run(program: &str, args: &[&str], stdin: &[u8]) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // /bin/true may exit before reading; a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{what:<40} runs {:>4}  p50 {:>8.2?}  p99 {:>8.2?}  mean {:>8.2?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        mean
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(
        format!("{FIXTURES}/plain.config.json"),
        bundle.join("config.json"),
    )
    .unwrap();
    let mut state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/plain.state.json")).unwrap(),
    )
    .unwrap();
    state["bundle"] = serde_json::json!(bundle);
    let state = state.to_string().into_bytes();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "namespaces:\n  podman:\n    labels:\n      pod-security.kubernetes.io/enforce: baseline\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let hook_args = ["hook", "--config", config, "--stage", "createRuntime"];

    // Warm the page cache.
    for _ in 0..10 {
        run(BIN, &hook_args, &state);
        run("/bin/true", &[], &state);
    }
    let mut hook = Vec::with_capacity(runs);
    let mut floor = Vec::with_capacity(runs);
    for _ in 0..runs {
        hook.push(run(BIN, &hook_args, &state));
        floor.push(run("/bin/true", &[], &state));
    }
    report("portcullis hook (in-process, admitted)", hook);
    report("/bin/true (floor)", floor);
}
