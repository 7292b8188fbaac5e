#!/usr/bin/env bash
# The gain from spreading leaders: put throughput of a 3-node Titan-KV
# cluster with one shard (Q = 1: one leader takes every write) against
# Q = 16 shards (static placement, docs/sharding.md: every node hosts
# every shard, the leaders balanced over the nodes), both clusters up at
# once on loopback, measured by bench/cluster_bench (puts, CLIENTS clients
# spread round-robin over the nodes) in RUNS alternating runs (Q=1, Q=16,
# then Q=16, Q=1, ...); each figure is the median.  Before measuring, the
# leaders of each cluster are counted per node (titanctl status) and
# printed.
#
# Ring placement (`placement = ring`, being built by another helper: R
# replicas of each shard on N nodes) is measured too, 3 and 5 nodes with
# Q = 16, when the built modules know that setting (a module file holds
# the string literal "placement"; RING=0 skips it, RING=1 forces it); otherwise
# those rows print n/a.
#
# Prints one `name: value` per line:
#   leaders_q1_3n, leaders_q16_3n   leaders per node once balanced, e.g.
#                                   "n1=6 n2=5 n3=5 off=0" (off: shards not
#                                   led by their preferred leader)
#   leaders_q16_ring_3n, leaders_q16_ring_5n, and leaders_after_runs_...
#                                   the same for ring placement, before
#                                   and after its runs
#   put_qps_q1_3n, put_qps_q16_3n   median put throughput (calls/s)
#   put_p99_ms_q1_3n, put_p99_ms_q16_3n
#   ratio                           put_qps_q16_3n / put_qps_q1_3n
#   put_qps_q16_ring_3n, put_qps_q16_ring_5n, ratio_ring_5n (or n/a)
#   load_avg                        /proc/loadavg before and after
#
# usage (from the build directory; `make bench-shard-spread`):
#   bench/shard_spread.sh     env: CLIENTS (100), RUN_SECONDS (8),
#   WARMUP (2), RUNS (3), KEYS (10000), VALUE_SIZE (256), PORT_BASE (22300:
#   2 ports per node, up to 22 nodes), RING (auto), RING_CFG (the raft
#   module lines for ring placement; default "placement = ring"),
#   SETTLE_S (180), KEEP_DIR (1: keep data and logs), RAFT_EXTRA (one more
#   raft module line for every cluster, e.g. "sync_threads = 4")
set -euo pipefail
. "$(dirname "$0")/shard_bench_lib.sh"
BENCH=${CLUSTER_BENCH:-./bench/cluster_bench}
CLIENTS=${CLIENTS:-100}
RUN_SECONDS=${RUN_SECONDS:-8}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-256}
PORT_BASE=${PORT_BASE:-22300}
RING=${RING:-auto}
RING_CFG=${RING_CFG:-placement = ring}
SETTLE_S=${SETTLE_S:-180}
KEEP_DIR=${KEEP_DIR:-0}

