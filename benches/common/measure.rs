//! The latency figures the in-process benchmarks print (`decision`, `gatekeeper`).

use std::time::{Duration, Instant};

/// Runs `f` `n` times after a warm-up: "p50 … µs, p99 … µs, p99.9 … µs".
pub fn measure<T>(n: usize, mut f: impl FnMut() -> T) -> String {
    for _ in 0..(n / 10).clamp(100, 10_000) {
        std::hint::black_box(f());
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        at(0.50),
        at(0.99),
        at(0.999)
    )
}
