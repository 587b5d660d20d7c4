#!/usr/bin/env bash
# Builds a one-layer busybox image from Debian's busybox-static (no network needed) as a
# tar that is both an OCI image layout (index.json, for `ctr image import`) and a
# docker-archive (manifest.json, for `docker load`).
#
#   scripts/busybox-image.sh OUT.tar REF...      e.g. docker.io/library/busybox:1.36
#
# IMAGE_CMD (a JSON array, default ["sh"]) is the image config's Cmd: the CRI tests' pause
# image is this image with IMAGE_CMD='["sleep","2147483647"]'. IMAGE_MARK, when set, is
# written to /etc/portcullis-mark, which gives the image a layer of its own.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT.tar REF..." >&2; exit 2; }
out=$(realpath -m "$1"); shift
busybox=$(command -v busybox) || { echo "busybox not found (apt-get install busybox-static)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p rootfs/bin rootfs/etc rootfs/tmp rootfs/proc rootfs/sys rootfs/dev blobs/sha256
cp "$busybox" rootfs/bin/busybox
for app in $(rootfs/bin/busybox --list); do [ "$app" = busybox ] || ln -s busybox "rootfs/bin/$app"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > rootfs/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > rootfs/etc/group
if [ -n "${IMAGE_MARK:-}" ]; then printf '%s\n' "$IMAGE_MARK" > rootfs/etc/portcullis-mark; fi
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C rootfs -cf layer.tar .

blob() { # FILE MEDIATYPE -> prints a descriptor, stores the blob
  local sha size; sha=$(sha256sum "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
  cp "$1" "blobs/sha256/$sha"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$sha" "$size"
}
layer_sha=$(sha256sum layer.tar | cut -d' ' -f1)
layer=$(blob layer.tar application/vnd.oci.image.layer.v1.tar)
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"portcullis scripts/busybox-image.sh"}]}' \
  "$arch" "${IMAGE_CMD:-[\"sh\"]}" "$layer_sha" > config.json
config=$(blob config.json application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' "$config" "$layer" > manifest.oci.json
manifest=$(blob manifest.oci.json application/vnd.oci.image.manifest.v1+json)

entries=(); tags=()
for ref in "$@"; do
  tag=${ref##*:}
  entries+=("${manifest%\}},\"annotations\":{\"io.containerd.image.name\":\"$ref\",\"org.opencontainers.image.ref.name\":\"$tag\"}}")
  short=${ref#docker.io/}; short=${short#library/}
  tags+=("\"$short\"")
done
printf '{"schemaVersion":2,"manifests":[%s]}' "$(IFS=,; echo "${entries[*]}")" > index.json
printf '{"imageLayoutVersion":"1.0.0"}' > oci-layout
config_sha=$(sha256sum config.json | cut -d' ' -f1)
printf '[{"Config":"blobs/sha256/%s","RepoTags":[%s],"Layers":["blobs/sha256/%s"]}]' \
  "$config_sha" "$(IFS=,; echo "${tags[*]}")" "$layer_sha" > manifest.json
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf "$out" oci-layout index.json manifest.json blobs