sb_require shard_spread.sh "$TITAND" "$TITANCTL" "$BENCH"
if [ "$RING" = auto ]; then
    RING=0
    IFS=: read -r -a mdirs <<< "$MODPATH"
    for d in "${mdirs[@]}"; do
        for so in "$d"/*.so; do
            # a setting name is a NUL-terminated string literal
            [ -e "$so" ] && LC_ALL=C grep -qaP '\x00placement\x00' "$so" && RING=1
        done
    done
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/titan-spread.XXXXXX")
declare -A PIDS EPS
cleanup () {
    for c in "${!PIDS[@]}"; do
        for p in ${PIDS[$c]}; do kill -9 "$p" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
    if [ "$KEEP_DIR" = 1 ]; then echo "data and logs kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
next_port=$PORT_BASE

# cluster_up NAME NODES SHARDS EXTRA_RAFT_LINES: starts the nodes (the
# first bootstraps, the others join it); returns at once
cluster_up () {
    local name=$1 nodes=$2 shards=$3 extra=$4 n first_peer="" eps=""
    PIDS[$name]=""
    for n in $(seq 1 "$nodes"); do
        local cp=$next_port pp=$(( next_port + 1 ))
        next_port=$(( next_port + 2 ))
        eps="$eps${eps:+,}127.0.0.1:$cp"
        sb_node_cfg "$dir/$name-$n.cfg" "n$n" "$dir/$name-$n" "$cp" "$pp" \
            "$first_peer" "shards = $shards" "$extra" "${RAFT_EXTRA:-}"
        [ -n "$first_peer" ] || first_peer=127.0.0.1:$pp
        "$TITAND" --config "$dir/$name-$n.cfg" --module-path "$MODPATH" \
            > "$dir/$name-$n.log" 2>&1 &
        PIDS[$name]="${PIDS[$name]} $!"
        sleep 0.3
    done
    EPS[$name]=$eps
}

# leaders NAME SHARDS NODES: "n1=A n2=B ... off=K" when every shard has a
# leader and no learner (a move in progress), nothing otherwise; K counts
# the shards whose leader is not their preferred one (rank 0 of `desired`,
# ring placement only: 0 with static placement)
leaders () {
    "$TITANCTL" --endpoints="${EPS[$1]}" --timeout=3s -w json status 2>/dev/null \
    | awk -v q="$2" -v nodes="$3" '
        { n = split($0, parts, /\{"id":[0-9]+,/) - 1
          if (n != q) exit
          off = 0
          for (i = 2; i <= n + 1; i++) {
              if (parts[i] !~ /"learners":\[\]/) exit
              if (!match(parts[i], /"leader":"[^"]+"/)) exit
              id = substr(parts[i], RSTART + 10, RLENGTH - 11)
              count[id]++
              if (match(parts[i], /"desired":\["[^"]+"/) \
                  && substr(parts[i], RSTART + 12, RLENGTH - 13) != id) off++
          }
          out = ""
          for (k = 1; k <= nodes; k++) out = out (k > 1 ? " " : "") "n" k "=" (count["n" k] + 0)
          print out " off=" off }'
}

# settle NAME SHARDS NODES: waits (SETTLE_S) until every shard has a leader,
# every node leads between floor(Q/N) and ceil(Q/N) shards and (ring
# placement) every shard is led by its preferred leader; prints the leader
# counts; fails if the cluster never gets leaders.  (A check of the upper
# bound alone passed as soon as the first N-1 nodes held every leader,
# before the last node to join had been given its share: 4/4/4/4/0.)
settle () {
    local name=$1 q=$2 nodes=$3 deadline=$(( $(date +%s) + SETTLE_S ))
    local cap=$(( ($2 + $3 - 1) / $3 )) low=$(( $2 / $3 )) spread="" balanced
    while :; do
        spread=$(leaders "$name" "$q" "$nodes")
        if [ -n "$spread" ]; then
            balanced=1
            for kv in $spread; do
                case $kv in
                    off=*) [ "${kv#off=}" = 0 ] || balanced=0 ;;
                    *) [ "${kv#*=}" -le "$cap" ] && [ "${kv#*=}" -ge "$low" ] || balanced=0 ;;
                esac
            done
            [ "$balanced" = 1 ] && break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            [ -n "$spread" ] && break        # leaders, just not balanced
            echo "shard_spread.sh: $name did not get a leader for each of $q shards within $SETTLE_S s" >&2
            return 1
        fi
        sleep 1
    done
    echo "$spread"
}

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "n/a") }'; }
field () { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p"; }
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a ~ /^[0-9.]+$/) printf "%.2f\n", a / b; else print "n/a" }'; }

# run NAME: one measured run; appends "qps p99" to $dir/NAME.runs
run () {
    local line
    line=$("$BENCH" --system=titan --endpoints="${EPS[$1]}" --op=put \
           --clients="$CLIENTS" --seconds="$RUN_SECONDS" --warmup="$WARMUP" \
           --keys="$KEYS" --value-size="$VALUE_SIZE" --timeout-ms=10000 2>>"$dir/$1.bench.err") \
        || { echo "shard_spread.sh: cluster_bench failed on $1 ($(tail -2 "$dir/$1.bench.err"))" >&2; return 1; }
    echo "$(printf '%s' "$line" | field qps) $(printf '%s' "$line" | field p99_ms)" >> "$dir/$1.runs"
}

cluster_up q1_3n 3 1 ""
cluster_up q16_3n 3 16 ""
echo "leaders_q1_3n: $(settle q1_3n 1 3)"
echo "leaders_q16_3n: $(settle q16_3n 16 3)"
for c in q1_3n q16_3n; do
    "$BENCH" --system=titan --endpoints="${EPS[$c]}" --op=preload --clients=16 \
        --keys="$KEYS" --value-size="$VALUE_SIZE" --timeout-ms=10000 > /dev/null 2>>"$dir/$c.bench.err" \
        || { echo "shard_spread.sh: preload of $c failed" >&2; exit 1; }
done
for r in $(seq 1 "$RUNS"); do
    if [ $(( r % 2 )) = 1 ]; then order="q1_3n q16_3n"; else order="q16_3n q1_3n"; fi
    for c in $order; do run "$c"; done
done
for c in q1_3n q16_3n; do
    qps=$(cut -d' ' -f1 "$dir/$c.runs" | median)
    p99=$(cut -d' ' -f2 "$dir/$c.runs" | median)
    echo "put_qps_$c: $qps"
    echo "put_p99_ms_$c: $p99"
    echo "runs_$c: $(cut -d' ' -f1 "$dir/$c.runs" | tr '\n' ' ' | sed 's/ $//')"
    eval "qps_$c=\$qps"
done
echo "ratio: $(ratio "$qps_q16_3n" "$qps_q1_3n")"

# ring placement rows: only with a module that knows the setting
for c in q1_3n q16_3n; do
    for p in ${PIDS[$c]}; do kill -TERM "$p" 2>/dev/null || true; done
done
if [ "$RING" = 1 ]; then
    for nodes in 3 5; do
        c=q16_ring_${nodes}n
        cluster_up "$c" "$nodes" 16 "$RING_CFG"
        spread=$(settle "$c" 16 "$nodes") || spread=""
        if [ -z "$spread" ]; then
            echo "put_qps_$c: n/a (did not settle)"
            continue
        fi
        echo "leaders_$c: $spread"
        "$BENCH" --system=titan --endpoints="${EPS[$c]}" --op=preload --clients=16 \
            --keys="$KEYS" --value-size="$VALUE_SIZE" --timeout-ms=10000 > /dev/null 2>>"$dir/$c.bench.err" || true
        for r in $(seq 1 "$RUNS"); do run "$c" || true; done
        echo "leaders_after_runs_$c: $(leaders "$c" 16 "$nodes")"
        qps=$(cut -d' ' -f1 "$dir/$c.runs" 2>/dev/null | median)
        echo "put_qps_$c: $qps"
        eval "qps_$c=\$qps"
        for p in ${PIDS[$c]}; do kill -TERM "$p" 2>/dev/null || true; done
    done
    echo "ratio_ring_5n: $(ratio "${qps_q16_ring_5n:-n/a}" "$qps_q1_3n")"
else
    echo "put_qps_q16_ring_3n: n/a (no module knows placement = ring yet)"
    echo "put_qps_q16_ring_5n: n/a (no module knows placement = ring yet)"
    echo "ratio_ring_5n: n/a"
fi
echo "load_avg: before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
