#!/usr/bin/env bash
# End-to-end security test with real titand processes on free loopback
# ports, certificates from scripts/make-test-certs.sh:
#   1. one node with TLS (client certificates required) and a token:
#      titanctl with CA + client certificate + token works; without a CA
#      it fails clearly (TLS); with a client certificate of another CA it
#      is refused; a missing or wrong token gets UNAUTHENTICATED;
#   2. three nodes with TLS (mutual), tokens and CURVE peer encryption: a
#      write sent to a follower is forwarded to the leader and works; a
#      node whose CURVE key is not in the allowed set cannot join; a node
#      whose key is allowed can (the control);
#   3. without CURVE, the Raft messages of a node that is not a member (the
#      leader of another cluster that was told to add a member) are
#      dropped and logged, and the cluster is not disturbed.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
KEYGEN="$TITAN_BUILDDIR/cli/titan-keygen"
[ -x "$KEYGEN" ] || e2e_skip "titan-keygen is not built"
command -v openssl >/dev/null || e2e_skip "openssl is not installed"
SRC=${TITAN_SRCDIR:-$(dirname "$0")/..}
D=$E2E_DIR
declare -A PIDS CLIENT PEER
trap 'for n in "${!PIDS[@]}"; do kill -9 "${PIDS[$n]}" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"' EXIT

TITAN_KEYGEN=$KEYGEN "$SRC/scripts/make-test-certs.sh" "$D/pki" s1 s2 s3 s4 >/dev/null \
  || e2e_fail "make-test-certs.sh failed"
TITAN_KEYGEN=$KEYGEN "$SRC/scripts/make-test-certs.sh" "$D/other" >/dev/null \
  || e2e_fail "make-test-certs.sh (second CA) failed"
P=$D/pki
TOKEN=$(cat "$P/token")

# write_cfg NAME CURVE(0|1) TLS(0|1) [curve_cert]
write_cfg () {
  local n=$1 curve=$2 tls=$3 cert=${4:-$P/$1/curve/node.cert}
  {
    echo "modules"
    echo "    bitcask"
    echo "        path = titan_bitcask.so"
    echo "    ring"
    echo "        path = titan_ring.so"
    echo "    raft"
    echo "        path = titan_raft.so"
    if [ "$curve" = 1 ]; then
      echo "        curve = true"
      echo "        curve_server_cert = \"$P/$n/curve/server.cert\""
      echo "        curve_keys_dir = \"$P/$n/curve/keys\""
      echo "        curve_cert = \"$cert\""
    fi
    echo "    grpc_gateway"
    echo "        path = titan_grpc_gateway.so"
    if [ "$tls" = 1 ]; then
      echo "        tls_cert = \"$P/$n/node.crt\""
      echo "        tls_key = \"$P/$n/node.key\""
      echo "        tls_ca = \"$P/$n/ca.crt\""
      echo "        tls_client_auth = require"
      echo "        auth_token_file = \"$P/$n/token\""
    fi
  } >"$D/$n.cfg"
}

# start NAME CFG [JOIN]
start () {
  local n=$1 cfg=$2 join=()
  [ -n "${CLIENT[$n]:-}" ] || { CLIENT[$n]="127.0.0.1:$(e2e_free_port)"; PEER[$n]="127.0.0.1:$(e2e_free_port)"; }
  [ -z "${3:-}" ] || join=(--join "$3")
  "$TITAND" --config "$cfg" --node-id "$n" --data-dir "$D/data-$n" \
    --client-addr "${CLIENT[$n]}" --peer-addr "${PEER[$n]}" "${join[@]}" \
    --module-path "$TITAN_MODULE_PATH" >>"$D/$n.log" 2>&1 &
  PIDS[$n]=$!
}
SEC=(--cacert="$P/ca.crt" --cert="$P/client/client.crt" --key="$P/client/client.key" --token="$TOKEN")
ctl () { "$TITANCTL" --timeout=2s "$@"; }
wait_ok () {   # SECONDS DESCRIPTION CMD...: polls CMD until it succeeds
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  for n in "${!PIDS[@]}"; do echo "--- $n.log" >&2; tail -5 "$D/$n.log" >&2; done
  e2e_fail "$what not within $limit s"
}
expect_err () {   # CODE PATTERN CMD...: CMD exits CODE, stderr matches PATTERN
  local code=$1 pattern=$2; shift 2
  expect_rc "$code" "$@"
  grep -q -E "$pattern" "$D/err" || { cat "$D/err" >&2; e2e_fail "'$*': stderr does not match '$pattern'"; }
}

