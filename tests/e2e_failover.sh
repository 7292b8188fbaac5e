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
ctl () { "$TITANCTL" "$@"; }
e2e_cluster_init 3 f
e2e_cluster_start
ctl --endpoints="$E2E_ALL" put warmup 1 >/dev/null || e2e_fail "first put failed"

times=()
for t in $(seq 1 "$trials"); do
  l=$(e2e_cluster_wait_leader) || e2e_fail "no leader before trial $t"
  e2e_wait_local "$l" warmup 1
  survivors=""
  for n in 1 2 3; do [ "$n" = "$l" ] || survivors="$survivors${survivors:+,}${E2E_CLIENT[$n]}"; done
  start=$(date +%s%N)
  e2e_cluster_kill9 "$l"
  ctl --endpoints="$survivors" --timeout=10s put "after-kill-$t" v >/dev/null 2>"$D/err" \
    || e2e_fail "trial $t: put after killing the leader f$l failed: $(cat "$D/err")"
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "trial $t: leader f$l killed -> put acknowledged in $ms ms"
  e2e_node_start "$l"
  e2e_wait_local "$l" "after-kill-$t" v
done
for n in 1 2 3; do
  for t in $(seq 1 "$trials"); do e2e_wait_local "$n" "after-kill-$t" v; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | sed -n "$(( (trials + 1) / 2 ))p")
max=$(printf '%s\n' "$sorted" | tail -1)
echo "failover (kill -9 of the leader, $trials trials): median $median ms, max $max ms"
e2e_cluster_check_logs
exit 0
