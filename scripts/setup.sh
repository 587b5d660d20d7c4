#!/usr/bin/env bash
# Installs what Portcullis' demo and tests need on a Debian machine: containerd, runc,
# dockerd, Podman, busybox (for the local test image), the CNI plugins (for CRI pods' networks),
# protoc (for containerd's protos), and the third-party gRPC clients of the proxy's
# compatibility matrix (grpc-go built offline in GOPATH mode, Debian's python3-grpcio) with
# socat, the byte-relay floor of the proxy benchmark, and runtime-spec's Go types for
# tests/gojson.rs (Go's own JSON decoder as the oracle), and a registry for the image tests
# (Debian's docker-registry, distribution 2.8, with skopeo to push and openssl for its test CA:
# tests/common/registry.rs), and what tests/package.rs uses to build, install and check the
# .deb (cargo-deb from crates.io, binutils to strip, man-db, systemd-analyze).
# Idempotent; run as root.
set -euo pipefail
packages=(containerd runc docker.io podman busybox-static protobuf-compiler iproute2
  containernetworking-plugins
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-opencontainers-specs-dev
  python3-grpcio python3-venv socat openssl docker-registry skopeo
  binutils man-db systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: installing ${missing[*]} needs root" >&2; exit 1; }
  echo "setup: installing ${missing[*]}" >&2
  # docker-registry's postinst adds its system user with a GECOS field through chfn, which
  # fails where PAM is not set up (containers: "chfn: PAM: Critical error"); the postinst
  # skips adduser when the user exists, so make it first, without GECOS.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && ! getent passwd docker-registry >/dev/null; then
    adduser --system --home /var/lib/docker-registry --no-create-home --group docker-registry >/dev/null
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # The tests start their own registries on random loopback ports with their own config; the
  # packaged service (on :5000, with htpasswd auth) is of no use to them: stop and disable it
  # when we are the ones installing it, so a registry someone runs on purpose is left alone.
  if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/docker-registry ]; then
      invoke-rc.d docker-registry stop >/dev/null 2>&1 || true
      update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
  fi
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required" >&2; exit 1; }

# cargo-deb for scripts/package.sh (tests/package.rs); a cargo install compiles it (minutes),
# so only when it is missing.
if ! command -v cargo-deb >/dev/null; then
  echo "setup: installing cargo-deb from crates.io" >&2
  cargo install cargo-deb --locked
fi

# --- Python grpcio from PyPI, for the proxy's compatibility matrix (tests/clients/python.rs).
# gRPC C-core >= 1.57 sends the socket path percent-encoded as `:authority`; Debian's
# python3-grpcio (1.51, above) still sends `localhost`: the matrix runs both. The venv is on
# Debian's interpreter (not whatever `python3` is on PATH) and lives in target/clients-venv;
# skipped when it already imports a grpcio >= 1.57.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/clients-venv"
if ! "$venv/bin/python" -c 'import grpc, sys; sys.exit(tuple(map(int, grpc.__version__.split(".")[:2])) < (1, 57))' 2>/dev/null; then
  echo "setup: installing grpcio>=1.57 from PyPI into $venv" >&2
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'grpcio>=1.57'
fi
