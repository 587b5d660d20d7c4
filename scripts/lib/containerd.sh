# Sourced by scripts/demo.sh and scripts/orderfile.sh: a private containerd (own root, state
# and sockets under a temp dir, no CRI plugin) that the script's proxy stands in front of.
#
#   private_containerd NAME    sets $work (the temp dir) and starts containerd on
#                              $work/containerd.sock; NAME prefixes the dir and messages
#   wait_socket PATH WHAT LOG  waits up to WAIT_SECONDS (default 30) for a socket
#   pids+=(PID)                what to kill on exit, besides containerd

pids=()
_private_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

wait_socket() {
  local tries=$(( ${WAIT_SECONDS:-30} * 10 ))
  for _ in $(seq "$tries"); do [ -S "$1" ] && return 0; sleep 0.1; done
  echo "$_name: $2 did not start; log:" >&2; cat "$3" >&2; exit 1
}

private_containerd() {
  _name=$1
  work=$(mktemp -d "/tmp/portcullis-$_name.XXXXXX")
  trap _private_cleanup EXIT
  cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[debug]
  address = "$work/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
TOML
  containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 & pids+=($!)
  wait_socket "$work/containerd.sock" containerd "$work/containerd.log"
}
