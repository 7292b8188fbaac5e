#!/bin/bash
# Container health check: asks the local titand for its status over the
# client (gRPC) port.  The address is TITAN_CLIENT_ADDR with a wildcard host
# (0.0.0.0, [::], *) replaced by loopback, so it works whether titand
# listens on every interface (image default) or on the container's own
# address (compose: nodeN:7400).  Exits 0 healthy, 1 not.
set -uo pipefail
addr=${TITAN_CLIENT_ADDR:-127.0.0.1:7400}
port=${addr##*:}
host=${addr%:*}
case "$host" in
  ''|0.0.0.0|'[::]'|'*') host=127.0.0.1 ;;
esac
exec titanctl --endpoints="$host:$port" --timeout=2s status >/dev/null
