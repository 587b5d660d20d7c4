//! The image door's cost, against a real registry (Debian's docker-registry on loopback)
//! holding a cosign-signed image, in one run (ratios in BENCHMARKS.md). As root:
//! `cargo bench --bench image` (BENCH_CALLS, default 50).
//!
//! - `verify-image` as containerd 2.x runs it, three ways, interleaved call by call: in
//!   process (every call reads the config and verifies at the registry: cold), through
//!   the daemon with its cache off (`cacheAllowSeconds: 0`: the daemon verifies at the
//!   registry every time), and through the daemon with its cache (warm).
//! - `Containers/Create` of the signed image through a proxy that verifies signatures
//!   (the digest containerd holds, looked up with `Images/Get`; the verdict cached) and
//!   through a proxy without trust policies, against containerd directly.

#[path = "../tests/common/mod.rs"]
mod common;

/// What this benchmark needs on the machine (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "docker-registry",
    "skopeo",
    "openssl",
];

use std::path::Path;
use std::time::{Duration, Instant};

use common::cosign::{policy_config, Key};
use common::registry::{Registry, Transport};
use common::verifier::{self, descriptor, install};
use common::{ctr, ok, unique, Proxy, Serve, World};

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, names: &[&str], samples: &mut [Vec<Duration>], base: usize) {
    let p50: Vec<Duration> = samples.iter_mut().map(|s| percentile(s, 0.5)).collect();
    let p99: Vec<Duration> = samples.iter_mut().map(|s| percentile(s, 0.99)).collect();
    println!("{what} ({} calls each):", samples[0].len());
    for (i, name) in names.iter().enumerate() {
        println!(
            "  {name}: p50 {:.2} ms p99 {:.2} ms (ratio to {} {:.2})",
            ms(p50[i]),
            ms(p99[i]),
            names[base],
            p50[i].as_secs_f64() / p50[base].as_secs_f64()
        );
    }
}

fn verify_image(registry: &Registry, image: &str, digest: &str, calls: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(1);
    let policy = policy_config(dir.path(), &registry.host(), &key, "Fail");
    for d in ["cached", "uncached", "plain"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let cached = Serve::serve(&dir.path().join("cached"), &policy, &[]);
    let uncached_policy = policy.replace(
        "timeoutSeconds: 2}",
        "timeoutSeconds: 2, cacheAllowSeconds: 0}",
    );
    let uncached = Serve::serve(&dir.path().join("uncached"), &uncached_policy, &[]);
    let daemon = |socket: &Path| format!("hook:\n  daemonSocket: '{}'\n", socket.display());
    let bins = [
        install(&dir.path().join("in-process"), &policy),
        install(&dir.path().join("via-uncached"), &daemon(&uncached.socket)),
        install(&dir.path().join("via-cached"), &daemon(&cached.socket)),
    ];
    let mut samples = vec![Vec::new(); bins.len()];
    for n in 0..=calls {
        for (i, bin) in bins.iter().enumerate() {
            let judged = verifier::run(
                bin,
                image,
                &descriptor(digest, 500),
                Duration::from_secs(30),
            );
            assert!(judged.ok(), "{judged:?}");
            if n > 0 {
                samples[i].push(judged.elapsed);
            }
        }
    }
    report(
        "verify-image of a signed image",
        &[
            "in-process (cold)",
            "daemon, no cache (cold)",
            "daemon, cached (warm)",
        ],
        &mut samples,
        0,
    );
}

fn containers_create(registry: &Registry, image: &str, calls: usize) {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_config(dir.path(), &registry.host(), &Key::new(1), "Fail");
    let w = World::new(&policy);
    ok(w.ctr(&["images", "pull", "--plain-http", image]));
    std::fs::create_dir_all(dir.path().join("plain")).unwrap();
    let plain = Proxy::start(
        &dir.path().join("plain"),
        &w.containerd.socket,
        "proxy: {}\n",
    );
    let sockets = [&w.containerd.socket, &plain.socket, &w.proxy.socket];
    let mut samples = vec![Vec::new(); sockets.len()];
    for n in 0..=calls {
        for (i, socket) in sockets.iter().enumerate() {
            let id = unique("bench");
            let started = Instant::now();
            ok(ctr(socket, &["containers", "create", image, &id, "true"]));
            let took = started.elapsed();
            ok(w.ctr_direct(&["containers", "rm", &id]));
            if n > 0 {
                samples[i].push(took);
            }
        }
    }
    report(
        "ctr containers create of the signed image",
        &[
            "direct",
            "proxy, no trust policy",
            "proxy, signature verified (warm)",
        ],
        &mut samples,
        0,
    );
}

fn main() {
    let _ = PREREQUISITES;
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let registry = Registry::start(Transport::Http);
    let digest = registry.push_busybox_variant("apps/web:1", "bench");
    Key::new(1).sign(&registry, "apps/web", &digest);
    let image = registry.reference("apps/web:1");
    verify_image(&registry, &image, &digest, calls);
    containers_create(&registry, &image, calls);
}