# ---------------------------------------------------------------- 1. one node
write_cfg s1 0 1
start s1 "$D/s1.cfg"
E1=${CLIENT[s1]}
wait_ok 30 "s1 answering over TLS" ctl --endpoints="$E1" "${SEC[@]}" status
expect_rc 0 ctl --endpoints="$E1" "${SEC[@]}" put colour blue
expect_rc 0 ctl --endpoints="$E1" "${SEC[@]}" get colour
[ "$(cat "$D/out")" = blue ] || e2e_fail "get over TLS returned '$(cat "$D/out")'"
TITANCTL_CACERT=$P/ca.crt TITANCTL_CERT=$P/client/client.crt TITANCTL_KEY=$P/client/client.key \
  TITANCTL_TOKEN=$TOKEN expect_rc 0 ctl --endpoints="$E1" get colour
# no CA: plain text against TLS fails, quickly and saying so
start_s=$(date +%s)
expect_err 4 "UNAVAILABLE.*handshake failed.*TLS" ctl --endpoints="$E1" --token="$TOKEN" get colour
[ $(( $(date +%s) - start_s )) -le 3 ] || e2e_fail "titanctl without a CA took more than 3 s to fail"
# client certificate of another CA: the server refuses the handshake
expect_err 4 "UNAVAILABLE.*(TLS handshake failed|client certificate)" ctl --endpoints="$E1" --cacert="$P/ca.crt" \
  --cert="$D/other/client/client.crt" --key="$D/other/client/client.key" --token="$TOKEN" get colour
# no client certificate at all, client auth required
expect_err 4 "UNAVAILABLE.*(TLS handshake failed|client certificate)" ctl --endpoints="$E1" --cacert="$P/ca.crt" --token="$TOKEN" get colour
# the server's certificate checked against another CA
expect_err 4 "TLS handshake failed" ctl --endpoints="$E1" --cacert="$D/other/ca.crt" \
  --cert="$P/client/client.crt" --key="$P/client/client.key" --token="$TOKEN" get colour
# tokens
expect_err 5 "UNAUTHENTICATED: this node requires a token" ctl --endpoints="$E1" \
  --cacert="$P/ca.crt" --cert="$P/client/client.crt" --key="$P/client/client.key" get colour
expect_err 5 "UNAUTHENTICATED: invalid token" ctl --endpoints="$E1" \
  --cacert="$P/ca.crt" --cert="$P/client/client.crt" --key="$P/client/client.key" --token=wrong put colour red
expect_rc 0 ctl --endpoints="$E1" "${SEC[@]}" get colour
[ "$(cat "$D/out")" = blue ] || e2e_fail "a refused put changed the value"
kill -TERM "${PIDS[s1]}"; wait "${PIDS[s1]}" 2>/dev/null; unset 'PIDS[s1]'
echo "ok: TLS + token on one node"

# ------------------------------------------- 2. three nodes, TLS + CURVE
rm -rf "$D/data-s1"
for n in s1 s2 s3 s4; do write_cfg $n 1 1; done
start s1 "$D/s1.cfg"
wait_ok 30 "s1 up" ctl --endpoints="${CLIENT[s1]}" "${SEC[@]}" status
start s2 "$D/s2.cfg" "${PEER[s1]}"
start s3 "$D/s3.cfg" "${PEER[s1]}"
voters () { ctl --endpoints="$1" "${SEC[@]}" member list 2>/dev/null | grep -c ', up$'; }
three_up () { [ "$(voters "${CLIENT[s1]}")" = 3 ]; }
wait_ok 60 "a 3-node CURVE cluster" three_up
# ring placement: every shard at its desired replicas, each with a leader
# (settled ENDPOINT [TITANCTL OPTION...])
settled () { ctl --endpoints="$1" "${@:2}" status 2>/dev/null \
               | grep -q " 0 shard(s) without a leader, 0 shard(s) not at their desired replicas"; }
