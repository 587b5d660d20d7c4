#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs unit tests
# and the real-component tests (private containerd and dockerd) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ "$(id -u)" = 0 ] || { echo "test: the real-component tests start containerd and dockerd: run as root" >&2; exit 1; }
cargo build --all-targets --locked
cargo test --locked --no-fail-fast -- --test-threads 2 2>&1 | tee target/test-output.txt
# One closing line for the whole suite; a run that executed no test is a failure.
passed=$(grep -Eo '^test result: [a-z]+\. [0-9]+ passed' target/test-output.txt | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' target/test-output.txt | awk '{s += $1} END {print s + 0}')
[ "$passed" -gt 0 ] || { echo "test: no tests ran" >&2; exit 1; }
echo "tests: $passed passed, $failed failed"
