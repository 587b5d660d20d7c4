#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input (fuzz/, targets in fuzz/Cargo.toml) for a fixed
# time each, and fails if any target crashes, runs out of memory or is slow on an input.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default 60 s, every target
#   scripts/fuzz.sh --seeds                            rewrite fuzz/seeds from tests/fixtures
#
# Environment: FUZZ_JOBS targets at once (default 2), FUZZ_TIMEOUT seconds one input may
# take before it counts as a hang (default 5), FUZZ_RSS_MB memory limit (default 2048).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). CI does
# not run this; it runs the seeds and regressions through tests/fuzz_corpus.rs instead.
#
# Per target: the working corpus grows in fuzz/corpus/<target> (not committed), seeded
# from fuzz/seeds/<target> and fuzz/regressions/<target>; a crash, hang or OOM leaves its
# input in fuzz/artifacts/<target>/ — fix it, then keep the input in fuzz/regressions/.
# The figures of each run (execs, exec/s, cov, ft, corpus, slowest input) are printed at
# the end and written to fuzz/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--seeds" ]; then
    CARGO_INCREMENTAL=0 cargo test --test fuzz_corpus -- --ignored write_seeds
    exit 0
fi

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(grep -A1 '^\[\[bin\]\]' fuzz/Cargo.toml | sed -n 's/^name = "\(.*\)"/\1/p')
fi
jobs=${FUZZ_JOBS:-2}
timeout=${FUZZ_TIMEOUT:-5}
rss=${FUZZ_RSS_MB:-2048}

command -v cargo-fuzz >/dev/null || { echo "fuzz: install cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 1; }
# No sanitizer: the crate forbids unsafe code, so AddressSanitizer would mostly slow the
# search down; panics, hangs and memory growth are what the targets look for.
build=(cargo +nightly fuzz build -O -s none)
CARGO_INCREMENTAL=0 "${build[@]}" "${targets[@]:0:1}" >/dev/null
[ ${#targets[@]} -eq 1 ] || CARGO_INCREMENTAL=0 "${build[@]}" >/dev/null
bin=fuzz/target/x86_64-unknown-linux-gnu/release

mkdir -p fuzz/logs
run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/regressions/$t"
    "$bin/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" \
        -max_len=1048576 -print_final_stats=1 -report_slow_units=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"fuzz/logs/$t.log" 2>&1
}

failed=()
pids=()
names=()
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    echo "fuzz: $t for ${seconds}s"
    run_one "$t" &
    pids+=($!)
    names+=("$t")
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${names[$i]}")
done

{
    printf '%-20s %12s %8s %7s %7s %8s %10s %s\n' target execs exec/s cov ft corpus slowest_s result
    for t in "${targets[@]}"; do
        log=fuzz/logs/$t.log
        stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
        last=$(grep -E '^#[0-9]+' "$log" | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
        corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
        result=ok
        [[ " ${failed[*]} " == *" $t "* ]] && result="FAILED (fuzz/logs/$t.log, fuzz/artifacts/$t/)"
        printf '%-20s %12s %8s %7s %7s %8s %10s %s\n' "$t" "$(stat number_of_executed_units)" \
            "$(stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
            "$(stat slowest_unit_time_sec)" "$result"
    done
} | tee fuzz/last-run.txt

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each: no crash"
