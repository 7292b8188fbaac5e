#!/usr/bin/env bash
# Moving one shard: a one-node cluster (Q = 1) is loaded with SIZE_MB MiB of
# live data (distinct keys, VALUE_KB KiB values, bench/kv_load
# --sequential); once its raft group has taken a snapshot, a second node
# joins it (titand --join) while a light writer keeps writing (1 client,
# one 100-byte put every WRITER_PAUSE_MS ms).  The new node catches up by
# InstallSnapshot (the Bitcask's files streamed, docs/raft.md) and is
# promoted to voter.  Prints, one `name: value` per line:
#   disk_write_mb_per_s      dd of min(SIZE_MB, 512) MiB with fdatasync, same disk
#   load_mb_per_s            the loading rate (puts through Raft)
#   shard_move_seconds       from starting the joining titand until it is a
#                            voter whose storage applied index has reached
#                            the leader's (sampled just before)
#   shard_move_bytes         the snapshot stream the new node received
#                            (its "received snapshot" log line)
#   shard_move_mb_per_s      bytes / seconds (MiB/s)
#   shard_move_disk_write_bytes  what the new node wrote to disk meanwhile
#                            (/proc/PID/io write_bytes)
#   move_writer_ok, move_writer_errors, move_writer_max_ms
#                            the light writer during the move
#   move_check_keys_ok       sampled keys read back LOCAL from the new node
#                            with their full value size
# Exits non-zero when the move does not finish within JOIN_TIMEOUT_S or a
# check fails.
#
# usage (from the build directory; `make bench-shard-move`):
#   bench/shard_move.sh        env: SIZE_MB (1024), VALUE_KB (64),
#   LOAD_CLIENTS (8), WRITER_PAUSE_MS (20), JOIN_TIMEOUT_S (1800),
#   PORT_BASE (22200: four ports from it), KEEP_DIR (1: keep the data),
#   LOG_LEVEL (info), PING_TIMEOUT_MS (60000, see below)
set -euo pipefail
. "$(dirname "$0")/shard_bench_lib.sh"
KV_LOAD=${KV_LOAD:-./bench/kv_load}
SIZE_MB=${SIZE_MB:-1024}
VALUE_KB=${VALUE_KB:-64}
LOAD_CLIENTS=${LOAD_CLIENTS:-8}
WRITER_PAUSE_MS=${WRITER_PAUSE_MS:-20}
JOIN_TIMEOUT_S=${JOIN_TIMEOUT_S:-1800}
PORT_BASE=${PORT_BASE:-22200}
KEEP_DIR=${KEEP_DIR:-0}
# The kernel restarts a module that does not answer its PING within
# ping_timeout_ms (5000 by default).  On a loaded machine the bitcask
# module's kv.snapshot_begin of a 1 GB shard (writing a hint file for each
# sealed 256 MB data file, about 2 s each) outlasts that, and the module
# is restarted at each retry until the kernel gives up on it; the bench
# runs with a longer deadline (docs/benchmarks.md, known problems).
PING_TIMEOUT_MS=${PING_TIMEOUT_MS:-60000}

sb_require shard_move.sh "$TITAND" "$TITANCTL" "$KV_LOAD"
value_bytes=$(( VALUE_KB * 1024 ))
keys=$(( SIZE_MB * 1024 / VALUE_KB ))
[ "$keys" -ge 16 ] || { echo "shard_move.sh: SIZE_MB / VALUE_KB gives $keys keys; need 16" >&2; exit 2; }
# one snapshot near the end of the load: the new node gets almost all of
# the data by InstallSnapshot, the rest (and the writer's puts) by entries
snap_entries=$(( keys - keys / 16 ))

