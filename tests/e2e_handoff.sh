#!/usr/bin/env bash
# Hinted handoff across a real partition (docs/handoff.md, issue 7 part 3).
#
# Three titand processes, each in its own network namespace (the chaos
# harness's tests/chaos/chaos_net.sh and chaos_cluster.sh).  Node n3 is
# cut off from n1 and n2 with iptables (the test client in the root
# namespace still reaches it); deferred puts are sent to n3 (distinct
# keys, and keys written several times, to check the order per key); all
# must be acknowledged as deferred.  n3 is killed with SIGKILL and started
# again while still cut off (its hint log must reload), more deferred
# puts are sent, then the partition is healed.  Once n3 reports no
# pending hint, every key is read linearizably through n1 and through n2:
# each must hold its last deferred value.  n3 is killed and restarted
# once more in the middle of its delivery when the test catches it there.
# Exactly once: n3 logs the
# revision each hint committed at; every key's revision (as read) must be
# the one its last hint committed at (a hint applied again later would
# move it), and no hint may be logged as committed at two revisions.
# Prints: sent, acknowledged, committed, duplicates (must be 0).
#
# Needs root (network namespaces); exits 77 (SKIP) when they cannot be made.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${TITAN_BUILDDIR:?TITAN_BUILDDIR is not set (run through make check)}"
# shellcheck source=chaos/chaos_net.sh
. "$here/chaos/chaos_net.sh"
# shellcheck source=chaos/chaos_cluster.sh
. "$here/chaos/chaos_cluster.sh"

TITAND=""
for c in "$TITAN_BUILDDIR/titand" "$TITAN_BUILDDIR/kernel/titand"; do
  [ -x "$c" ] && { TITAND=$c; break; }
done
TITANCTL="$TITAN_BUILDDIR/cli/titanctl"
[ -n "$TITAND" ] && [ -x "$TITANCTL" ] || { echo "SKIP: titand or titanctl is not built in $TITAN_BUILDDIR"; exit 77; }
if ! why=$(net_can_run); then
  echo "SKIP: cannot make network namespaces here: $why"
  exit 77
fi

