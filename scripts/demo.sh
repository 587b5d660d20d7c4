#!/usr/bin/env bash
# The main job on a fresh machine: a private containerd behind the Portcullis proxy with the
# default policy (examples/default-policy.yaml), one container admitted and one denied.
# Installs what it needs; run as root. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/portcullis
. scripts/lib/containerd.sh
private_containerd demo
"$bin" proxy --config examples/default-policy.yaml --listen "$work/portcullis.sock" \
  --containerd "$work/containerd.sock" >"$work/proxy.log" 2>&1 & pids+=($!)
wait_socket "$work/portcullis.sock" "portcullis proxy" "$work/proxy.log"

ctr() { command ctr --address "$work/portcullis.sock" "$@"; }
scripts/busybox-image.sh "$work/busybox.tar" docker.io/library/busybox:1.36 docker.io/library/busybox:latest
ctr images import "$work/busybox.tar" >/dev/null

echo "== ctr run docker.io/library/busybox:1.36 (expected: admitted)"
ctr run --rm docker.io/library/busybox:1.36 demo-admitted echo "hello from an admitted container"
echo "== ctr run docker.io/library/busybox:latest (expected: denied)"
if ctr run --rm docker.io/library/busybox:latest demo-denied echo "this must not run"; then
  echo "demo: the :latest container was admitted; the policy did not hold" >&2; exit 1
fi
echo "== containers left in containerd: $(command ctr --address "$work/containerd.sock" containers ls -q | wc -l)"
echo "== the proxy's decisions:"
grep -E "decision" "$work/proxy.log" | sed 's/^/   /'
