#!/usr/bin/env bash
# Single-node figures of Titan-KV's client API: starts one titand on free
# loopback ports in a temporary directory and runs bench/kv_load for
# durable puts and gets at 1 and 64 concurrent clients.  Prints one line
# per run (ops/s, p50, p99).  Usage: bench/kv_load.sh BUILDDIR [REQUESTS]
set -euo pipefail
build=${1:?usage: kv_load.sh BUILDDIR [REQUESTS]}
requests=${2:-2000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/titan-bench.XXXXXX")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
peer=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/titand" --node-id bench --data-dir "$dir/data" --client-addr "127.0.0.1:$port" \
  --peer-addr "127.0.0.1:$peer" \
  --module-path "$build/modules/bitcask/.libs:$build/modules/grpc_gateway/.libs" \
  >"$dir/titand.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do
  "$build/cli/titanctl" --endpoints="127.0.0.1:$port" --timeout=1s status >/dev/null 2>&1 && break
  sleep 0.1
done
load="$build/bench/kv_load --endpoint=127.0.0.1:$port --keys=10000 --value-size=100 --max-seconds=60"
$load --op=put --clients=1 --requests="$requests"
$load --op=put --clients=64 --requests=$(( requests / 8 > 0 ? requests / 8 : 1 ))
$load --op=get --clients=1 --requests="$requests"
$load --op=get --clients=64 --requests=$(( requests / 8 > 0 ? requests / 8 : 1 ))
