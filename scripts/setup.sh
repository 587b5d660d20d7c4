#!/usr/bin/env bash
# Installs what Portcullis' demo and tests need on a Debian machine: containerd, runc,
# dockerd, Podman, busybox (for the local test image) and protoc (for containerd's protos).
# Idempotent; run as root.
set -euo pipefail
packages=(containerd runc docker.io podman busybox-static protobuf-compiler iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: installing ${missing[*]} needs root" >&2; exit 1; }
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required" >&2; exit 1; }
