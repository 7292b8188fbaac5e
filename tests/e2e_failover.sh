#!/usr/bin/env bash
# End-to-end failover test of a real 3-node cluster (three titand
# processes on free loopback ports): the leader is killed with SIGKILL
# (a crash: no leadership transfer, nothing flushed) FAILOVER_TRIALS times
# (default 3); each time a put sent through the survivors must succeed --
# the gateways forward to the new leader and retry while there is none,
# so a crash costs latency, not errors -- and the killed node, restarted
# from its directory, must hold the key.  Prints the time from the kill to
# the acknowledged put of every trial, and the median and max.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
trials=${FAILOVER_TRIALS:-3}
D=$E2E_DIR
declare -a PIDS CLIENT PEER
for n in 1 2 3; do
  CLIENT[$n]="127.0.0.1:$(e2e_free_port)"
  PEER[$n]="127.0.0.1:$(e2e_free_port)"
  PIDS[$n]=""
done
all="${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}"
trap 'for n in 1 2 3; do [ -n "${PIDS[$n]}" ] && kill -9 "${PIDS[$n]}" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"' EXIT

start_node () {   # N
  local n=$1 join=()
  [ "$n" = 1 ] || join=(--join "${PEER[1]}")
  "$TITAND" --node-id "f$n" --data-dir "$D/data$n" \
    --client-addr "${CLIENT[$n]}" --peer-addr "${PEER[$n]}" "${join[@]}" \
    --module-path "$TITAN_MODULE_PATH" >>"$D/titand$n.log" 2>&1 &
  PIDS[$n]=$!
}
ctl () { "$TITANCTL" "$@"; }
leader_index () {   # prints the index of the leader the survivors name
  local n id
  for n in 1 2 3; do
    [ -n "${PIDS[$n]}" ] || continue
    id=$(ctl --endpoints="${CLIENT[$n]}" --timeout=1s -w json status 2>/dev/null \
         | sed -n 's/.*"leader":"f\([0-9]\)".*/\1/p')
    [ -n "$id" ] && [ -n "${PIDS[$id]}" ] && { echo "$id"; return 0; }
  done
  return 1
}
wait_local () {   # N KEY VALUE: polls a LOCAL read on node N (20 s)
  local deadline=$(( $(date +%s) + 20 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(ctl --endpoints="${CLIENT[$1]}" --timeout=1s get "$2" --consistency=local 2>/dev/null)" = "$3" ] && return 0
    sleep 0.05
  done
  e2e_fail "node $1 did not get $2=$3 within 20 s"
}

start_node 1
for _ in $(seq 1 300); do
  ctl --endpoints="${CLIENT[1]}" --timeout=1s status >/dev/null 2>&1 && break
  sleep 0.1
done
start_node 2
start_node 3
up=0
for _ in $(seq 1 300); do
  up=$(ctl --endpoints="${CLIENT[1]}" --timeout=1s -w json member list 2>/dev/null \
       | grep -o '"state":"up"' | wc -l) || up=0
  [ "$up" -ge 3 ] && break
  sleep 0.1
done
[ "$up" -ge 3 ] || e2e_fail "the 3 nodes did not become voters"
ctl --endpoints="$all" put warmup 1 >/dev/null || e2e_fail "first put failed"

times=()
for t in $(seq 1 "$trials"); do
  l=$(leader_index) || e2e_fail "no leader before trial $t"
  wait_local "$l" warmup 1
  survivors=""
  for n in 1 2 3; do [ "$n" = "$l" ] || survivors="$survivors${survivors:+,}${CLIENT[$n]}"; done
  start=$(date +%s%N)
  kill -9 "${PIDS[$l]}"; wait "${PIDS[$l]}" 2>/dev/null; PIDS[$l]=""
  ctl --endpoints="$survivors" --timeout=10s put "after-kill-$t" v >/dev/null 2>"$D/err" \
    || e2e_fail "trial $t: put after killing the leader f$l failed: $(cat "$D/err")"
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "trial $t: leader f$l killed -> put acknowledged in $ms ms"
  start_node "$l"
  wait_local "$l" "after-kill-$t" v
done
for n in 1 2 3; do
  for t in $(seq 1 "$trials"); do wait_local "$n" "after-kill-$t" v; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | sed -n "$(( (trials + 1) / 2 ))p")
max=$(printf '%s\n' "$sorted" | tail -1)
echo "failover (kill -9 of the leader, $trials trials): median $median ms, max $max ms"
for n in 1 2 3; do
  if grep -q -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/titand$n.log"; then
    grep -A 30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/titand$n.log" | head -60 >&2
    e2e_fail "sanitizer report in titand$n.log"
  fi
done
exit 0
