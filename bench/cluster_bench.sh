#!/usr/bin/env bash
# make bench-cluster: Titan-KV against etcd 3.4, side by side in one run.
#
# Starts a 3-node etcd (Debian's etcd-server, its defaults: fsync on,
# 100 ms heartbeat, 1 s election timeout) and a 3-node Titan-KV (one
# shard; a second Titan cluster with 16 shards when titand supports a
# shard count) on free loopback ports, with all their data in one
# temporary directory (same disk), preloads the same keys into each, and
# runs bench/cluster_bench against each cluster in turn -- Titan, etcd,
# then etcd, Titan for the next run, and so on -- so that both see the
# same machine at nearly the same time.  Clients are spread round-robin
# over the three members of the cluster under test, as etcd's own
# benchmark tool does.
#
# Workloads (8-byte keys, 256-byte values, keys uniform over BENCH_KEYS):
#   put at 1, 16 and 100 clients; linearizable gets and local gets (Titan
#   LOCAL, etcd serializable) at 100 clients; a 90/10 get/put mix at 100
#   clients; then the resident memory (VmRSS) of every node; then the
#   failover: the leader is killed with SIGKILL and a client puts through
#   the two survivors until one write succeeds (BENCH_FAILOVER_TRIALS
#   trials per system, alternating; the node is restarted between trials).
# Every load figure is the median of BENCH_RUNS runs.  Beside latency and
# throughput, each run records the CPU time (user + system, from
# /proc/PID/stat) the three server processes used per call: on a machine
# whose cores are the limit, that is the cost that decides throughput.
#
# Output: one `name: value` line per figure, ratios Titan/etcd, the
# issue's targets with PASS/MISS, and a table; in the results folder
# (BENCH_RESULTS/cluster-<UTC timestamp>/): runs.csv (every run),
# summary.csv (medians), failover.csv, rss.csv, figures.txt, table.txt,
# chart.png (throughput and p99 per workload; gnuplot), and the logs.
#
# Usage: bench/cluster_bench.sh BUILDDIR
# Environment (defaults keep a whole run near 10 minutes on 2 cores):
#   BENCH_SECONDS=8  BENCH_WARMUP=2  BENCH_RUNS=3  BENCH_FAILOVER_TRIALS=5
#   BENCH_KEYS=100000  BENCH_RESULTS=./bench-results
#   BENCH_TITAN_Q16_ARGS  titand options that create 16 shards (default:
#                         `--config FILE`, FILE listing the default modules:
#                         ring placement, Q = 16, R = 3: docs/sharding.md)
#                         (a BENCH_TITAN_ARGS with its own --config needs
#                         BENCH_TITAN_Q16_ARGS set to one with 16 shards)
#   The Q=1 rows ("titan") use `--config FILE`, FILE setting the raft
#   module's placement = static and shards = 1, unless BENCH_TITAN_ARGS
#   brings its own --config.
#   BENCH_WORKLOADS       a subset, e.g. "put:100 lin_get:100" (default all)
#   BENCH_TITAN_ARGS      more titand options for the Titan nodes, e.g.
#                         "--config FILE" to measure other module settings
#   BENCH_PERF=1          during the first run of each workload, count the
#                         system calls and context switches of each cluster
#                         per call (perf stat; perf-stat.csv and figures), and
#                         profile the 3 titand processes (perf record -g, all
#                         threads): perf-titan-WORKLOAD.txt in the results
set -euo pipefail