wait_ok 60 "the shards settled on 3 nodes" settled "${CLIENT[s1]}" "${SEC[@]}"
grep -q "CURVE" "$D/s1.log" && e2e_fail "unexpected CURVE warning in s1's log: $(grep CURVE "$D/s1.log")"
# a write to a follower is forwarded (TLS, client certificate, token)
leader=$(ctl --endpoints="${CLIENT[s1]}" "${SEC[@]}" -w json status | sed -n 's/.*"leader":"\([a-z0-9]*\)".*/\1/p')
follower=s2; [ "$leader" = s2 ] && follower=s3
expect_rc 0 ctl --endpoints="${CLIENT[$follower]}" "${SEC[@]}" put forwarded yes
got_local () { [ "$(ctl --endpoints="${CLIENT[$1]}" "${SEC[@]}" get forwarded --consistency=local)" = yes ]; }
for n in s1 s2 s3; do wait_ok 20 "forwarded write on $n" got_local $n; done
# an intruder: the cluster's server key (stolen), its own key not allowed
mkdir -p "$D/intruder"
"$KEYGEN" "$D/intruder/node.cert" intruder >/dev/null
write_cfg s4 1 1 "$D/intruder/node.cert"
start s4 "$D/s4.cfg" "${PEER[s1]}"
sleep 5   # the intruder retries its join every 200 ms to 2 s meanwhile
kill -0 "${PIDS[s4]}" 2>/dev/null || e2e_fail "the intruder node exited"
[ "$(ctl --endpoints="${CLIENT[s1]}" "${SEC[@]}" member list | grep -c s4)" = 0 ] \
  || e2e_fail "a node with a key outside the allowed set was added"
kill -9 "${PIDS[s4]}"; wait "${PIDS[s4]}" 2>/dev/null; unset 'PIDS[s4]'
# the control: s4 with its allowed key joins
rm -rf "$D/data-s4"
write_cfg s4 1 1
start s4 "$D/s4.cfg" "${PEER[s1]}"
four_up () { [ "$(voters "${CLIENT[s1]}")" = 4 ]; }
wait_ok 60 "s4 (allowed key) joining" four_up
wait_ok 60 "the shards settled on 4 nodes" settled "${CLIENT[s1]}" "${SEC[@]}"
expect_rc 0 ctl --endpoints="${CLIENT[s4]}" "${SEC[@]}" put after-join ok
for n in s1 s2 s3 s4; do kill -TERM "${PIDS[$n]}" 2>/dev/null; done
for n in s1 s2 s3 s4; do wait "${PIDS[$n]}" 2>/dev/null; unset "PIDS[$n]"; done
echo "ok: TLS + token + CURVE cluster, forwarding, intruder refused"

# ------------------------------- 3. no CURVE: non-member Raft messages dropped
# Ring placement (the default): x's groups (the meta group and its data
# shards) add m2 and m2 drops all their traffic.
for n in m1 m2 x; do write_cfg $n 0 0; done
start m1 "$D/m1.cfg"
wait_ok 30 "m1 up" ctl --endpoints="${CLIENT[m1]}" status
start m2 "$D/m2.cfg" "${PEER[m1]}"
plain_voters () { ctl --endpoints="$1" member list 2>/dev/null | grep -c ', up$'; }
two_up () { [ "$(plain_voters "${CLIENT[m1]}")" = 2 ]; }
wait_ok 60 "a 2-node cluster" two_up
wait_ok 60 "the shards settled on 2 nodes" settled "${CLIENT[m1]}"
expect_rc 0 ctl --endpoints="${CLIENT[m1]}" put before x
start x "$D/x.cfg"              # a one-node cluster of its own
wait_ok 30 "x up" ctl --endpoints="${CLIENT[x]}" status
# x's leader adds m2 as a learner and sends it Raft messages
ctl --endpoints="${CLIENT[x]}" --timeout=3s member add m2 "${CLIENT[m2]}" "${PEER[m2]}" >/dev/null 2>&1
dropped () { grep -q "dropped .* from 'x': not a member of group" "$D/m2.log"; }
wait_ok 20 "m2 dropping x's messages" dropped
sleep 2
expect_rc 0 ctl --endpoints="${CLIENT[m2]}" put after x
expect_rc 0 ctl --endpoints="${CLIENT[m2]}" get before
[ "$(cat "$D/out")" = x ] || e2e_fail "m2 lost a committed write"
[ "$(plain_voters "${CLIENT[m1]}")" = 2 ] || e2e_fail "the cluster's membership changed"
ctl --endpoints="${CLIENT[m2]}" -w json status | grep -q '"leader":"m[12]"' || e2e_fail "m2 follows a foreign leader"
echo "ok: a non-member's Raft messages are dropped"
for n in m1 m2 x; do kill -TERM "${PIDS[$n]}" 2>/dev/null; done
for n in m1 m2 x; do wait "${PIDS[$n]}" 2>/dev/null; unset "PIDS[$n]"; done
for f in "$D"/*.log; do
  grep -q -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$f" && e2e_fail "sanitizer report in $f"
done
exit 0
