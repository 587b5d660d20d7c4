#!/usr/bin/env bash
# Regenerates build/orderfile.txt: the functions of the release binary that the proxy runs
# when it starts and while it relays and decides containerd calls, hottest first. build.rs
# hands the file to the linker (lld's --symbol-ordering-file) for release builds, so that
# code sits together at the start of .text instead of spread over 12 MB of it. The kernel
# maps code in 64 KiB windows around each page fault, so spread-out code makes most of the
# binary resident; packed, the proxy's resident code is the code it runs
# (RELIABILITY.md#load; docs/packaging.md, "Code layout").
#
#   scripts/orderfile.sh            profile the proxy and rewrite build/orderfile.txt
#   scripts/orderfile.sh --check    how many of the file's symbols the release binary has
#   PORTCULLIS_BIN=PATH scripts/orderfile.sh [--check]   that release build, not a fresh one
#
# The workload: a private containerd behind the proxy with Pod Security baseline for every
# namespace, a CEL ValidatingAdmissionPolicy and the image rules, driven by `ctr` (import,
# run admitted containers, calls refused by each policy, listings), with the proxy under
# callgrind, which records every function that runs. Symbol names carry hashes that change
# with the toolchain and dependencies: a stale file costs only the layout (names the binary
# lacks are skipped), and --check says when to regenerate. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/orderfile.txt
bin=$(realpath -m "${PORTCULLIS_BIN:-target/release/portcullis}")   # or another release build

if [ "${1:-}" = --check ]; then
  [ -x "$bin" ] || { echo "orderfile: build the release binary first (cargo build --release)" >&2; exit 2; }
  total=$(grep -c . "$out")
  present=$(nm --defined-only "$bin" | awk '{print $3}' | sort -u | comm -12 - <(sort -u "$out") | wc -l)
  echo "orderfile: $present of $total symbols in $out are in $bin"
  [ "$present" -ge $((total * 9 / 10)) ] || { echo "orderfile: stale; regenerate with scripts/orderfile.sh" >&2; exit 1; }
  exit 0
fi

scripts/setup.sh
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release --locked --quiet
. scripts/lib/containerd.sh
WAIT_SECONDS=120   # the proxy starts under callgrind
private_containerd orderfile
cat > "$work/config.yaml" <<YAML
namespaces:
  "*": {labels: {pod-security.kubernetes.io/enforce: baseline}}
images:
  disallowLatest: true
policyDir: $PWD/tests/fixtures/policies/no-cel
YAML

valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$work/callgrind.out" \
  "$bin" proxy --config "$work/config.yaml" --listen "$work/portcullis.sock" \
  --containerd "$work/containerd.sock" >"$work/proxy.log" 2>&1 & proxy=$!
pids+=($proxy)
wait_socket "$work/portcullis.sock" "portcullis proxy" "$work/proxy.log"

ctr() { command ctr --address "$work/portcullis.sock" "$@"; }
scripts/busybox-image.sh "$work/busybox.tar" docker.io/library/busybox:1.36 docker.io/library/busybox:latest
ctr images import "$work/busybox.tar" >/dev/null
for i in 1 2 3; do ctr run --rm --seccomp docker.io/library/busybox:1.36 "admitted-$i" true; done
refused() { if ctr "$@" >/dev/null 2>&1; then echo "orderfile: ctr $* was admitted" >&2; exit 1; fi; }
refused run --rm --privileged docker.io/library/busybox:1.36 refused-privileged true
refused run --rm --net-host docker.io/library/busybox:1.36 refused-host-network true
refused run --rm --seccomp docker.io/library/busybox:1.36 cel-refused true
refused run --rm --seccomp docker.io/library/busybox:latest refused-latest true
ctr containers create --seccomp docker.io/library/busybox:1.36 kept
ctr containers ls >/dev/null; ctr tasks ls >/dev/null; ctr images ls >/dev/null; ctr version >/dev/null
ctr containers delete kept
kill -TERM "$proxy"
wait "$proxy" || true

# Every function callgrind saw run in the binary, by instructions spent in it, most first:
# those with a cost block of their own (fn= under the binary's ob=) and those only seen
# called (cfn= with the binary as cob=, which defaults to the caller's object: drop glue
# that jumps straight on has no block). Callgrind marks recursion levels with a 'N suffix.
mkdir -p "$(dirname "$out")"
awk -v bin="$bin" '
  /^ob=/ { ob = substr($0, 4); cob = ob }
  /^fn=/ { fn = (ob == bin) ? substr($0, 4) : ""; cob = ob; if (fn != "") cost[fn] += 0; next }
  /^cob=/ { cob = substr($0, 5); next }
  /^cfn=/ { if (cob == bin) cost[substr($0, 5)] += 0; next }
  /^calls=/ { skip = 1; next }
  /^[0-9+*-]/ { if (skip) { skip = 0; cob = ob; next } if (fn != "") cost[fn] += $2 }
  END { for (f in cost) print cost[f], f }
' "$work/callgrind.out" | sort -k1,1nr -k2 | awk '{ sub(/'"'"'[0-9]+$/, "", $2) } !seen[$2]++ { print $2 }' > "$out.new"
[ -s "$out.new" ] || { echo "orderfile: callgrind recorded no function of $bin" >&2; exit 1; }
mv "$out.new" "$out"
echo "orderfile: $(wc -l < "$out") functions in $out"
