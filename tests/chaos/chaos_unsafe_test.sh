#!/usr/bin/env bash
# make check: the harness must be able to fail.  chaos_client
# --unsafe-local-reads sends every get with LOCAL consistency (served by
# whichever replica the client asked, possibly stale) but records it as a
# linearizable read.  Under partitions that isolate the leader, the
# isolated node keeps answering reads from its stale replica while the
# majority commits new writes, and the checker must report the history as
# not linearizable.  The test passes only if the run FAILS with
# anomalies > 0 and linearizable: false.  Skips (77) like the other runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
results=$(mktemp -d "${TMPDIR:-/tmp}/titan-chaos-unsafe.XXXXXX")
trap 'rm -rf "$results"' EXIT
rc=0
"$here/chaos_run.sh" --duration="${CHAOS_UNSAFE_DURATION:-20}" --nodes=3 \
  --seed="${CHAOS_SEED:-4242}" --faults=partition-leader --unsafe-local-reads \
  --results="$results" >"$results/out" 2>&1 || rc=$?
cat "$results/out"
[ "$rc" = 77 ] && exit 77
last=$(tail -1 "$results/out")
case $last in
  ops:*anomalies:\ 0\ *) echo "FAIL: stale LOCAL reads were not caught (exit $rc)"; exit 1 ;;
  ops:*linearizable:\ false)
    if grep -q "not linearizable" "$results"/*/client.err 2>/dev/null; then
      echo "PASS: the checker caught the unsafe reads:"
      grep -m1 -A12 "not linearizable" "$results"/*/client.err
      exit 0
    fi ;;
esac
echo "FAIL: the run did not end with a linearizability violation (exit $rc)"
exit 1
