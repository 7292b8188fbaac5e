#!/usr/bin/env bash
# Titan-KV chaos harness: one run (docs/chaos.md).
#
#   chaos_run.sh [--duration=S] [--faults=all|KIND,KIND...] [--seed=N]
#                [--nodes=N] [--shards=N] [--placement=static|ring]
#                [--clients=N] [--keys=N]
#                [--results=DIR] [--unsafe-local-reads] [--keep]
#
# --placement=static (default): every node hosts shards 0..N-1 (--shards,
# default one group).  --placement=ring: the product's defaults (the ring
# module, 16 shards, 3 replicas each, placed by the ring; --shards is
# ignored); faults aimed at "the leader" aim at shard 0's, the others'
# leaders are wherever balancing put them; the `member` fault is refused
# (it adds a removed id back, and the ring keeps removed ids as
# tombstones).
#
# Builds the network (chaos_net.sh) and the cluster (chaos_cluster.sh),
# starts chaos_client (the workload, recording the history), runs the
# seeded fault schedule (chaos_nemesis.sh) for the duration, heals
# everything, waits for a healthy cluster, tells the client to stop and
# verify (final reads, durability, convergence, per-key linearizability),
# and prints exactly one summary line last:
#
#   ops: N faults: M unknown: U anomalies: A linearizable: true|false
#
# On failure (or with --keep) the history, node logs, configs, the fault
# schedule and log, the client's output and the seed are saved under
# RESULTS/<timestamp>-<seed>/ and the path is printed.  Exit status: 0
# clean, 1 anomaly or harness failure, 77 cannot run here (no root or no
# network namespaces).  Everything the run creates (namespaces, bridge,
# processes, temporary files) is removed on exit, also on failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${TITAN_BUILDDIR:?TITAN_BUILDDIR is not set (run through make chaos / make check)}"
: "${TITAN_MODULE_PATH:?TITAN_MODULE_PATH is not set}"

duration=120 faults=all seed=$(date +%s) nodes=3 shards=1 placement=static clients=8 keys=5
results="$TITAN_BUILDDIR/chaos-results" unsafe="" keep=0
for arg in "$@"; do
  case $arg in
    --duration=*) duration=${arg#*=} ;;
    --faults=*) faults=${arg#*=} ;;
    --seed=*) seed=${arg#*=} ;;
    --nodes=*) nodes=${arg#*=} ;;
    --shards=*) shards=${arg#*=} ;;
    --placement=*) placement=${arg#*=} ;;
    --clients=*) clients=${arg#*=} ;;
    --keys=*) keys=${arg#*=} ;;
    --results=*) results=${arg#*=} ;;
    --unsafe-local-reads) unsafe=--unsafe-local-reads ;;
    --keep) keep=1 ;;
    *) echo "chaos_run: unknown argument $arg" >&2; exit 2 ;;
  esac
done
for v in "$duration" "$seed" "$nodes" "$shards" "$clients" "$keys"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "chaos_run: '$v' is not a number" >&2; exit 2; }
done
[ "$nodes" -ge 3 ] && [ "$nodes" -le 9 ] || { echo "chaos_run: --nodes 3..9" >&2; exit 2; }
case $placement in
  static|ring) ;;
  *) echo "chaos_run: --placement is static or ring, not '$placement'" >&2; exit 2 ;;
esac

. "$here/chaos_net.sh"
. "$here/chaos_cluster.sh"
. "$here/chaos_nemesis.sh"

