#!/usr/bin/env bash
# Builds the Debian package (docs/packaging.md): the binary (stripped), the systemd units,
# /etc/portcullis/config.yaml (a conffile), man pages and shell completions generated from the
# built binary, and the docs. Prints the path of each package made.
#
#   scripts/package.sh [--profile release|dev] [--out DIR]
#
# --profile release (default): `cargo build --release`, then a -dbgsym .ddeb beside the .deb
#   with the debug info split out of the binary (the release profile keeps line tables).
# --profile dev: packages the already-built target/debug/portcullis (built if missing), so CI
#   needs no release build; stripped, no dbgsym package, fast compression. For tests only.
# Installs cargo-deb (crates.io) when it is missing.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

usage() { echo "usage: scripts/package.sh [--profile release|dev] [--out DIR]" >&2; }
profile=release
out="$repo/target/debian"
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || { usage; exit 2; }; profile="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || { usage; exit 2; }; out="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "package: unknown argument '$1'" >&2; usage; exit 2 ;;
  esac
done
case "$profile" in
  release | dev) ;;
  *) echo "package: --profile is release or dev, not '$profile'" >&2; exit 2 ;;
esac
# --out is relative to where the script was called from, not to the repository.
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$repo"
command -v objcopy >/dev/null || { echo "package: objcopy (binutils) is needed to strip the binary" >&2; exit 1; }
if ! command -v cargo-deb >/dev/null; then
  echo "package: installing cargo-deb from crates.io" >&2
  cargo install cargo-deb --locked
fi

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$profile" = release ]; then
  cargo build --release --locked --bin portcullis
  deb_target="$target_dir"
  deb_flags=(--dbgsym)
else
  bin="$target_dir/debug/portcullis"
  [ -x "$bin" ] || cargo build --locked --bin portcullis
  # cargo-deb packages release-profile builds only (the dev profile is refused by design): it
  # is shown a target directory of its own whose release/ is a hard link to the dev binary.
  # It strips into a copy, so target/debug/portcullis stays as built.
  deb_target="$target_dir/package-dev"
  rm -rf "$deb_target"
  mkdir -p "$deb_target/release"
  ln "$bin" "$deb_target/release/portcullis" 2>/dev/null || cp "$bin" "$deb_target/release/portcullis"
  deb_flags=(--strip --fast)
fi
bin="$deb_target/release/portcullis"

# Generated from the binary being packaged, so they describe exactly its flags.
assets="$deb_target/release/package-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/portcullis.bash"
"$bin" completions zsh >"$assets/completions/_portcullis"
"$bin" completions fish >"$assets/completions/portcullis.fish"

# cargo-deb prints the path of each package it wrote on stdout.
CARGO_TARGET_DIR="$deb_target" cargo deb --no-build --locked --output "$out" "${deb_flags[@]}"
# The dev form's directory is only the link and cargo-deb's stripped copy (60 MB): not kept.
if [ "$profile" = dev ]; then rm -rf "$deb_target"; fi