DISTINCT=${HANDOFF_DISTINCT:-24}      # keys written once (before the restart)
REPEATED=${HANDOFF_REPEATED:-4}       # keys written several times
ROUNDS=${HANDOFF_ROUNDS:-3}           # writes of each repeated key before the restart
CL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/titan-handoff.XXXXXX")
CL_N=3
CL_SHARDS=1
failed=1
cleanup () {
  cl_stop_all
  net_cleanup
  wait 2>/dev/null
  if [ $failed = 1 ]; then
    for i in 1 2 3; do
      echo "--- n$i log (hinted handoff lines, last 15)" >&2
      grep -i -E "hint|deferred" "$CL_DIR/n$i/titand.log" 2>/dev/null | tail -15 >&2
    done
  fi
  rm -rf "$CL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail () { echo "FAIL: $*" >&2; exit 1; }
now () { date +%s; }

touch "$CL_DIR/cluster.log"
net_setup 3 || fail "network set-up failed"
t0=$(now)
cl_form || fail "the 3-node cluster did not form within 120 s"
echo "handoff: cluster formed in $(( $(now) - t0 )) s on 10.77.$NET_X.0/24"

C=$(cl_client 3)
# top-level "hints_pending" of n3's status (the last one in the JSON)
pending () {
  CTL_TIMEOUT=2s ctl --endpoints="$C" -w json status 2>/dev/null \
    | sed -n 's/.*"hints_pending":\([0-9]*\),"hints_pending_bytes":[0-9]*,"hints_oldest_age_ms":[0-9]*}$/\1/p'
}

net_partition "3" "1 2"
cl_log "partition: n3 | n1 n2"
# n1 and n2 elect a leader of their own (n3 cannot: check-quorum)
deadline=$(( $(now) + 60 ))
while :; do
  s=$(cl_status 1 2>/dev/null) && l=${s% *} && { [ "$l" = 1 ] || [ "$l" = 2 ]; } && break
  [ "$(now)" -lt $deadline ] || fail "n1 and n2 elected no leader within 60 s of the partition"
  sleep 0.2
done
echo "handoff: n3 cut off from n1 and n2 (their leader: n$l)"

declare -A last=()         # key -> last value sent
declare -a order=()        # acknowledged puts in order: "key value"
sent=0 acked=0
deferred_put () {          # KEY VALUE
  sent=$((sent + 1))
  local out
  out=$(CTL_TIMEOUT=10s ctl --endpoints="$C" put --deferred "$1" "$2" 2>&1) \
    || fail "deferred put $1=$2 to n3 failed: $out"
  [ "$out" = "accepted (deferred, not yet committed)" ] \
    || fail "deferred put $1=$2 answered '$out'"
  acked=$((acked + 1))
  last[$1]=$2
  order+=("$1 $2")
}

for i in $(seq 1 "$DISTINCT"); do
  deferred_put "d$i" "value-d$i"
  # the repeated keys between the distinct ones, ROUNDS times each
  if [ $((i % (DISTINCT / ROUNDS))) = 0 ]; then
    for j in $(seq 1 "$REPEATED"); do deferred_put "r$j" "r$j-round$((i / (DISTINCT / ROUNDS)))"; done
  fi
done
p=$(pending)
[ "$p" = "$acked" ] || fail "n3 reports ${p:-no} pending hints, expected $acked (nothing can be delivered while cut off)"
echo "handoff: $acked deferred puts acknowledged by n3 while cut off; $p pending"
CTL_TIMEOUT=2s ctl --endpoints="$C" status | tail -4 | sed 's/^/  n3 status: /'

# restart n3 while still cut off: the hint log must come back whole
cl_kill9 3
cl_start 3
deadline=$(( $(now) + 60 ))
until p=$(pending) && [ -n "$p" ]; do
  [ "$(now)" -lt $deadline ] || fail "n3 did not answer within 60 s of its restart"
  sleep 0.2
done
[ "$p" = "$acked" ] || fail "after its restart n3 reports $p pending hints, expected $acked"
grep -q "deferred puts .* wait for delivery" "$CL_DIR/n3/titand.log" \
  || fail "n3 did not log its reloaded hints"
echo "handoff: n3 killed (SIGKILL) and restarted while cut off: $p hints reloaded"
for j in $(seq 1 "$REPEATED"); do deferred_put "r$j" "r$j-after-restart"; done
for i in 1 2 3; do deferred_put "d$((DISTINCT + i))" "value-after-restart-$i"; done
sleep 1
p=$(pending)
[ "$p" = "$acked" ] || fail "n3 reports ${p:-no} pending hints, expected $acked"

net_heal
cl_log "healed"
t_heal=$(now)
# a second SIGKILL restart of n3 in the middle of its delivery, when it
# can be caught there: hints delivered before must not be applied again
deadline=$(( t_heal + 120 ))
mid=""
while [ "$(now)" -lt $deadline ]; do
  p=$(pending)
  [ -n "$p" ] || { sleep 0.05; continue; }
  if [ "$p" -lt "$acked" ] && [ "$p" -gt 0 ]; then
    cl_kill9 3
    cl_start 3
    mid=$p
    break
  fi
  [ "$p" = 0 ] && break
  sleep 0.05
done
if [ -n "$mid" ]; then
  echo "handoff: n3 killed (SIGKILL) and restarted again in the middle of its delivery ($mid of $acked pending)"
else
  echo "handoff: (n3 delivered everything before a restart in the middle could be made)"
fi
deadline=$(( t_heal + 180 ))
until p=$(pending) && [ "$p" = 0 ]; do
  [ "$(now)" -lt $deadline ] || fail "n3 still reports ${p:-?} pending hints 180 s after the heal"
  sleep 0.5
done
echo "handoff: healed; n3 delivered every hint within $(( $(now) - t_heal )) s"

# What n3 logged: "hint SEQ (client ...) committed at revision REV" and
# "hint SEQ ... was applied before" (a dedup answer to a hint sent again).
log="$CL_DIR/n3/titand.log"
declare -A rev_of=() revs=()
while read -r seq rev; do
  rev_of[$seq]=$rev
  [[ " ${revs[$seq]:-} " == *" $rev "* ]] || revs[$seq]="${revs[$seq]:-} $rev"
done < <(sed -n 's/.*hinted handoff: shard 0 hint \([0-9]*\) (client [0-9a-f]*) committed at revision \([0-9]*\).*/\1 \2/p' "$log")
dedup_answers=$(grep -c "hinted handoff: shard 0 hint [0-9]* (client [0-9a-f]*) was applied before" "$log")
committed=0 duplicates=0
for seq in $(seq 1 "$acked"); do
  if [ -n "${rev_of[$seq]:-}" ]; then committed=$((committed + 1))
  elif grep -q "hinted handoff: shard 0 hint $seq (client [0-9a-f]*) was applied before" "$log"; then
    committed=$((committed + 1))
  fi
  set -- ${revs[$seq]:-}
  [ $# -gt 1 ] && { echo "hint $seq committed at revisions:${revs[$seq]}" >&2; duplicates=$((duplicates + 1)); }
done

# every key through n1 and n2, linearizably; the revision must be the one
# its last hint committed at (sequences are given in acceptance order)
declare -A last_seq=()
for idx in "${!order[@]}"; do last_seq[${order[$idx]%% *}]=$((idx + 1)); done
wrong=0
for key in "${!last[@]}"; do
  want_rev=${rev_of[${last_seq[$key]}]:-}
  for n in 1 2; do
    out=$(CTL_TIMEOUT=10s ctl --endpoints="$(cl_client $n)" -w table get "$key" 2>&1) \
      || { echo "get $key through n$n failed: $out" >&2; wrong=$((wrong + 1)); continue; }
    line=$(echo "$out" | tail -1)
    value=$(echo "$line" | cut -f2)
    rev=$(echo "$line" | cut -f3)
    if [ "$value" != "${last[$key]}" ]; then
      echo "$key through n$n: '$value', expected '${last[$key]}'" >&2; wrong=$((wrong + 1))
    elif [ -n "$want_rev" ] && [ "$rev" != "$want_rev" ]; then
      echo "$key through n$n: revision $rev, but its last hint committed at $want_rev (applied again?)" >&2
      duplicates=$((duplicates + 1))
    fi
  done
done

echo "handoff: sent $sent, acknowledged $acked, committed $committed, duplicates $duplicates" \
     "(dedup answers to hints sent again: $dedup_answers), keys ${#last[@]}, wrong reads $wrong"
[ "$committed" = "$acked" ] || fail "$committed hints committed, $acked acknowledged"
[ "$duplicates" = 0 ] || fail "$duplicates duplicates"
[ "$wrong" = 0 ] || fail "$wrong reads did not return the last deferred value"
failed=0
echo "PASS: e2e_handoff"
