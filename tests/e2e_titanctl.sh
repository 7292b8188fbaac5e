#!/usr/bin/env bash
# End-to-end test of one real titand through titanctl: put/get/del/cas,
# binary values through stdin, values and keys at the limits and one byte
# over, every error status and its exit code, endpoint failover, status
# and admin commands, persistence across a clean restart, and kill -9
# right after acknowledged writes (all readable after the restart).
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
e2e_start
D=$E2E_DIR

# --- put / get / del
rev1=$(tctl put greeting hello) || e2e_fail "put failed"
rev2=$(tctl put greeting 'hello, world') || e2e_fail "put failed"
[ "$rev2" -gt "$rev1" ] || e2e_fail "revisions do not increase: $rev1 then $rev2"
tctl get greeting >"$D/v" || e2e_fail "get failed"
printf 'hello, world' | cmp -s - "$D/v" || e2e_fail "get returned '$(cat "$D/v")'"
tctl get greeting --consistency=local >"$D/v" || e2e_fail "local get failed"
printf 'hello, world' | cmp -s - "$D/v" || e2e_fail "local get returned '$(cat "$D/v")'"
# revisions are Raft indexes of the key's shard: they grow, but other
# entries (the leader's no-op, membership) also take indexes, so only the
# order is checked, and only between writes of one key (with Q shards,
# another key may live in another group with its own indexes)
json=$(tctl -w json put j 1) || e2e_fail "put -w json failed"
rev3=$(printf '%s' "$json" | sed -n 's/^{"revision":\([0-9]*\)}$/\1/p')
[ -n "$rev3" ] || e2e_fail "put -w json: $json"
json=$(tctl -w json put j 2) || e2e_fail "put -w json failed"
rev4=$(printf '%s' "$json" | sed -n 's/^{"revision":\([0-9]*\)}$/\1/p')
[ -n "$rev4" ] && [ "$rev4" -gt "$rev3" ] || e2e_fail "put -w json: $json (after revision $rev3)"
[ "$(tctl del j)" = 1 ] || e2e_fail "del of an existing key did not print 1"
[ "$(tctl del j)" = 0 ] || e2e_fail "del of a missing key did not print 0"
expect_rc 1 tctl get j
grep -q "not found" "$D/err" || e2e_fail "get of a missing key: no 'not found' on stderr"
grep -q "$E2E_ENDPOINT: NOT_FOUND" "$D/err" || e2e_fail "error does not name the endpoint and status"

# --- binary values through stdin, exact bytes back
head -c 200000 /dev/urandom >"$D/bin"
printf '\0\n\r\377' >>"$D/bin"
tctl put blob - <"$D/bin" >/dev/null || e2e_fail "put - failed"
tctl get blob >"$D/v" || e2e_fail "get blob failed"
cmp -s "$D/bin" "$D/v" || e2e_fail "binary value changed on the way"
: >"$D/empty"
tctl put empty - <"$D/empty" >/dev/null || e2e_fail "empty value refused"
tctl get empty >"$D/v" && [ ! -s "$D/v" ] || e2e_fail "empty value not returned empty"

# --- limits: 8 MiB value and 65535-byte key accepted, one byte more refused
head -c 8388608 /dev/zero | tr '\0' 'v' >"$D/max"
tctl --timeout=30s put big - <"$D/max" >/dev/null || e2e_fail "8 MiB value refused"
tctl --timeout=30s get big >"$D/v" || e2e_fail "get of the 8 MiB value failed"
cmp -s "$D/max" "$D/v" || e2e_fail "8 MiB value changed on the way"
expect_rc 4 tctl --timeout=1ms put big - <"$D/max"
grep -q "DEADLINE_EXCEEDED" "$D/err" || e2e_fail "1 ms timeout: $(cat "$D/err")"
printf 'x' >>"$D/max"
expect_rc 5 tctl --timeout=30s put big - <"$D/max"
grep -q "INVALID_ARGUMENT: value is 8388609 bytes, over the limit of 8388608 (max_value_bytes)" "$D/err" \
  || e2e_fail "oversized value: $(cat "$D/err")"
head -c 10000000 /dev/zero >"$D/huge"
expect_rc 5 tctl --timeout=30s put big - <"$D/huge"
grep -q "RESOURCE_EXHAUSTED" "$D/err" || e2e_fail "10 MB request: $(cat "$D/err")"
key=$(head -c 65535 /dev/zero | tr '\0' 'k')
tctl put "$key" v >/dev/null || e2e_fail "65535-byte key refused"
expect_rc 5 tctl put "${key}k" v
grep -q "INVALID_ARGUMENT: key is 65536 bytes, over the limit of 65535 (max_key_bytes)" "$D/err" \
  || e2e_fail "oversized key: $(cat "$D/err")"
expect_rc 5 tctl put "" v
grep -q "INVALID_ARGUMENT: key is empty" "$D/err" || e2e_fail "empty key: $(cat "$D/err")"

# --- compare-and-swap
rev=$(tctl put c v1)
new=$(tctl cas c "$rev" v2) || e2e_fail "cas at the current revision failed"
[ "$new" -gt "$rev" ] || e2e_fail "cas revision $new not above $rev"
expect_rc 3 tctl cas c "$rev" v3
grep -q "FAILED_PRECONDITION: compare-and-swap failed: expected revision $rev, current revision is $new" "$D/err" \
  || e2e_fail "cas mismatch: $(cat "$D/err")"
[ "$(tctl get c)" = v2 ] || e2e_fail "a failed cas changed the value"
tctl cas fresh 0 first >/dev/null || e2e_fail "cas create-if-absent failed"
expect_rc 3 tctl cas fresh 0 again
expect_rc 2 tctl cas fresh notanumber x