[ "$faults" = all ] && faults=${NEM_KINDS_ALL// /,}
kinds=${faults//,/ }
for k in $kinds; do
  [[ " $NEM_KINDS_ALL " == *" $k "* ]] || { echo "chaos_run: unknown fault kind '$k' (kinds: $NEM_KINDS_ALL)" >&2; exit 2; }
done
if [ "$placement" = ring ]; then
  [ "$faults" = "${NEM_KINDS_ALL// /,}" ] && kinds=${NEM_KINDS_ALL/ member/}
  [[ " $kinds " != *" member "* ]] \
    || { echo "chaos_run: the member fault needs --placement=static (the ring keeps a removed id as a tombstone)" >&2; exit 2; }
fi

TITAND=""
for c in "$TITAN_BUILDDIR/titand" "$TITAN_BUILDDIR/kernel/titand"; do
  [ -x "$c" ] && { TITAND=$c; break; }
done
TITANCTL="$TITAN_BUILDDIR/cli/titanctl"
CLIENT="$TITAN_BUILDDIR/tests/chaos/chaos_client"
for p in "$TITAND" "$TITANCTL" "$CLIENT"; do
  [ -n "$p" ] && [ -x "$p" ] || { echo "SKIP: titand, titanctl or chaos_client is not built in $TITAN_BUILDDIR"; exit 77; }
done
if ! why=$(net_can_run); then
  echo "SKIP: cannot make network namespaces here: $why"
  exit 77
fi

CL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/titan-chaos.XXXXXX")
CL_N=$nodes
CL_SHARDS=$shards
CL_PLACEMENT=$placement
client_pid=""
cleanup () {
  [ -n "$client_pid" ] && kill -9 "$client_pid" 2>/dev/null
  cl_stop_all
  net_cleanup
  wait 2>/dev/null
  rm -rf "$CL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

save_results () {   # REASON
  local dir
  dir="$results/$(date -u +%Y%m%dT%H%M%SZ)-$seed"
  mkdir -p "$dir" || return 1
  echo "$seed" >"$dir/seed"
  echo "chaos_run.sh --duration=$duration --faults=$faults --seed=$seed --nodes=$nodes --shards=$shards --placement=$placement --clients=$clients --keys=$keys $unsafe" >"$dir/command"
  echo "$1" >"$dir/reason"
  cp "$CL_DIR"/schedule "$CL_DIR"/faults.log "$CL_DIR"/cluster.log "$CL_DIR"/client.out \
     "$CL_DIR"/client.err "$CL_DIR"/history.txt "$dir/" 2>/dev/null
  mkdir -p "$dir/acks"
  cp "$CL_DIR"/acks/* "$dir/acks/" 2>/dev/null
  local i
  for i in $(seq 1 "$nodes"); do
    cp "$CL_DIR/n$i/titand.log" "$dir/titand-n$i.log" 2>/dev/null
    cp "$CL_DIR/n$i/titan.cfg" "$dir/titan-n$i.cfg" 2>/dev/null
  done
  echo "chaos: results saved in $dir"
}

# Any failure before the client's verdict ends here (one summary line).
harness_fail () {
  echo "chaos: $*" >&2
  save_results "harness: $*"
  echo "ops: 0 faults: $NEM_INJECTED unknown: 0 anomalies: 0 linearizable: false"
  exit 1
}

touch "$CL_DIR/faults.log" "$CL_DIR/cluster.log"
net_setup "$nodes" || harness_fail "network set-up failed"
echo "chaos: seed $seed, $nodes nodes ($placement placement) on 10.77.$NET_X.0/24, $duration s, faults: $kinds${unsafe:+, UNSAFE local reads}"
t0=$(date +%s)
cl_form || harness_fail "the $nodes-node cluster did not form within 120 s"
echo "chaos: cluster formed in $(( $(date +%s) - t0 )) s"
nem_plan "$seed" "$duration" "$kinds" "$CL_DIR/schedule"
echo "chaos: $(wc -l <"$CL_DIR/schedule") faults planned (schedule: $(md5sum <"$CL_DIR/schedule" | cut -c1-12))"

mkdir -p "$CL_DIR/acks"
"$CLIENT" --endpoints="$(cl_all_clients)" --clients="$clients" --keys="$keys" \
  --seed="$seed" --history="$CL_DIR/history.txt" --acks-dir="$CL_DIR/acks" \
  --max-seconds=$(( duration + 3600 )) --final-seconds=60 --check-ms="${CHAOS_CHECK_MS:-120000}" $unsafe \
  >"$CL_DIR/client.out" 2>"$CL_DIR/client.err" &
client_pid=$!
start=$(date +%s)
nem_run "$CL_DIR/schedule" "$start" $(( start + duration ))
echo "chaos: fault schedule done at $(( $(date +%s) - start )) s:"
sed 's/^/  /' "$CL_DIR/faults.log"
now=$(date +%s)
[ $(( start + duration )) -gt "$now" ] && sleep $(( start + duration - now ))
net_heal
cl_heal_all
cl_wait_healthy 120 || harness_fail "the cluster was not healthy 120 s after the last fault healed"
echo "chaos: healthy at $(( $(date +%s) - start )) s; final reads and checks"
kill -USR1 "$client_pid"
client_rc=0
wait "$client_pid" || client_rc=$?
client_pid=""
line=$(grep '^client: ' "$CL_DIR/client.out" | tail -1)
echo "chaos: verdict at $(( $(date +%s) - start )) s"
[ -n "$line" ] || harness_fail "chaos_client ended ($client_rc) without a verdict: $(tail -3 "$CL_DIR/client.err")"
set -- $line
ops=$3 unknown=$5 anomalies=$7 lin=${17}
by_kind=""
for k in $NEM_KINDS_ALL; do
  [ -n "${NEM_COUNT[$k]:-}" ] && by_kind="$by_kind $k=${NEM_COUNT[$k]}"
done
echo "chaos: faults injected by kind:${by_kind:- none}"
echo "chaos: client: $line"
grep -E '^(durability|convergence|key )' "$CL_DIR/client.err" | head -40
if [ "$client_rc" != 0 ] || [ "$anomalies" != 0 ] || [ "$lin" != true ]; then
  save_results "client exit $client_rc: $line"
elif [ "$keep" = 1 ]; then
  save_results "kept on request (clean run)"
fi
echo "ops: $ops faults: $NEM_INJECTED unknown: $unknown anomalies: $anomalies linearizable: $lin"
[ "$client_rc" = 0 ] && [ "$anomalies" = 0 ] && [ "$lin" = true ]