build=$(cd "${1:?usage: cluster_bench.sh BUILDDIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=${BENCH_SECONDS:-8}
warmup=${BENCH_WARMUP:-2}
runs=${BENCH_RUNS:-3}
trials=${BENCH_FAILOVER_TRIALS:-5}
keys=${BENCH_KEYS:-100000}
value_size=256
key_size=8
workloads=${BENCH_WORKLOADS:-"put:1 put:16 put:100 lin_get:100 local_get:100 mix:100"}
results=${BENCH_RESULTS:-$PWD/bench-results}/cluster-$(date -u +%Y%m%dT%H%M%SZ)
bench=$build/bench/cluster_bench

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null \
   || ! command -v gnuplot >/dev/null; then
  "$src/scripts/install-deps.sh"
fi
[ -x "$bench" ] || { echo "cluster_bench.sh: $bench is not built (make bench/cluster_bench)" >&2; exit 2; }

export TITAN_BUILDDIR=$build
export TITAN_MODULE_PATH="$build/modules/bitcask/.libs:$build/modules/raft/.libs:$build/modules/ring/.libs:$build/modules/grpc_gateway/.libs"
# e2e_lib: TITAND, TITANCTL, e2e_free_port, and E2E_DIR (a temporary
# directory that it removes on exit): every node's data and log go there.
. "$src/tests/e2e_lib.sh"
set -euo pipefail
e2e_require
D=$E2E_DIR
mkdir -p "$results"

declare -A PID ADDR PEER UP_ARGS          # key: system:n (titan:1, etcd:2, titanq16:3)
systems=(titan etcd)
q16_reason=""

cleanup () {
  set +e
  local k
  for k in "${!PID[@]}"; do
    [ -n "${PID[$k]}" ] && kill -9 "${PID[$k]}" 2>/dev/null
  done
  wait 2>/dev/null
  mkdir -p "$results/logs" && cp "$D"/*.log "$results/logs/" 2>/dev/null
  e2e_cleanup
}
trap cleanup EXIT

say () { echo "$*" >&2; }
fail () { echo "cluster_bench.sh: $*" >&2; exit 1; }
# deadline_wait SECONDS CMD...: runs CMD every 0.1 s until it succeeds.
deadline_wait () {
  local limit=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$limit" ] || return 1
    sleep 0.1
  done
}
json () { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
endpoints () { echo "${ADDR[$1:1]},${ADDR[$1:2]},${ADDR[$1:3]}"; }

# ---------------------------------------------------------------- etcd
etcd_cluster=""
etcd_start () {   # N
  local n=$1
  etcd --name "e$n" --data-dir "$D/etcd$n" \
    --listen-client-urls "http://${ADDR[etcd:$n]}" \
    --advertise-client-urls "http://${ADDR[etcd:$n]}" \
    --listen-peer-urls "http://${PEER[etcd:$n]}" \
    --initial-advertise-peer-urls "http://${PEER[etcd:$n]}" \
    --initial-cluster "$etcd_cluster" --initial-cluster-token "bench-$$" \
    --initial-cluster-state new --logger zap --log-outputs stderr \
    >>"$D/etcd$n.log" 2>&1 &
  PID[etcd:$n]=$!
}
etcd_healthy () { etcdctl --endpoints="$(endpoints etcd)" --command-timeout=2s endpoint health; }
etcd_leader () {   # prints N of the leader
  local n id leader
  for n in 1 2 3; do
    [ -n "${PID[etcd:$n]}" ] || continue
    read -r id leader < <(etcdctl --endpoints="${ADDR[etcd:$n]}" --command-timeout=2s \
      endpoint status -w json 2>/dev/null \
      | json 'print(d[0]["Status"]["header"]["member_id"], d[0]["Status"]["leader"])') || continue
    [ "$id" = "$leader" ] && { echo "$n"; return 0; }
  done
  return 1
}

# --------------------------------------------------------------- titan
titan_start () {   # SYSTEM N [EXTRA ARGS]
  local sys=$1 n=$2 join=()
  shift 2
  [ "$n" = 1 ] || join=(--join "${PEER[$sys:1]}")
  # shellcheck disable=SC2086
  "$TITAND" --node-id "${sys}$n" --data-dir "$D/$sys$n" \
    --client-addr "${ADDR[$sys:$n]}" --peer-addr "${PEER[$sys:$n]}" "${join[@]}" \
    --module-path "$TITAN_MODULE_PATH" ${BENCH_TITAN_ARGS:-} "$@" >>"$D/$sys$n.log" 2>&1 &
  PID[$sys:$n]=$!
}
titan_voters () {   # SYSTEM: the members the first node lists as up
  "$TITANCTL" --endpoints="${ADDR[$1:1]}" --timeout=1s -w json member list 2>/dev/null \
    | grep -o '"state":"up"' | wc -l
}
titan_healthy () {   # SYSTEM: 3 voters and a put through every node
  local n
  [ "$(titan_voters "$1")" -ge 3 ] || return 1
  for n in 1 2 3; do
    "$TITANCTL" --endpoints="${ADDR[$1:$n]}" --timeout=5s put bench-health "$n" >/dev/null || return 1
  done
}
titan_leader () {   # SYSTEM: prints N of shard 0's leader
  local n id
  for n in 1 2 3; do
    [ -n "${PID[$1:$n]}" ] || continue
    id=$("$TITANCTL" --endpoints="${ADDR[$1:$n]}" --timeout=1s -w json status 2>/dev/null \
         | json 'print(d["shards"][0]["leader"])') || continue
    id=${id#"$1"}
    [ -n "$id" ] && [ -n "${PID[$1:$id]:-}" ] && { echo "$id"; return 0; }
  done
  return 1
}
titan_up () {   # SYSTEM [EXTRA ARGS]: starts 3 nodes and waits for them
  local sys=$1 n
  shift
  UP_ARGS[$sys]="$*"       # a node restarted later gets the same options
  titan_start "$sys" 1 "$@"
  deadline_wait 60 "$TITANCTL" --endpoints="${ADDR[$sys:1]}" --timeout=1s status \
    || fail "$sys node 1 did not answer within 60 s (log: $D/${sys}1.log)"
  titan_start "$sys" 2 "$@"
  titan_start "$sys" 3 "$@"
  deadline_wait 180 titan_healthy "$sys" \
    || fail "$sys: the 3 nodes did not become voters answering puts within 180 s" \
            "($(titan_voters "$sys") voters; logs: $results/logs)"
}

leader () { if [ "$1" = etcd ]; then etcd_leader; else titan_leader "$1"; fi; }
healthy () { if [ "$1" = etcd ]; then etcd_healthy; else titan_healthy "$1"; fi; }
restart () {   # SYSTEM N
  # shellcheck disable=SC2086
  if [ "$1" = etcd ]; then etcd_start "$2"; else titan_start "$1" "$2" ${UP_ARGS[$1]:-}; fi
}

# ------------------------------------------------------------- clusters
for sys in titan etcd titanq16; do
  for n in 1 2 3; do
    ADDR[$sys:$n]="127.0.0.1:$(e2e_free_port)"
    PEER[$sys:$n]="127.0.0.1:$(e2e_free_port)"
    PID[$sys:$n]=""
  done
done
etcd_cluster="e1=http://${PEER[etcd:1]},e2=http://${PEER[etcd:2]},e3=http://${PEER[etcd:3]}"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "cluster_bench.sh: data and logs in $D, results in $results (load average $load_start)"
for n in 1 2 3; do etcd_start "$n"; done
# Q=1: one group, static placement (explicit: the default is ring
# placement with Q = 16)
q1_args=""
case " ${BENCH_TITAN_ARGS:-} " in
  *" --config "*) ;;
  *)
    e2e_static_modules > "$D/titan-q1.cfg"
    q1_args="--config $D/titan-q1.cfg" ;;
esac
# shellcheck disable=SC2086
titan_up titan $q1_args
deadline_wait 60 etcd_healthy || fail "etcd did not become healthy within 60 s (logs: $D/etcd*.log)"

# Q=16: the default modules (ring placement: 16 shards of 3 replicas, on
# 3 nodes every node hosts all 16, their leaders balanced over the nodes);
# the node settings stay on the command line, which takes precedence over
# the file.
q16_args=${BENCH_TITAN_Q16_ARGS:-}
if [ -z "$q16_args" ]; then
  cat > "$D/titan-q16.cfg" <<'EOF'
modules
    bitcask
        path = titan_bitcask.so
    ring
        path = titan_ring.so
    raft
        path = titan_raft.so
    grpc_gateway
        path = titan_grpc_gateway.so
EOF
  q16_args="--config $D/titan-q16.cfg"
fi
if [ -n "$q16_args" ]; then
  # shellcheck disable=SC2086
  titan_up titanq16 $q16_args
  shards=$("$TITANCTL" --endpoints="${ADDR[titanq16:1]}" --timeout=2s -w json status \
           | json 'print(len(d["shards"]))' 2>/dev/null || echo 0)
  if [ "$shards" = 16 ]; then
    systems=(titan titanq16 etcd)
  else
    q16_reason="started with '$q16_args' but status reports $shards shard(s)"
    for n in 1 2 3; do kill -9 "${PID[titanq16:$n]}"; PID[titanq16:$n]=""; done
  fi
fi
say "cluster_bench.sh: systems: ${systems[*]}${q16_reason:+ (Q=16 rows n/a: $q16_reason)}"

# -------------------------------------------------------------- preload
# All clusters at once (not a figure: it only has to be done, and on a
# loaded machine one at a time would take minutes each).
say "cluster_bench.sh: preloading $keys keys into ${systems[*]} (in parallel)"
preloads=()
for sys in "${systems[@]}"; do
  bsys=$sys; [ "$sys" = etcd ] || bsys=titan
  "$bench" --system="$bsys" --endpoints="$(endpoints "$sys")" --op=preload \
    --clients=100 --keys="$keys" --key-size=$key_size --value-size=$value_size \
    --timeout-ms=10000 >"$results/preload-$sys.txt" &
  preloads+=($!)
done
for p in "${preloads[@]}"; do wait "$p" || fail "preload failed"; done
for sys in "${systems[@]}"; do
  grep -q " errors=0 " "$results/preload-$sys.txt" \
    || fail "preload of $sys had errors: $(cat "$results/preload-$sys.txt")"
  say "preload $(cat "$results/preload-$sys.txt")"
done

# ----------------------------------------------------------------- idle
cpu_ticks () {   # SYSTEM: user + system clock ticks of its 3 processes
  local n t=0
  for n in 1 2 3; do
    t=$(( t + $(awk '{print $14 + $15}' "/proc/${PID[$1:$n]}/stat") ))
  done
  echo "$t"
}
# CPU the clusters burn with no client (ticks, heartbeats): part of every
# call's CPU cost, most visible with one client.
idle_seconds=${BENCH_IDLE_SECONDS:-5}
declare -A IDLE0
for sys in "${systems[@]}"; do IDLE0[$sys]=$(cpu_ticks "$sys"); done
sleep "$idle_seconds"
declare -A IDLE_PCT
for sys in "${systems[@]}"; do
  IDLE_PCT[$sys]=$(awk -v t=$(( $(cpu_ticks "$sys") - ${IDLE0[$sys]} )) -v hz="$(getconf CLK_TCK)" \
    -v s="$idle_seconds" 'BEGIN {printf "%.1f", t / hz / s * 100}')
done

# ------------------------------------------------------------ workloads
echo "workload,clients,system,run,qps,p50_ms,p90_ms,p99_ms,max_ms,errors,cpu_us_per_call" >"$results/runs.csv"
field () { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
run_one () {   # SYSTEM WORKLOAD CLIENTS RUN
  local sys=$1 w=$2 c=$3 r=$4 bsys=titan args=() line
  [ "$sys" = etcd ] && bsys=etcd
  case $w in
    put) args=(--op=put) ;;
    lin_get) args=(--op=get) ;;
    local_get) args=(--op=get --local) ;;
    mix) args=(--op=mix --get-percent=90) ;;
    *) fail "unknown workload $w" ;;
  esac
  local perf_pid="" stat_pid="" perf_out="$results/perf-${sys}-${w}-${c}c"
  local pids="${PID[$sys:1]},${PID[$sys:2]},${PID[$sys:3]}"
  local span=$(( ${warmup%.*} + ${seconds%.*} ))
  if [ "${BENCH_PERF:-0}" = 1 ] && [ "$r" = 1 ]; then
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pids" \
      -o "$perf_out.stat" -- sleep "$span" >/dev/null 2>&1 &
    stat_pid=$!
    if [ "$bsys" = titan ]; then
      perf record -q -F 499 -g -p "$pids" -o "$perf_out.data" -- sleep "$span" >/dev/null 2>&1 &
      perf_pid=$!
    fi
  fi
  local ticks0 ticks1 cpu
  ticks0=$(cpu_ticks "$sys")
  line=$("$bench" --system="$bsys" --endpoints="$(endpoints "$sys")" "${args[@]}" \
         --clients="$c" --seconds="$seconds" --warmup="$warmup" --keys="$keys" \
         --key-size=$key_size --value-size=$value_size) \
    || fail "cluster_bench failed: $sys $w ${c}c run $r"
  ticks1=$(cpu_ticks "$sys")
  cpu=$(awk -v t=$(( ticks1 - ticks0 )) -v hz="$(getconf CLK_TCK)" -v n="$(field calls "$line")" \
        'BEGIN {printf "%.0f", (n > 0 ? t / hz * 1e6 / n : 0)}')
  if [ -n "$stat_pid" ]; then
    wait "$stat_pid" || true
    awk -F, -v w="$w" -v c="$c" -v s="$sys" -v n="$(field calls "$line")" '
      /raw_syscalls/ {sc = $1} /context-switches/ {cs = $1}
      END {printf "%s,%s,%s,%.1f,%.1f\n", w, c, s, sc / n, cs / n}' \
      "$perf_out.stat" >>"$results/perf-stat.csv"
  fi
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    { perf report -i "$perf_out.data" --no-children --sort comm,dso,sym -g none --percent-limit 0.3 --stdio 2>/dev/null | grep -v '^$' | head -400
    } >"$perf_out.txt"
  fi
  echo "$w,$c,$sys,$r,$(field qps "$line"),$(field p50_ms "$line"),$(field p90_ms "$line"),$(field p99_ms "$line"),$(field max_ms "$line"),$(field errors "$line"),$cpu" \
    >>"$results/runs.csv"
}
for wc in $workloads; do
  w=${wc%%:*}; c=${wc##*:}
  for r in $(seq 1 "$runs"); do
    order=("${systems[@]}")
    if [ $(( r % 2 )) = 0 ]; then   # every other run, the other system first
      order=(); for (( i=${#systems[@]}-1; i>=0; i-- )); do order+=("${systems[$i]}"); done
    fi
    for sys in "${order[@]}"; do run_one "$sys" "$w" "$c" "$r"; done
  done
done

# ------------------------------------------------------------------ RSS
echo "system,node,rss_mb" >"$results/rss.csv"
for sys in "${systems[@]}"; do
  for n in 1 2 3; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/${PID[$sys:$n]}/status")
    echo "$sys,$n,$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')" >>"$results/rss.csv"
  done
done

# ------------------------------------------------------------- failover
echo "system,trial,failover_s" >"$results/failover.csv"
failover_systems=(titan etcd)
for t in $(seq 1 "$trials"); do
  order=("${failover_systems[@]}")
  [ $(( t % 2 )) = 0 ] && order=(etcd titan)
  for sys in "${order[@]}"; do
    bsys=titan; [ "$sys" = etcd ] && bsys=etcd
    deadline_wait 60 healthy "$sys" || fail "$sys not healthy before failover trial $t"
    l=$(leader "$sys") || fail "$sys: no leader before failover trial $t"
    survivors=""
    for n in 1 2 3; do [ "$n" = "$l" ] || survivors="$survivors${survivors:+,}${ADDR[$sys:$n]}"; done
    line=$("$bench" --system="$bsys" --endpoints="$survivors" --op=failover \
           --kill-pid="${PID[$sys:$l]}" --timeout-ms=100 --seconds=30 \
           --key-size=$key_size --value-size=$value_size) \
      || fail "$sys failover trial $t: no write succeeded"
    wait "${PID[$sys:$l]}" 2>/dev/null || true
    PID[$sys:$l]=""
    echo "$sys,$t,$(field failover_s "$line")" >>"$results/failover.csv"
    say "failover $sys trial $t: leader $sys$l killed; first write after $(field failover_s "$line") s"
    restart "$sys" "$l"
  done
done
for sys in "${failover_systems[@]}"; do
  deadline_wait 60 healthy "$sys" || fail "$sys did not recover after the failover trials"
done

# -------------------------------------------------------------- figures
median () { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'; }
# MEDIANS[workload:clients:system] = "qps,p50,p90,p99,max,errors,cpu": the
# median of each column over the runs, in one pass (a process per figure
# is slow on a loaded machine).
declare -A MEDIANS
while IFS=, read -r key rest; do MEDIANS[$key]=$rest; done < <(awk -F, '
  NR == 1 { next }
  { k = $1 ":" $2 ":" $3; n[k]++; for (i = 5; i <= 11; i++) v[k, i, n[k]] = $i }
  END {
    for (k in n) {
      line = k
      for (i = 5; i <= 11; i++) {
        m = n[k]
        for (a = 1; a <= m; a++) t[a] = v[k, i, a]
        for (a = 2; a <= m; a++)          # insertion sort, numeric
          for (b = a; b > 1 && t[b - 1] + 0 > t[b] + 0; b--) { x = t[b]; t[b] = t[b - 1]; t[b - 1] = x }
        if (m % 2) med = t[(m + 1) / 2]; else med = sprintf ("%.6g", (t[m / 2] + t[m / 2 + 1]) / 2)
        line = line "," med
      }
      print line
    } }' "$results/runs.csv")
ratio () { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b}'; }

figures=$results/figures.txt
: >"$figures"
fig () { echo "$1: $2"; echo "$1: $2" >>"$figures"; }
echo "workload,clients,system,qps,p50_ms,p90_ms,p99_ms,max_ms,errors,cpu_us_per_call" >"$results/summary.csv"
declare -A QPS P99 CPU
for wc in $workloads; do
  w=${wc%%:*}; c=${wc##*:}
  for sys in titan titanq16 etcd; do
    if [ "$sys" = titanq16 ] && [ -n "$q16_reason" ]; then
      fig "titanq16_${w}_qps_${c}c" "n/a ($q16_reason)"
      continue
    fi
    IFS=, read -r q p50 p90 p99 max err cpu <<<"${MEDIANS[$w:$c:$sys]:-n/a,n/a,n/a,n/a,n/a,n/a,n/a}"
    QPS[$sys:$w:$c]=$q; P99[$sys:$w:$c]=$p99; CPU[$sys:$w:$c]=$cpu
    echo "$w,$c,$sys,$q,$p50,$p90,$p99,$max,$err,$cpu" >>"$results/summary.csv"
    fig "${sys}_${w}_qps_${c}c" "$q"
    fig "${sys}_${w}_p50_ms_${c}c" "$p50"
    fig "${sys}_${w}_p90_ms_${c}c" "$p90"
    fig "${sys}_${w}_p99_ms_${c}c" "$p99"
    fig "${sys}_${w}_max_ms_${c}c" "$max"
    fig "${sys}_${w}_errors_${c}c" "$err"
    fig "${sys}_${w}_cpu_us_per_call_${c}c" "$cpu"
  done
  fig "${w}_qps_ratio_${c}c" "$(ratio "${QPS[titan:$w:$c]}" "${QPS[etcd:$w:$c]}")"
  fig "${w}_p99_ratio_${c}c" "$(ratio "${P99[titan:$w:$c]}" "${P99[etcd:$w:$c]}")"
  fig "${w}_cpu_per_call_ratio_${c}c" "$(ratio "${CPU[titan:$w:$c]}" "${CPU[etcd:$w:$c]}")"
  if [ -z "$q16_reason" ]; then
    fig "q16_${w}_qps_ratio_${c}c" "$(ratio "${QPS[titanq16:$w:$c]}" "${QPS[etcd:$w:$c]}")"
    fig "q16_${w}_p99_ratio_${c}c" "$(ratio "${P99[titanq16:$w:$c]}" "${P99[etcd:$w:$c]}")"
  fi
done
for sys in "${systems[@]}"; do
  for n in 1 2 3; do
    fig "${sys}_rss_mb_node$n" "$(awk -F, -v s="$sys" -v n="$n" '$1 == s && $2 == n {print $3}' "$results/rss.csv")"
  done
  mean=$(awk -F, -v s="$sys" '$1 == s {t += $3; k++} END {printf "%.1f", t / k}' "$results/rss.csv")
  fig "${sys}_rss_mb_mean" "$mean"
  eval "rss_$sys=$mean"
done
fig rss_ratio "$(ratio "$rss_titan" "$rss_etcd")"
for sys in "${systems[@]}"; do fig "${sys}_idle_cpu_pct" "${IDLE_PCT[$sys]}"; done
for sys in titan etcd; do
  m=$(awk -F, -v s="$sys" 'NR > 1 && $1 == s {print $3}' "$results/failover.csv" | median)
  fig "${sys}_failover_s" "$m"
  eval "fo_$sys=$m"
done
fig failover_s_ratio "$(ratio "$fo_titan" "$fo_etcd")"
if [ -f "$results/perf-stat.csv" ]; then
  while IFS=, read -r w c sys sc cs; do
    fig "${sys}_${w}_syscalls_per_call_${c}c" "$sc"
    fig "${sys}_${w}_context_switches_per_call_${c}c" "$cs"
  done <"$results/perf-stat.csv"
fi

# the issue's targets (ratios are Titan / etcd)
target () {   # NAME VALUE OP LIMIT
  local verdict
  verdict=$(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
    if (v == "n/a" || v == "") print "n/a"; else if ((op == ">=" && v + 0 >= l) || (op == "<=" && v + 0 <= l)) print "PASS"; else print "MISS" }')
  fig "target_$1" "$verdict ($2 $3 $4)"
}
get_fig () { sed -n "s/^$1: //p" "$figures" | head -1; }
target put_qps_100c "$(get_fig put_qps_ratio_100c)" ">=" 1.5
target put_p99_16c "$(get_fig put_p99_ratio_16c)" "<=" 1
target lin_get_qps_100c "$(get_fig lin_get_qps_ratio_100c)" ">=" 1.5
target local_get_qps_100c "$(get_fig local_get_qps_ratio_100c)" ">=" 2
target rss "$(get_fig rss_ratio)" "<=" 1
target failover_s "$(get_fig failover_s_ratio)" "<=" 1

# ---------------------------------------------------------- table, chart
{
  echo
  echo "Titan-KV vs etcd $(etcd --version | sed -n 's/^etcd Version: //p'), 3 nodes each on loopback;" \
       "median of $runs runs of ${seconds}s (+${warmup}s warm-up); $(nproc) CPUs, load shared"
  echo "load average at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-10s %7s %-9s %10s %9s %9s %9s %9s %7s %9s\n' workload clients system ops/s p50_ms p90_ms p99_ms max_ms errors cpu_us/op
  tail -n +2 "$results/summary.csv" | while IFS=, read -r w c s q p50 p90 p99 max err cpu; do
    printf '%-10s %7s %-9s %10s %9s %9s %9s %9s %7s %9s\n' "$w" "$c" "$s" "$q" "$p50" "$p90" "$p99" "$max" "$err" "$cpu"
  done
  echo
  printf '%-9s %10s %10s %10s %10s %12s %14s\n' system rss_mb_n1 rss_mb_n2 rss_mb_n3 rss_mb_mean failover_s idle_cpu_pct
  for sys in "${systems[@]}"; do
    fo=n/a; [ "$sys" = titanq16 ] || fo=$(get_fig "${sys}_failover_s")
    printf '%-9s %10s %10s %10s %10s %12s %14s\n' "$sys" "$(get_fig "${sys}_rss_mb_node1")" \
      "$(get_fig "${sys}_rss_mb_node2")" "$(get_fig "${sys}_rss_mb_node3")" \
      "$(get_fig "${sys}_rss_mb_mean")" "$fo" "${IDLE_PCT[$sys]}"
  done
  [ -z "$q16_reason" ] || echo "Q=16 rows: n/a ($q16_reason)"
} | tee "$results/table.txt"

# chart data: one row per workload, qps and p99 per system
awk -F, -v systems="${systems[*]}" '
  NR == 1 { next }
  { key = $1 "_" $2 "c"; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    qps[key, $3] = $4; p99[key, $3] = $7 }
  END { k = split(systems, s, " ")
        printf "workload"; for (i = 1; i <= k; i++) printf " %s", s[i]
        for (i = 1; i <= k; i++) printf " %s", s[i]; printf "\n"
        for (j = 1; j <= n; j++) { printf "%s", order[j]
          for (i = 1; i <= k; i++) printf " %s", qps[order[j], s[i]]
          for (i = 1; i <= k; i++) printf " %s", p99[order[j], s[i]]; printf "\n" } }' \
  "$results/summary.csv" >"$results/chart.dat"
k=${#systems[@]}
gnuplot <<EOF
set terminal pngcairo size 1100,800 font ",10" noenhanced
set output "$results/chart.png"
set datafile separator " "
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right autotitle columnheader
set grid ytics
set xtics rotate by -20
set multiplot layout 2,1 title "Titan-KV vs etcd, 3 nodes on loopback (median of $runs runs, $(nproc) CPUs shared)"
set ylabel "ops/s"
set title "throughput (higher is better)"
set yrange [0:*]
plot for [i=2:$((k + 1))] "$results/chart.dat" using i:xtic(1)
set ylabel "p99 latency, ms"
set title "p99 latency (lower is better)"
set yrange [*:*]
set logscale y
plot for [i=$((k + 2)):$((2 * k + 1))] "$results/chart.dat" using i:xtic(1)
unset multiplot
EOF
say "cluster_bench.sh: results in $results"
