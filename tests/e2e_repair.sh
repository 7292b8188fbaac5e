#!/usr/bin/env bash
# End-to-end test of read repair and scrub (issue 7, docs/repair.md) on a
# real 3-node cluster (three titand processes on free loopback ports, 4 KiB
# data files so that most records are in sealed files with hints):
#  1. keys are written (tests/e2e_kv_client put) and node 3 is stopped;
#  2. in node 3's shard files, with the node down, one byte is flipped in
#     the value of key A, in the record header of key B (both in sealed
#     files whose hints stay intact) and in the hint file of a third
#     sealed file;
#  3. node 3 restarts; every key is read through every node, LOCAL and
#     linearizable: all read their values (the damaged records are
#     repaired from a healthy replica, never served); node 3's status
#     counts the repairs and data errors and its log names A and B;
#  4. node 3 stops, the value of key C is flipped, and node 3 restarts
#     with a scrub every second: the scrub finds C and the gateway repairs
#     it (no client read), and a later full pass finds nothing: the files
#     verify clean.  Every key is read through node 3 again;
#  5. a single node whose record is damaged has no replica to repair from:
#     the read answers DATA_LOSS saying so (exit 5), other keys read.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
client="$TITAN_BUILDDIR/tests/e2e_kv_client"
[ -x "$client" ] || e2e_skip "tests/e2e_kv_client is not built"
D=$E2E_DIR
nkeys=${REPAIR_KEYS:-600}

# Static placement with one group (explicit: the default is ring placement
# with Q = 16): the damage is aimed at shard 0's files.
s_config () {   # s_config FILE SCRUB_INTERVAL_S
  e2e_static_modules "max_file_bytes = 4096" "scrub_interval_s = $2" >"$1"
}
s_config "$D/plain.cfg" 0
s_config "$D/scrub.cfg" 1
export TITAN_CONFIG="$D/plain.cfg"

e2e_cluster_init 3 r
e2e_cluster_start
endpoints=("${E2E_CLIENT[1]}" "${E2E_CLIENT[2]}" "${E2E_CLIENT[3]}")

