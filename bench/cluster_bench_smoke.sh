#!/usr/bin/env bash
# make check: bench/cluster_bench against real servers, briefly.  One
# titand (tests/e2e_lib.sh): preload, puts, linearizable and local gets,
# the mix, each with no error; gets over keys that were never written
# are counted as NOT_FOUND errors; the failover operation kills the
# process it is given (a `sleep` stand-in here) and reports the first
# write after it.  Then, when etcd and etcdctl are installed (Debian
# etcd-server, etcd-client), the same against a one-member etcd on free
# ports, which checks that bench/etcd_rpc.proto matches etcd's wire
# format: a Range decoded wrongly could not count a single success.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
BENCH=$TITAN_BUILDDIR/bench/cluster_bench
[ -x "$BENCH" ] || e2e_skip "bench/cluster_bench is not built"

field () { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
# run NAME ARGS...: runs cluster_bench; fails unless it exits 0 with
# successful calls and no error.
run () {
  local name=$1 out
  shift
  out=$("$BENCH" "$@" 2>"$E2E_DIR/bench.err") \
    || { cat "$E2E_DIR/bench.err" >&2; e2e_fail "$name: cluster_bench $* exited non-zero"; }
  echo "$name: $out"
  [ "$(field ops "$out")" -gt 0 ] || e2e_fail "$name: no successful call"
  [ "$(field errors "$out")" = 0 ] || { cat "$E2E_DIR/bench.err" >&2; e2e_fail "$name: errors"; }
}
# suite SYSTEM ENDPOINT
suite () {
  local s=(--system="$1" --endpoints="$2" --keys=200 --clients=4)
  local t=(--seconds=1 --warmup=0)
  run "$1 preload" "${s[@]}" --op=preload
  run "$1 put" "${s[@]}" "${t[@]}" --op=put
  run "$1 get" "${s[@]}" "${t[@]}" --op=get
  run "$1 local get" "${s[@]}" "${t[@]}" --op=get --local
  run "$1 mix" "${s[@]}" "${t[@]}" --op=mix
  # 9-digit keys were never written: every get is NOT_FOUND, an error,
  # and a run without one success exits 1
  local out rc=0
  out=$("$BENCH" "${s[@]}" --key-size=9 --seconds=3 --warmup=0 --op=get 2>"$E2E_DIR/bench.err") || rc=$?
  echo "$1 missing keys: $out"
  [ $rc = 1 ] || e2e_fail "$1 missing keys: exit $rc, expected 1 (no success)"
  [ "$(field ops "$out")" = 0 ] && [ "$(field errors "$out")" -gt 0 ] \
    || e2e_fail "$1 missing keys: not counted as errors"
  grep -q NOT_FOUND "$E2E_DIR/bench.err" || e2e_fail "$1 missing keys: errors are not NOT_FOUND"
  sleep 60 & local victim=$!
  out=$("$BENCH" --system="$1" --endpoints="$2" --op=failover --kill-pid=$victim --seconds=10) \
    || e2e_fail "$1 failover: no write after the kill"
  echo "$1 failover: $out"
  wait $victim 2>/dev/null
  [ $? = 137 ] || e2e_fail "$1 failover: the process was not killed with SIGKILL"
  [ -n "$(field failover_s "$out")" ] || e2e_fail "$1 failover: no failover_s"
}

# usage errors exit 2
"$BENCH" --system=redis --endpoints=127.0.0.1:1 >/dev/null 2>&1
[ $? = 2 ] || e2e_fail "an unknown --system is not a usage error"
"$BENCH" --system=titan --endpoints=127.0.0.1:1 --op=failover >/dev/null 2>&1
[ $? = 2 ] || e2e_fail "--op=failover without --kill-pid is not a usage error"

e2e_start
suite titan "$E2E_ENDPOINT"
e2e_stop

if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
  client="127.0.0.1:$(e2e_free_port)"
  peer="127.0.0.1:$(e2e_free_port)"
  etcd --name smoke --data-dir "$E2E_DIR/etcd" --listen-client-urls "http://$client" \
    --advertise-client-urls "http://$client" --listen-peer-urls "http://$peer" \
    --initial-advertise-peer-urls "http://$peer" --initial-cluster "smoke=http://$peer" \
    --logger zap --log-outputs stderr >"$E2E_DIR/etcd.log" 2>&1 &
  etcd_pid=$!
  trap 'kill -9 $etcd_pid 2>/dev/null; wait $etcd_pid 2>/dev/null; e2e_cleanup' EXIT
  deadline=$(( $(date +%s) + 60 ))
  until etcdctl --endpoints="$client" --command-timeout=2s endpoint health >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $deadline ] || { tail -20 "$E2E_DIR/etcd.log" >&2; e2e_fail "etcd did not start within 60 s"; }
    sleep 0.2
  done
  suite etcd "$client"
  [ "$(etcdctl --endpoints="$client" get 00000007 --print-value-only | wc -c)" -ge 256 ] \
    || e2e_fail "etcdctl does not read back a 256-byte value put by cluster_bench"
else
  echo "etcd or etcdctl not installed (scripts/install-deps.sh): etcd part skipped"
fi
exit 0
