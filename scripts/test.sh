#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs unit tests
# and the real-component tests (private containerd, dockerd, Podman) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ "$(id -u)" = 0 ] || { echo "test: the real-component tests start containerd and dockerd: run as root" >&2; exit 1; }
cargo build --all-targets --locked
cargo test --locked --no-fail-fast -- --test-threads 2 2>&1 | tee target/test-output.txt
# Belt and braces: a run that executed no test is a failure.
grep -Eq '^test result: ok\. [1-9][0-9]* passed' target/test-output.txt || { echo "test: no tests ran" >&2; exit 1; }