# s_write PREFIX CLIENTS N ENDPOINT...: puts keys (tests/e2e_kv_client)
# until N are acknowledged; their names go to $D/acked.PREFIX
s_write () {
  local prefix=$1 clients=$2 n=$3 writer deadline
  shift 3
  rm -f "$D/stop"
  "$client" put "$prefix" "$clients" "$D/stop" "$D/acked.$prefix" "$@" >"$D/writer.out" 2>&1 &
  writer=$!
  E2E_HELPER_PIDS=("$writer")
  deadline=$(( $(date +%s) + 40 ))
  while [ "$( [ -e "$D/acked.$prefix" ] && wc -l <"$D/acked.$prefix" || echo 0)" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "fewer than $n puts acknowledged in 40 s"
    sleep 0.05
  done
  touch "$D/stop"
  wait "$writer" || e2e_fail "the writer failed: $(cat "$D/writer.out")"
  E2E_HELPER_PIDS=()
}

# 1. keys
s_write k 3 "$nkeys" "${endpoints[@]}"
cp "$D/acked.k" "$D/acked"
echo "writer: $(cat "$D/writer.out")"
# node 3 has applied every acknowledged key before it stops
e2e_wait_local 3 "$(tail -1 "$D/acked")" "v-$(tail -1 "$D/acked")"

s_stop3 () {
  kill -TERM "${E2E_PIDS[3]}"
  wait "${E2E_PIDS[3]}" || e2e_fail "node 3 exited with an error after SIGTERM"
  E2E_PIDS[3]=""
}
s_stop3

# 2. damage.  flip.py DIR WHAT N: in the shard directory DIR, flips one
# byte of the middle put record of the N-th sealed (hinted) data file --
# WHAT = value: a value byte; header: the record's type byte; hint: a byte
# in the middle of its hint file -- and prints the record's key and file.
cat >"$D/flip.py" <<'EOF'
import os, struct, sys
d, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
datas = sorted(f for f in os.listdir(d) if f.endswith(".data"))
sealed = [f for f in datas[:-1] if os.path.exists(os.path.join(d, f[:-5] + ".hint"))]
if len(sealed) <= n:
    sys.exit("only %d sealed hinted files" % len(sealed))
f = sealed[n]
b = open(os.path.join(d, f), "rb").read()
pos, puts = 0, []
while pos + 24 <= len(b):
    typ, klen = b[pos + 4], struct.unpack_from("<H", b, pos + 6)[0]
    vlen = struct.unpack_from("<I", b, pos + 8)[0]
    if typ == 1:
        puts.append((pos, b[pos + 24:pos + 24 + klen].decode(), klen))
    pos += 24 + klen + vlen
at, key, klen = puts[len(puts) // 2]
target, off = f, {"value": at + 24 + klen + 2, "header": at + 4}.get(what)
if what == "hint":
    target = f[:-5] + ".hint"
    off = os.path.getsize(os.path.join(d, target)) // 2
with open(os.path.join(d, target), "r+b") as h:
    h.seek(off); c = h.read(1)[0]; h.seek(off); h.write(bytes([c ^ 0x41]))
print(key, target)
EOF
s_flip () { /usr/bin/python3 "$D/flip.py" "$@" || e2e_fail "cannot damage $*"; }
shard="$D/data3/shard-0"
read -r keyA fileA <<<"$(s_flip "$shard" value 0)"
read -r keyB fileB <<<"$(s_flip "$shard" header 1)"
read -r _ fileH <<<"$(s_flip "$shard" hint 2)"
[ -n "$keyA" ] && [ -n "$keyB" ] && [ -n "$fileH" ] || e2e_fail "damage failed"
echo "damaged on node 3: value of $keyA ($fileA), header of $keyB ($fileB), $fileH"

# 3. restart; every key through every node, both consistencies
e2e_node_start 3
deadline=$(( $(date +%s) + 30 ))
until "$TITANCTL" --endpoints="${E2E_CLIENT[3]}" --timeout=1s status >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "node 3 did not answer within 30 s of its restart"
  sleep 0.1
done
for n in 3 1 2; do
  out=$("$client" verify-local "$D/acked" "${E2E_CLIENT[$n]}" 2>&1) \
    || e2e_fail "LOCAL reads through node $n: $out"
  echo "node $n LOCAL: $out"
  out=$("$client" verify "$D/acked" "${E2E_CLIENT[$n]}" 2>&1) \
    || e2e_fail "linearizable reads through node $n: $out"
  echo "node $n linearizable: $out"
done

s_field () {   # s_field NODE NAME: a number of shard 0 in node's status JSON
  "$TITANCTL" --endpoints="${E2E_CLIENT[$1]}" --timeout=2s -w json status 2>/dev/null \
    | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" | head -1
}
repairs=$(s_field 3 read_repairs)
errors=$(s_field 3 data_errors)
echo "node 3 after the reads: read_repairs=$repairs data_errors=$errors"
[ "${repairs:-0}" -ge 2 ] || e2e_fail "node 3 counts $repairs read repairs, expected at least 2"
# 2 damaged reads + 1 damaged hint ignored at the open
[ "${errors:-0}" -ge 3 ] || e2e_fail "node 3 counts $errors data errors, expected at least 3"
for k in "$keyA" "$keyB"; do
  # the log escapes the quotes around the key
  grep -qF "DATA_LOSS shard 0 key \\\"$k\\\" (found by read)" "$D/titand3.log" \
    || e2e_fail "node 3's log does not report the damaged record of $k"
  grep -qF "repaired shard 0 key \\\"$k\\\"" "$D/titand3.log" \
    || e2e_fail "node 3's log does not report the repair of $k"
done
for n in 1 2; do
  [ "$(s_field "$n" data_errors)" = 0 ] || e2e_fail "node $n reports data errors"
done

# 4. scrub: C damaged while node 3 is down; no client reads it
s_stop3
read -r keyC fileC <<<"$(s_flip "$shard" value 3)"
[ -n "$keyC" ] || e2e_fail "damage failed"
echo "damaged on node 3: value of $keyC ($fileC)"
TITAN_CONFIG="$D/scrub.cfg" e2e_node_start 3
deadline=$(( $(date +%s) + 40 ))
until [ "$(s_field 3 read_repairs)" = 1 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "the scrub did not get $keyC repaired within 40 s (read_repairs=$(s_field 3 read_repairs))"
  sleep 0.2
done
passes=$(s_field 3 scrub_passes)
deadline=$(( $(date +%s) + 40 ))
until [ "$(s_field 3 scrub_passes)" -ge $(( passes + 2 )) ]; do
  [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "no two scrub passes within 40 s"
  sleep 0.2
done
scrub_errors=$(s_field 3 scrub_errors)
echo "node 3 scrub: passes=$(s_field 3 scrub_passes) scrub_errors=$scrub_errors read_repairs=$(s_field 3 read_repairs) data_errors=$(s_field 3 data_errors) last_scrub_ms=$(s_field 3 last_scrub_ms)"
[ "$scrub_errors" = 1 ] || e2e_fail "the scrubs found $scrub_errors damaged records, expected 1 ($keyC) then none"
[ "$(s_field 3 data_errors)" = 0 ] || e2e_fail "node 3 reopened with data errors: its files do not verify clean"
grep -qF "DATA_LOSS shard 0 key \\\"$keyC\\\" (found by scrub)" "$D/titand3.log" \
  || e2e_fail "node 3's log does not report the scrub's finding of $keyC"
out=$("$client" verify-local "$D/acked" "${E2E_CLIENT[3]}" 2>&1) \
  || e2e_fail "LOCAL reads through node 3 after the scrub: $out"
echo "node 3 LOCAL after the scrub: $out"
[ "$(s_field 3 data_errors)" = 0 ] || e2e_fail "reads after the scrub found damage"
# titanctl scrub: one more pass on demand, clean
before=$("$TITANCTL" --endpoints="${E2E_CLIENT[3]}" -w json scrub | sed -n 's/.*"passes":\([0-9]*\).*/\1/p')
[ -n "$before" ] || e2e_fail "titanctl scrub failed"
deadline=$(( $(date +%s) + 30 ))
until [ "$("$TITANCTL" --endpoints="${E2E_CLIENT[3]}" -w json scrub status | sed -n 's/.*"passes":\([0-9]*\).*/\1/p')" -gt "$before" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || e2e_fail "no scrub pass within 30 s of titanctl scrub"
  sleep 0.2
done
"$TITANCTL" --endpoints="${E2E_CLIENT[3]}" scrub status
"$TITANCTL" --endpoints="${E2E_CLIENT[3]}" -w json scrub status | grep -q '"last_pass_errors":0,' \
  || e2e_fail "the last scrub pass found damage"
e2e_cluster_check_logs
for n in 1 2 3; do
  kill -TERM "${E2E_PIDS[$n]}"; wait "${E2E_PIDS[$n]}"; E2E_PIDS[$n]=""
done

# 5. a single node has no replica to repair from: DATA_LOSS, saying so
e2e_start
s_write s 1 300 "$E2E_ENDPOINT"
e2e_stop
read -r keyS fileS <<<"$(s_flip "$D/data/shard-0" value 0)"
[ -n "$keyS" ] || e2e_fail "damage failed"
e2e_start
for c in local linearizable; do
  expect_rc 5 tctl get "$keyS" --consistency=$c
  grep -q "DATA_LOSS: the record of this key on node e2e is damaged (.*$fileS at offset [0-9]*: checksum mismatch) and no healthy replica could be read: no other replica" "$E2E_DIR/err" \
    || e2e_fail "single node, $c read of $keyS: $(cat "$E2E_DIR/err")"
done
echo "single node, $keyS: $(cat "$E2E_DIR/err")"
other=$(head -1 "$D/acked.s")
[ "$other" = "$keyS" ] && other=$(tail -1 "$D/acked.s")
[ "$(tctl get "$other")" = "v-$other" ] || e2e_fail "single node: $other does not read"
e2e_stop
exit 0