# --- usage errors
expect_rc 2 tctl
expect_rc 2 tctl frobnicate
expect_rc 2 tctl put onlykey
expect_rc 2 tctl get k --consistency=sometimes
expect_rc 2 tctl -w yaml get k
expect_rc 0 tctl --help
grep -q "Exit codes" "$D/out" || e2e_fail "--help does not document the exit codes"

# --- endpoints: a dead one is skipped; all dead is exit 4
dead=$(e2e_free_port)
expect_rc 0 "$TITANCTL" --endpoints="127.0.0.1:$dead,$E2E_ENDPOINT" get c
[ "$(cat "$D/out")" = v2 ] || e2e_fail "failover get returned '$(cat "$D/out")'"
grep -q "127.0.0.1:$dead: UNAVAILABLE" "$D/err" || e2e_fail "the dead endpoint is not named"
expect_rc 4 "$TITANCTL" --endpoints="127.0.0.1:$dead" get c
TITAN_ENDPOINTS="$E2E_ENDPOINT" expect_rc 0 "$TITANCTL" get c

# --- cluster and admin
tctl -w json status >"$D/status.json" || e2e_fail "status failed"
/usr/bin/python3 - "$D/status.json" <<'PY' || e2e_fail "status -w json: $(cat "$D/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert [n["id"] for n in s["nodes"]] == ["e2e"], s
assert s["nodes"][0]["state"] == "up" and s["nodes"][0]["client_addr"], s
sh = s["shards"][0]
assert sh["id"] == 0 and sh["leader"] == "e2e" and sh["replicas"] == ["e2e"], s
assert isinstance(sh["applied_index"], int), s
PY
tctl status >"$D/out" || e2e_fail "status failed"
grep -q "^SHARD" "$D/out" || e2e_fail "status table has no SHARD header"
tctl -w table member list | grep -q "^e2e " || e2e_fail "member list"
# membership goes to the ring (the meta group; adding real nodes is in
# tests/ring_placement_test.c): refusals name their reason
expect_rc 1 tctl member remove n2
grep -q "no node n2 in the cluster" "$D/err" || e2e_fail "member remove: $(cat "$D/err")"
expect_rc 3 tctl member remove e2e
grep -q "the last member that can hold replicas" "$D/err" || e2e_fail "member remove e2e: $(cat "$D/err")"
expect_rc 5 tctl member add n2 nowhere 127.0.0.1:2
grep -q "is not host:port" "$D/err" || e2e_fail "member add: $(cat "$D/err")"
expect_rc 3 tctl leader transfer n2
grep -q "not a voter" "$D/err" || e2e_fail "leader transfer: $(cat "$D/err")"
expect_rc 2 tctl leader
tctl module list >"$D/out" || e2e_fail "module list failed"
grep -q "^bitcask " "$D/out" && grep -q "^grpc_gateway " "$D/out" \
  || e2e_fail "module list: $(cat "$D/out")"
expect_rc 1 tctl module restart nosuchmodule
tctl merge >/dev/null || e2e_fail "merge failed: $(tctl merge 2>&1)"

# --- hot reload of the gateway itself (through itself) and of bitcask
tctl module reload grpc_gateway >"$D/out" || e2e_fail "module reload grpc_gateway failed"
grep -q "being reloaded" "$D/out" || e2e_fail "module reload: $(cat "$D/out")"
e2e_wait_get () {   # KEY VALUE: polls until get KEY prints VALUE (deadline 20 s)
  local deadline=$(( $(date +%s) + 20 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    [ "$(tctl get "$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.1
  done
  e2e_fail "get $1 did not return '$2' within 20 s"
}
e2e_wait_get c v2
kill -0 "$E2E_PID" || e2e_fail "titand died on a reload of the gateway"
# reload the gateway while four clients keep writing: calls in flight may
# fail (UNAVAILABLE, exit 4), titand must not
for w in 1 2 3 4; do
  ( for i in $(seq 1 25); do tctl put "load-$w-$i" x >/dev/null 2>&1; done ) &
done
sleep 0.2
tctl module reload grpc_gateway >/dev/null 2>&1
for job in $(jobs -p); do
  [ "$job" = "$E2E_PID" ] || wait "$job" || true
done
kill -0 "$E2E_PID" || e2e_fail "titand died reloading the gateway under load"
e2e_wait_get c v2
tctl module restart bitcask >/dev/null || e2e_fail "module restart bitcask failed"
e2e_wait_get c v2
tctl -w json module list | grep -q '"name":"grpc_gateway","version":"[^"]*","state":"running","restarts":2' \
  || e2e_fail "module list after reload: $(tctl -w json module list)"

# --- persistence across a clean restart
e2e_stop
e2e_start
[ "$(tctl get greeting)" = "hello, world" ] || e2e_fail "value lost across restart"
tctl get blob >"$D/v" && cmp -s "$D/bin" "$D/v" || e2e_fail "binary value lost across restart"
[ "$(tctl get c)" = v2 ] || e2e_fail "cas value lost across restart"

# --- kill -9 right after acknowledged writes
for i in $(seq 1 60); do
  tctl put "k9-$i" "value-$i" >/dev/null || e2e_fail "put k9-$i failed"
done
tctl del greeting >/dev/null
e2e_kill9
e2e_start
for i in $(seq 1 60); do
  [ "$(tctl get "k9-$i")" = "value-$i" ] || e2e_fail "acknowledged write k9-$i lost after kill -9"
done
expect_rc 1 tctl get greeting
e2e_stop
echo "PASS: e2e_titanctl"
