#!/usr/bin/env bash
# Figures of Titan-KV's client API: starts NODES titand processes (default
# 1) on free loopback ports in a temporary directory -- the first
# bootstraps, the others join it -- waits until all are voters, and runs
# bench/kv_load against node TARGET (default 1: the leader after
# bootstrap; another one measures the forwarding through a follower) for
# durable puts (through Raft) and linearizable gets at 1 and 64 concurrent
# clients.  Prints one line per run (ops/s, p50, p99).
# Usage: bench/kv_load.sh BUILDDIR [REQUESTS] [NODES] [TARGET]
set -euo pipefail
build=${1:?usage: kv_load.sh BUILDDIR [REQUESTS] [NODES]}
requests=${2:-2000}
nodes=${3:-1}
target=${4:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/titan-bench.XXXXXX")
free_port () {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
modules="$build/modules/bitcask/.libs:$build/modules/raft/.libs:$build/modules/grpc_gateway/.libs"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
first_peer=
endpoint=
first=
for n in $(seq 1 "$nodes"); do
  port=$(free_port)
  peer=$(free_port)
  join=()
  if [ -z "$first_peer" ]; then
    first_peer="127.0.0.1:$peer"
    first="127.0.0.1:$port"
  else
    join=(--join "$first_peer")
  fi
  [ "$n" != "$target" ] || endpoint="127.0.0.1:$port"
  "$build/titand" --node-id "bench$n" --data-dir "$dir/data$n" \
    --client-addr "127.0.0.1:$port" --peer-addr "127.0.0.1:$peer" \
    "${join[@]}" --module-path "$modules" >"$dir/titand$n.log" 2>&1 &
  pids+=($!)
done
ok=
for _ in $(seq 1 300); do
  up=$("$build/cli/titanctl" --endpoints="$first" --timeout=1s -w json member list 2>/dev/null \
       | grep -o '"state":"up"' | wc -l) || up=0
  if [ "$up" -ge "$nodes" ]; then ok=1; break; fi
  sleep 0.1
done
[ -n "$endpoint" ] || { echo "kv_load.sh: TARGET $target is not one of the $nodes nodes" >&2; exit 2; }
[ -n "$ok" ] || { tail -20 "$dir"/titand*.log >&2; echo "kv_load.sh: the $nodes nodes did not come up" >&2; exit 1; }
load="$build/bench/kv_load --endpoint=$endpoint --keys=10000 --value-size=100 --max-seconds=60"
$load --op=put --clients=1 --requests="$requests"
$load --op=put --clients=64 --requests=$(( requests / 8 > 0 ? requests / 8 : 1 ))
$load --op=get --clients=1 --requests="$requests"
$load --op=get --clients=64 --requests=$(( requests / 8 > 0 ? requests / 8 : 1 ))
