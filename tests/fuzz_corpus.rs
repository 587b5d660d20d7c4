//! The fuzz targets' CI form, on the stable toolchain: every seed (`fuzz/seeds/<target>/`)
//! and every kept crash or slow input (`fuzz/regressions/<target>/`) replayed through the
//! same `portcullis::fuzzing` entry points the cargo-fuzz targets call (`fuzz/`,
//! `scripts/fuzz.sh` for the long form). A panic on any thread, or an input slower than
//! [`SLOW`], fails the test.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` regenerates the seed corpora
//! from tests/fixtures (`scripts/fuzz.sh --seeds`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "fuzz_corpus/lookups.rs"]
mod lookups;
#[path = "fuzz_corpus/seeds.rs"]
mod seeds;

/// A target's entry point.
type Target = fn(&[u8]);

/// Every target: its name (the directory under fuzz/seeds and fuzz/regressions, and the
/// cargo-fuzz target) and its entry point.
const TARGETS: &[(&str, Target)] = &[
    ("grpc_frames", portcullis::fuzzing::grpc_frames),
    (
        "containerd_request",
        portcullis::fuzzing::containerd_request,
    ),
    (
        "containerd_lookups",
        portcullis::fuzzing::containerd_lookups,
    ),
    ("cri_request", portcullis::fuzzing::cri_request),
    ("cri_lookups", portcullis::fuzzing::cri_lookups),
    ("oci_spec", portcullis::fuzzing::oci_spec),
    ("hook", portcullis::fuzzing::hook),
    ("admission_review", portcullis::fuzzing::admission_review),
    ("image_review", portcullis::fuzzing::image_review),
    ("webhook_response", portcullis::fuzzing::webhook_response),
    ("config_yaml", portcullis::fuzzing::config_yaml),
    ("policy_dir", portcullis::fuzzing::policy_dir),
];

/// An admission gate answers in milliseconds, and the optimised fuzz build holds every
/// input to `scripts/fuzz.sh`'s per-input timeout; this bound is for an unoptimised test
/// build on a loaded, shared machine (the largest regression, a 3 MiB patch, takes 0.3 s
/// optimised and up to 8 s here), and still catches inputs that hang.
const SLOW: Duration = Duration::from_secs(15);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_seed_and_regression_is_answered_without_panic_and_quickly() {
    // Panics inside the runtime's tasks are caught by tokio and would go unseen: count
    // them from the hook, whatever thread they happen on.
    let panics = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (panics.clone(), messages.clone());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        count.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut m) = seen.lock() {
            m.push(info.to_string());
        }
        previous(info);
    }));
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{name} is empty: run scripts/fuzz.sh --seeds"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for file in seeds.iter().chain(&regressions) {
            let data = std::fs::read(file).expect("corpus file");
            let before = panics.load(Ordering::SeqCst);
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| target(&data));
            let took = started.elapsed();
            replayed += 1;
            if outcome.is_err() || panics.load(Ordering::SeqCst) != before {
                failures.push(format!("{}: panicked", file.display()));
            } else if took > SLOW {
                failures.push(format!("{}: took {took:?}", file.display()));
            }
        }
    }
    eprintln!("replayed {replayed} inputs");
    // The entry points' fixture (its config and policyDir) lives here for the process.
    let fixture = std::env::temp_dir().join(format!("portcullis-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(fixture);
    assert!(
        failures.is_empty(),
        "{}\npanics: {:?}",
        failures.join("\n"),
        messages.lock().map(|m| m.clone()).unwrap_or_default()
    );
}

/// Writes the seed corpora from tests/fixtures; run by `scripts/fuzz.sh --seeds`.
#[test]
#[ignore = "writes fuzz/seeds; run by scripts/fuzz.sh --seeds"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, name, bytes) in seeds::all(root) {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(dir.join(name), bytes).expect("seed file");
    }
}
