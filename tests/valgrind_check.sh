#!/usr/bin/env bash
# valgrind check of one titand start/stop cycle: a default node (bitcask,
# raft, grpc_gateway) on free loopback ports runs under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite
# takes a few puts, gets, a delete and a compare-and-swap through titanctl,
# then stops on SIGTERM.  The test fails on any valgrind error (invalid
# read or write, use of uninitialised memory, bad free) and on any
# definitely lost block.  tests/valgrind.supp holds the only suppressions
# (third-party libraries), one comment per entry.
#
# Run by `make valgrind-check`.  Exits 77 (skip) when valgrind is not
# installed or titand was built with sanitizers (the two do not mix).
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
command -v valgrind >/dev/null 2>&1 || e2e_skip "valgrind is not installed (scripts/install-deps.sh)"
if grep -q -a "__asan_init" "$TITAND" 2>/dev/null; then
  e2e_skip "titand is built with --enable-sanitizers; valgrind needs a plain build"
fi
SUPP="${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/valgrind.supp"
[ -r "$SUPP" ] || e2e_fail "suppression file $SUPP is missing"

D=$E2E_DIR
PORT=$(e2e_free_port)
PEER_PORT=$(e2e_free_port)
E2E_ENDPOINT="127.0.0.1:$PORT"
mkdir -p "$D/data"
VG_LOG="$D/valgrind.log"
# Valgrind's exit code for errors is 99 so that it cannot be confused with
# titand's own.  Every thread is traced; module code is dlopened, and
# titand keeps the modules mapped until exit, so their frames have names.
valgrind --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --error-exitcode=99 \
  --suppressions="$SUPP" --num-callers=30 --log-file="$VG_LOG" \
  "$TITAND" --node-id vg1 --data-dir "$D/data" \
  --client-addr "$E2E_ENDPOINT" --peer-addr "127.0.0.1:$PEER_PORT" \
  --module-path "$TITAN_MODULE_PATH" >>"$D/titand.log" 2>&1 &
E2E_PID=$!

# Under valgrind start-up takes seconds, not milliseconds.
deadline=$(( $(date +%s) + 180 ))
until tctl --timeout=5s put vg-key vg-value >/dev/null 2>&1; do
  kill -0 "$E2E_PID" 2>/dev/null || { tail -30 "$D/titand.log" "$VG_LOG" >&2; e2e_fail "titand exited during start-up under valgrind"; }
  [ "$(date +%s)" -lt $deadline ] || { tail -30 "$D/titand.log" >&2; e2e_fail "titand did not take a put within 180 s under valgrind"; }
  sleep 0.5
done

for i in 1 2 3 4 5; do
  tctl --timeout=20s put "key-$i" "value-$i" >/dev/null || e2e_fail "put key-$i failed"
done
for i in 1 2 3 4 5; do
  v=$(tctl --timeout=20s get "key-$i") || e2e_fail "get key-$i failed"
  [ "$v" = "value-$i" ] || e2e_fail "get key-$i returned '$v'"
done
[ "$(tctl --timeout=20s del key-1)" = 1 ] || e2e_fail "del key-1 did not print 1"
rev=$(tctl --timeout=20s put key-2 again) || e2e_fail "put key-2 failed"
tctl --timeout=20s cas key-2 "$rev" swapped >/dev/null || e2e_fail "cas key-2 failed"
expect_rc 5 tctl --timeout=20s put '' empty-key      # a refused request, too
tctl --timeout=20s status >/dev/null || e2e_fail "status failed"

kill -TERM "$E2E_PID"
deadline=$(( $(date +%s) + 180 ))
while kill -0 "$E2E_PID" 2>/dev/null; do
  [ "$(date +%s)" -lt $deadline ] || e2e_fail "titand did not stop within 180 s of SIGTERM under valgrind"
  sleep 0.5
done
status=0
wait "$E2E_PID" 2>/dev/null || status=$?
E2E_PID=""

grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$VG_LOG" | tail -5
if [ $status -eq 99 ] || grep -q -E "definitely lost: [1-9]|Invalid (read|write|free)|uninitialised" "$VG_LOG"; then
  sed -n '/^==[0-9]*== [A-Z]/,$p' "$VG_LOG" | grep -v "^==[0-9]*== $" | head -150 >&2
  e2e_fail "valgrind reported errors or definite leaks (log above)"
fi
[ $status -eq 0 ] || { tail -20 "$D/titand.log" >&2; e2e_fail "titand exited $status after SIGTERM"; }
echo "valgrind: no errors, no definite leaks over a start/stop cycle"
