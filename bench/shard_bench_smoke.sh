#!/usr/bin/env bash
# make check: bench/shard_move.sh and bench/shard_spread.sh at tiny sizes
# (a 2 MiB shard moved; 2-second put runs), asserting that they finish and
# that their outputs are well formed (every figure a number, the moved
# keys readable on the new node) -- not their performance.  Ports
# 22220-22223 and 22340-22351.
set -u
: "${TITAN_BUILDDIR:?TITAN_BUILDDIR is not set (run through make check)}"
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$TITAN_BUILDDIR" || exit 1
for p in titand cli/titanctl bench/kv_load bench/cluster_bench; do
    [ -x "$p" ] || { echo "SKIP: $p is not built"; exit 77; }
done
fail () { echo "FAIL: $*" >&2; exit 1; }
out=$(mktemp "${TMPDIR:-/tmp}/titan-shard-smoke.XXXXXX")
trap 'rm -f "$out"' EXIT

# expect OUT NAME REGEX: OUT has a line "NAME: VALUE" with VALUE matching
expect () {
    grep -Eq "^$2: ($3)\$" "$1" || { cat "$1" >&2; fail "no well-formed '$2' line"; }
}
num='[0-9]+(\.[0-9]+)?'

SIZE_MB=2 VALUE_KB=16 LOAD_CLIENTS=4 WRITER_PAUSE_MS=10 JOIN_TIMEOUT_S=120 \
    PORT_BASE=22220 bash "$src/bench/shard_move.sh" > "$out" 2>&1 \
    || { cat "$out" >&2; fail "shard_move.sh failed"; }
for name in disk_write_mb_per_s load_mb_per_s shard_move_seconds \
            shard_move_mb_per_s move_writer_max_ms; do
    expect "$out" "$name" "$num"
done
for name in shard_move_bytes shard_move_disk_write_bytes move_writer_ok \
            move_writer_errors; do
    expect "$out" "$name" '[0-9]+'
done
expect "$out" move_check_keys_ok '3/3'
# the snapshot holds the values loaded before it (15/16 of the 2 MiB:
# shard_move.sh snapshots there; the rest follows as entries)
bytes=$(sed -n 's/^shard_move_bytes: //p' "$out")
[ "$bytes" -ge $(( 3 * 512 * 1024 )) ] || fail "shard_move_bytes $bytes < 1.5 MiB"

RUNS=1 RUN_SECONDS=2 WARMUP=1 KEYS=200 CLIENTS=8 RING=0 PORT_BASE=22340 \
    bash "$src/bench/shard_spread.sh" > "$out" 2>&1 \
    || { cat "$out" >&2; fail "shard_spread.sh failed"; }
expect "$out" leaders_q1_3n 'n1=[01] n2=[01] n3=[01] off=0'
expect "$out" leaders_q16_3n 'n1=[0-9]+ n2=[0-9]+ n3=[0-9]+ off=0'
for name in put_qps_q1_3n put_qps_q16_3n put_p99_ms_q1_3n put_p99_ms_q16_3n ratio; do
    expect "$out" "$name" "$num"
done
expect "$out" put_qps_q16_ring_5n 'n/a.*'
# every one of the 16 shards has exactly one leader
sum=$(sed -n 's/^leaders_q16_3n: //p' "$out" | tr ' ' '\n' | grep '^n' | awk -F= '{ s += $2 } END { print s }')
[ "$sum" = 16 ] || fail "leaders_q16_3n counts $sum leaders, not 16"
echo "PASS: shard_move.sh and shard_spread.sh outputs well formed"
