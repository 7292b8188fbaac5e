#!/bin/bash
# Entry point of the Titan-KV container.  It turns the TITAN_* environment
# variables a compose file sets into titand arguments, then execs titand so
# that titand is PID 1 and `docker stop` (SIGTERM) reaches it directly.
#
#   TITAN_NODE_ID      --node-id=ID        (default: titand's, node1; not the
#                                           hostname, which a new container changes)
#   TITAN_DATA_DIR     --data-dir=DIR      (image default: /var/lib/titan)
#   TITAN_CLIENT_ADDR  --client-addr=H:P   (image default: 0.0.0.0:7400)
#   TITAN_PEER_ADDR    --peer-addr=H:P     (image default: 0.0.0.0:7401)
#   TITAN_CONFIG       --config=FILE
#   TITAN_BOOTSTRAP=1  --bootstrap         (create a new cluster)
#   TITAN_JOIN=H:P     --join=H:P          (join through that peer; titand retries)
#
# Arguments: none runs titand; arguments starting with '-' are appended to
# titand's; anything else is run instead (e.g. `titanctl status`, `bash`).
#
# titand binds its peer port on exactly the address it advertises, and
# ZeroMQ cannot bind a host name, so a peer address given by name
# (compose: node1:7401) is resolved here to the container's IPv4 address.
# Peers then know the node by that address, which is why the compose file
# gives every node a fixed one.
set -euo pipefail
TITAN_BOOTSTRAP=${TITAN_BOOTSTRAP:-0}

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

args=()
[ -n "${TITAN_NODE_ID:-}" ] && args+=("--node-id=$TITAN_NODE_ID")
[ -n "${TITAN_DATA_DIR:-}" ] && args+=("--data-dir=$TITAN_DATA_DIR")
[ -n "${TITAN_CLIENT_ADDR:-}" ] && args+=("--client-addr=$TITAN_CLIENT_ADDR")
if [ -n "${TITAN_PEER_ADDR:-}" ]; then
  peer_host=${TITAN_PEER_ADDR%:*}
  peer_port=${TITAN_PEER_ADDR##*:}
  case "$peer_host" in
    *[!0-9.]*)
      case "$peer_host" in '['*|'*') ;; *)
        ip=$(getent ahostsv4 "$peer_host" | awk '{print $1; exit}') || ip=""
        [ -n "$ip" ] || { echo "entrypoint: cannot resolve '$peer_host' (TITAN_PEER_ADDR)" >&2; exit 1; }
        echo "entrypoint: peer address $TITAN_PEER_ADDR is $ip:$peer_port" >&2
        peer_host=$ip ;;
      esac ;;
  esac
  args+=("--peer-addr=$peer_host:$peer_port")
fi
[ -n "${TITAN_CONFIG:-}" ] && args+=("--config=$TITAN_CONFIG")
case "${TITAN_BOOTSTRAP,,}" in
  1|yes|true|on) args+=("--bootstrap") ;;
  0|no|false|off|'') ;;
  *) echo "entrypoint: TITAN_BOOTSTRAP must be 1 or 0, not '$TITAN_BOOTSTRAP'" >&2; exit 2 ;;
esac
if [ -n "${TITAN_JOIN:-}" ]; then
  case "$TITAN_JOIN" in
    ?*:[0-9]*) args+=("--join=$TITAN_JOIN") ;;
    *) echo "entrypoint: TITAN_JOIN must be host:port, not '$TITAN_JOIN'" >&2; exit 2 ;;
  esac
fi

exec titand "${args[@]}" "$@"
