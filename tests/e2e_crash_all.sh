#!/usr/bin/env bash
# End-to-end durability test of a real 3-node cluster (three titand
# processes on free loopback ports): a writer (tests/e2e_kv_client, 3
# client threads putting distinct keys, each entering through another
# node) records every put that was acknowledged; while it writes, all
# three nodes are killed with SIGKILL in one kill(1) call (a power cut:
# nothing is flushed, no leadership is handed over), the writer is
# stopped, the nodes restarted from their directories, and every key
# acknowledged so far -- in this round and the ones before -- must read
# back with its value (linearizable Get).  CRASH_ROUNDS rounds (default
# 3); CRASH_ACKS acknowledged puts per round before the kill (default 200).
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
client="$TITAN_BUILDDIR/tests/e2e_kv_client"
[ -x "$client" ] || e2e_skip "tests/e2e_kv_client is not built"
rounds=${CRASH_ROUNDS:-3}
acks=${CRASH_ACKS:-200}
D=$E2E_DIR
e2e_cluster_init 3 c
e2e_cluster_start
endpoints=("${E2E_CLIENT[1]}" "${E2E_CLIENT[2]}" "${E2E_CLIENT[3]}")
acked_count () { [ -e "$D/acked" ] && wc -l <"$D/acked" || echo 0; }

for r in $(seq 1 "$rounds"); do
  rm -f "$D/stop"
  before=$(acked_count)
  "$client" put "r$r" 3 "$D/stop" "$D/acked" "${endpoints[@]}" >"$D/writer.out" 2>&1 &
  writer=$!
  E2E_HELPER_PIDS=("$writer")
  deadline=$(( $(date +%s) + 30 ))
  while [ "$(acked_count)" -lt $(( before + acks )) ]; do
    [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "round $r: fewer than $acks puts acknowledged in 30 s"
    sleep 0.02
  done
  # the writer is mid-put: kill every node at once
  e2e_cluster_kill9 1 2 3
  touch "$D/stop"
  wait "$writer" || e2e_fail "round $r: the writer failed: $(cat "$D/writer.out")"
  E2E_HELPER_PIDS=()
  echo "round $r: all nodes killed; writer: $(cat "$D/writer.out")"
  for n in 1 2 3; do e2e_node_start "$n"; done
  deadline=$(( $(date +%s) + 30 ))
  until e2e_cluster_leader >/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "round $r: no leader within 30 s of the restart"
    sleep 0.1
  done
  out=$("$client" verify "$D/acked" "${endpoints[@]}" 2>&1) \
    || e2e_fail "round $r: $out"
  echo "round $r: $out"
done
e2e_cluster_check_logs
exit 0
