//! The CRI door's cost: `RunPodSandbox` and `CreateContainer` latency against containerd's
//! real CRI plugin, directly and through `portcullis proxy` with `proxy.cri: admit` under
//! Pod Security baseline, interleaved pod by pod in the same run (ratios in
//! BENCHMARKS.md). As root: `cargo bench --bench cri` (BENCH_PODS, default 50).

#[path = "../tests/common/mod.rs"]
mod common;

/// What this benchmark needs on the machine (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox", "cni", "ip"];

use std::time::{Duration, Instant};

use common::cri::{pod_config, uid, CriApi, CriClient, CriWorld, Via};
use common::IMAGE;

const CONFIG: &str = "proxy:
  cri: admit
  kubelet: {rootDir: '{dir}/kubelet', podLogsDir: '{dir}/pods'}
namespaces:
  \"*\": {labels: {pod-security.kubernetes.io/enforce: baseline}}
";

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

/// One pod through `c`: the two timed calls, then an untimed teardown.
fn one_pod(w: &CriWorld, c: &CriClient, name: &str) -> (Duration, Duration) {
    let pod = pod_config(w.dir.path(), name, "default", &uid());
    let started = Instant::now();
    let sandbox = w.expect("RunPodSandbox", c.run_pod(&pod));
    let run = started.elapsed();
    let config = w.expect(
        "the container's config",
        c.container_config(&pod, "main", IMAGE, &["true"]),
    );
    let started = Instant::now();
    w.expect(
        "CreateContainer",
        c.create_container(&sandbox, &pod, config),
    );
    let create = started.elapsed();
    w.expect("Stop/RemovePodSandbox", c.stop_and_remove_pod(&sandbox));
    (run, create)
}

fn main() {
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let w = CriWorld::new(CONFIG);
    let paths = [Via::Containerd, Via::Proxy];
    let clients: Vec<CriClient> = paths.iter().map(|v| w.client(*v, CriApi::V1)).collect();
    // Warm-up: the bridge, the images' snapshots, the proxy's upstream connection.
    for (i, c) in clients.iter().enumerate() {
        one_pod(&w, c, &format!("warm-{i}"));
    }
    let mut runs = vec![Vec::new(); paths.len()];
    let mut creates = vec![Vec::new(); paths.len()];
    for n in 0..pods {
        for (i, c) in clients.iter().enumerate() {
            let (run, create) = one_pod(&w, c, &format!("bench-{n}-{i}"));
            runs[i].push(run);
            creates[i].push(create);
        }
    }
    for (what, samples) in [
        ("RunPodSandbox", &mut runs),
        ("CreateContainer", &mut creates),
    ] {
        let p50: Vec<Duration> = samples.iter_mut().map(|s| percentile(s, 0.5)).collect();
        let p99: Vec<Duration> = samples.iter_mut().map(|s| percentile(s, 0.99)).collect();
        println!(
            "{what} ({pods} pods each): direct p50 {:.1} ms p99 {:.1} ms; proxy (admit, baseline) p50 {:.1} ms p99 {:.1} ms; +{:.0} µs at p50 (ratio {:.3})",
            p50[0].as_secs_f64() * 1e3,
            p99[0].as_secs_f64() * 1e3,
            p50[1].as_secs_f64() * 1e3,
            p99[1].as_secs_f64() * 1e3,
            (p50[1].as_secs_f64() - p50[0].as_secs_f64()) * 1e6,
            p50[1].as_secs_f64() / p50[0].as_secs_f64()
        );
    }
}