dir=$(mktemp -d "${TMPDIR:-/tmp}/titan-shardmove.XXXXXX")
pids=()
writer=
cleanup () {
    for p in "${pids[@]}" $writer; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$KEEP_DIR" = 1 ]; then echo "data and logs kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

now () { date +%s.%N; }
# calc EXPR: awk arithmetic, printed with 2 decimals (1 with calc1)
calc () { awk "BEGIN { printf \"%.2f\\n\", $1 }"; }
calc1 () { awk "BEGIN { printf \"%.1f\\n\", $1 }"; }

# disk write speed for comparison (same file system as the data)
dd_mb=$(( SIZE_MB < 512 ? SIZE_MB : 512 ))
t0=$(now)
dd if=/dev/zero of="$dir/dd.bin" bs=1M count="$dd_mb" conv=fdatasync status=none
t1=$(now)
rm -f "$dir/dd.bin"
echo "disk_write_mb_per_s: $(calc1 "$dd_mb / ($t1 - $t0)")"

node_cfg () {   # node_cfg N JOIN_PEER
    sb_node_cfg "$dir/m$1.cfg" "m$1" "$dir/data$1" $(( PORT_BASE + 2 * ($1 - 1) )) \
        $(( PORT_BASE + 2 * ($1 - 1) + 1 )) "$2" \
        "shards = 1" "snapshot_entries = $snap_entries" "snapshot_slack = 8"
    # see PING_TIMEOUT_MS above
    printf 'kernel\n    ping_timeout_ms = %s\n' "$PING_TIMEOUT_MS" >> "$dir/m$1.cfg"
}

ep1=127.0.0.1:$PORT_BASE
ep2=127.0.0.1:$(( PORT_BASE + 2 ))

# status JSON of ENDPOINT on one line ("" when it does not answer); the
# polls parse it with sed, not python (whose start-up takes seconds on a
# loaded machine)
status_json () {
    "$TITANCTL" --endpoints="$1" --timeout=3s -w json status 2>/dev/null || true
}
# shard0 JSON: shard 0's object (no nested braces in it);
# json_num / json_str JSON FIELD: that field of shard 0
shard0 () { printf '%s' "$1" | sed -n 's/.*"shards":\[{\([^}]*\)}.*/\1/p'; }
json_num () { shard0 "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
json_str () { shard0 "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }

node_cfg 1 ""
"$TITAND" --config "$dir/m1.cfg" --module-path "$MODPATH" --log-level "${LOG_LEVEL:-info}" > "$dir/m1.log" 2>&1 &
pids+=($!)
deadline=$(( $(date +%s) + 60 ))
until [ "$(json_str "$(status_json "$ep1")" leader)" = m1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$dir/m1.log" >&2; echo "shard_move.sh: node 1 did not start" >&2; exit 1; }
    sleep 0.2
done

# load: every key once, VALUE_KB KiB each
per_client=$(( (keys + LOAD_CLIENTS - 1) / LOAD_CLIENTS ))
t0=$(now)
"$KV_LOAD" --endpoint="$ep1" --op=put --sequential --keys="$keys" \
    --requests="$per_client" --clients="$LOAD_CLIENTS" --value-size="$value_bytes" \
    --prefix=move- --max-seconds=3600 > "$dir/load.out" \
    || { cat "$dir/load.out" >&2; echo "shard_move.sh: loading failed" >&2; exit 1; }
t1=$(now)
echo "load_mb_per_s: $(calc1 "$keys * $VALUE_KB / 1024 / ($t1 - $t0)")"
live=$(json_num "$(status_json "$ep1")" keys)
[ "$live" = "$keys" ] || { echo "shard_move.sh: node 1 holds ${live:-?} keys, expected $keys" >&2; exit 1; }
deadline=$(( $(date +%s) + 600 ))
until [ "$(json_num "$(status_json "$ep1")" snapshot_index)" -gt 0 ] 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "shard_move.sh: node 1 took no snapshot" >&2; exit 1; }
    sleep 0.5
done

# the light writer, then the join
"$KV_LOAD" --endpoint="$ep1" --op=put --clients=1 --requests=100000000 \
    --keys=1000 --value-size=100 --prefix=light- --pause-ms="$WRITER_PAUSE_MS" \
    --max-seconds=$(( JOIN_TIMEOUT_S + 60 )) > "$dir/writer.out" 2>&1 &
writer=$!
sleep 1
node_cfg 2 "127.0.0.1:$(( PORT_BASE + 1 ))"
t0=$(now)
"$TITAND" --config "$dir/m2.cfg" --module-path "$MODPATH" --log-level "${LOG_LEVEL:-info}" > "$dir/m2.log" 2>&1 &
pid2=$!
pids+=($pid2)
deadline=$(( $(date +%s) + JOIN_TIMEOUT_S ))
while :; do
    target=$(json_num "$(status_json "$ep1")" applied_index)
    st2=$(status_json "$ep2")
    applied=$(json_num "$st2" applied_index)
    state=learner
    case "$st2" in
        *'"replicas":['*'"m2"'*'"learners":[]'*) state=voter ;;
    esac
    if [ -n "$target" ] && [ -n "$applied" ] && [ "$state" = voter ] \
       && [ "$applied" -ge "$target" ]; then
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$pid2" 2>/dev/null; then
        tail -20 "$dir/m2.log" >&2
        echo "shard_move.sh: node 2 did not catch up within ${JOIN_TIMEOUT_S} s ($state at ${applied:-?}, leader at ${target:-?})" >&2
        exit 1
    fi
    sleep 0.2
done
t1=$(now)
disk_bytes=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid2/io" 2>/dev/null || echo 0)
kill -TERM "$writer"
wait "$writer" || true
writer=

secs=$(calc "$t1 - $t0")
bytes=$(sed -n 's/.*received snapshot at [0-9]* (\([0-9]*\) bytes).*/\1/p' "$dir/m2.log" | tail -1)
[ -n "$bytes" ] || { echo "shard_move.sh: node 2 did not receive a snapshot (caught up by entries?)" >&2; exit 1; }
echo "shard_move_seconds: $secs"
echo "shard_move_bytes: $bytes"
echo "shard_move_mb_per_s: $(calc1 "$bytes / 1048576 / ($secs > 0.01 ? $secs : 0.01)")"
echo "shard_move_disk_write_bytes: $disk_bytes"
# the writer's summary: "put clients=1 ...: N ok, E failed in ... max X ms"
sed -n 's/^put .*: \([0-9]*\) ok, \([0-9]*\) failed.* max \([0-9.]*\) ms$/move_writer_ok: \1\nmove_writer_errors: \2\nmove_writer_max_ms: \3/p' "$dir/writer.out"

# sampled keys, read LOCAL from the new node: present with their full size
ok=0
for k in 0 $(( keys / 2 )) $(( keys - 1 )); do
    size=$("$TITANCTL" --endpoints="$ep2" get --consistency=local "$(printf 'move-%08d' "$k")" 2>/dev/null | wc -c || true)
    [ "$size" = "$value_bytes" ] && ok=$(( ok + 1 ))
done
echo "move_check_keys_ok: $ok/3"
[ "$ok" = 3 ] || { echo "shard_move.sh: the new node lacks loaded keys" >&2; exit 1; }
