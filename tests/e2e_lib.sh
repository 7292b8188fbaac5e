# Titan-KV end-to-end test helpers (sourced by tests/e2e_*.sh and
# tests/interop_*.sh): start and stop a real titand on free loopback
# ports in a temporary directory, and wait for it with a deadline.
#
# Uses TITAN_BUILDDIR and TITAN_MODULE_PATH from the test environment
# (Makefile.am's AM_TESTS_ENVIRONMENT).  A test that cannot run because a
# program is not built yet exits 77 (automake's SKIP) with the reason.

set -u
: "${TITAN_BUILDDIR:?TITAN_BUILDDIR is not set (run through make check)}"
TITANCTL="$TITAN_BUILDDIR/cli/titanctl"
TITAND=""
for candidate in "$TITAN_BUILDDIR/titand" "$TITAN_BUILDDIR/kernel/titand"; do
  if [ -x "$candidate" ]; then TITAND=$candidate; break; fi
done

e2e_skip () { echo "SKIP: $*"; exit 77; }
e2e_fail () { echo "FAIL: $*" >&2; exit 1; }

e2e_require () {
  [ -n "$TITAND" ] || e2e_skip "titand is not built in $TITAN_BUILDDIR"
  [ -x "$TITANCTL" ] || e2e_skip "titanctl is not built in $TITAN_BUILDDIR"
  local found=no dir
  local IFS=:
  for dir in ${TITAN_MODULE_PATH:-}; do
    [ -e "$dir/titan_bitcask.so" ] && found=yes
  done
  [ $found = yes ] || e2e_skip "titan_bitcask.so is not built (TITAN_MODULE_PATH)"
}

# Prints a free TCP port on 127.0.0.1 (bound to port 0 and released).
e2e_free_port () {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/titan-e2e.XXXXXX")
E2E_PID=""
E2E_PORT=""
E2E_ENDPOINT=""
trap 'e2e_cleanup' EXIT
e2e_cleanup () {
  if [ -n "$E2E_PID" ] && kill -0 "$E2E_PID" 2>/dev/null; then
    kill -9 "$E2E_PID" 2>/dev/null; wait "$E2E_PID" 2>/dev/null
  fi
  local pid
  for pid in "${E2E_PIDS[@]}" "${E2E_HELPER_PIDS[@]}"; do
    [ -n "$pid" ] || continue
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$E2E_DIR"
}

# e2e_start: starts titand (data in $E2E_DIR/data, log in $E2E_DIR/titand.log)
# on the ports chosen the first time, and waits until it answers.
e2e_start () {
  if [ -z "$E2E_PORT" ]; then
    E2E_PORT=$(e2e_free_port)
    E2E_PEER_PORT=$(e2e_free_port)
    E2E_ENDPOINT="127.0.0.1:$E2E_PORT"
  fi
  mkdir -p "$E2E_DIR/data"
  "$TITAND" --node-id e2e --data-dir "$E2E_DIR/data" \
    --client-addr "$E2E_ENDPOINT" --peer-addr "127.0.0.1:$E2E_PEER_PORT" \
    --module-path "$TITAN_MODULE_PATH" >>"$E2E_DIR/titand.log" 2>&1 &
  E2E_PID=$!
  local deadline=$(( $(date +%s) + 30 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    if ! kill -0 "$E2E_PID" 2>/dev/null; then
      tail -20 "$E2E_DIR/titand.log" >&2
      e2e_fail "titand exited during start-up"
    fi
    if "$TITANCTL" --endpoints="$E2E_ENDPOINT" --timeout=1s status >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$E2E_DIR/titand.log" >&2
  e2e_fail "titand did not answer on $E2E_ENDPOINT within 30 s"
}

# e2e_stop: SIGTERM and wait (bounded), as an operator would.
e2e_stop () {
  kill -TERM "$E2E_PID"
  local deadline=$(( $(date +%s) + 30 ))
  while kill -0 "$E2E_PID" 2>/dev/null; do
    [ "$(date +%s)" -lt $deadline ] || e2e_fail "titand did not stop within 30 s of SIGTERM"
    sleep 0.1
  done
  local status=0
  wait "$E2E_PID" 2>/dev/null || status=$?
  E2E_PID=""
  e2e_check_log
  [ $status -eq 0 ] || { tail -20 "$E2E_DIR/titand.log" >&2; e2e_fail "titand exited $status after SIGTERM"; }
}

# e2e_check_log [LOG...]: fails on a sanitizer report in titand's log
# (builds with --enable-sanitizers); default $E2E_DIR/titand.log.
e2e_check_log () {
  local log
  [ $# -gt 0 ] || set -- "$E2E_DIR/titand.log"
  for log in "$@"; do
    if grep -q -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log"; then
      grep -A 30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log" | head -60 >&2
      e2e_fail "sanitizer report in $(basename "$log")"
    fi
  done
}

# e2e_kill9: kills titand with SIGKILL (no chance to flush anything).
e2e_kill9 () {
  kill -9 "$E2E_PID"
  wait "$E2E_PID" 2>/dev/null
  E2E_PID=""
}

# tctl ARGS: titanctl against the test node.
tctl () { "$TITANCTL" --endpoints="$E2E_ENDPOINT" "$@"; }

# expect_rc N CMD...: runs CMD, fails unless it exits N.
expect_rc () {
  local want=$1; shift
  local got=0
  "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || got=$?
  if [ "$got" != "$want" ]; then
    echo "--- stdout" >&2; cat "$E2E_DIR/out" >&2
    echo "--- stderr" >&2; cat "$E2E_DIR/err" >&2
    e2e_fail "'$*' exited $got, expected $want"
  fi
}

# ---------------------------------------------------------------------
# A cluster of titand processes (tests/e2e_failover.sh, e2e_crash_all.sh):
# node N (1..) has id $E2E_PREFIX$N, data in $E2E_DIR/dataN, log in
# $E2E_DIR/titandN.log, client address ${E2E_CLIENT[N]}, peer address
# ${E2E_PEER[N]} and pid ${E2E_PIDS[N]} ("" while it is down).  Node 1
# bootstraps; the others join it (a restarted node with state ignores
# --join).  The EXIT trap kills whatever still runs.
declare -a E2E_PIDS=() E2E_CLIENT=() E2E_PEER=()
# Other background processes of a test (clients), killed at exit too.
declare -a E2E_HELPER_PIDS=()
E2E_NODES=0
E2E_PREFIX=n
E2E_ALL=""

# e2e_static_modules [BITCASK_LINE...]: prints a `modules` section with
# one group on static placement (explicit: the default is ring placement
# with Q = 16): bitcask (with the given "key = value" lines), raft and
# grpc_gateway.
e2e_static_modules () {
  local line
  printf 'modules\n    bitcask\n        path = titan_bitcask.so\n'
  for line in "$@"; do printf '        %s\n' "$line"; done
  printf '    raft\n        path = titan_raft.so\n        placement = static\n        shards = 1\n'
  printf '    grpc_gateway\n        path = titan_grpc_gateway.so\n'
}

# e2e_cluster_init COUNT PREFIX: picks free ports for COUNT nodes.
e2e_cluster_init () {
  local n
  E2E_NODES=$1
  E2E_PREFIX=$2
  E2E_ALL=""
  for n in $(seq 1 "$E2E_NODES"); do
    E2E_CLIENT[$n]="127.0.0.1:$(e2e_free_port)"
    E2E_PEER[$n]="127.0.0.1:$(e2e_free_port)"
    E2E_PIDS[$n]=""
    E2E_ALL="$E2E_ALL${E2E_ALL:+,}${E2E_CLIENT[$n]}"
  done
}

# e2e_node_start N: starts node N in the background.
e2e_node_start () {
  local n=$1 join=()
  [ "$n" = 1 ] || join=(--join "${E2E_PEER[1]}")
  "$TITAND" --node-id "$E2E_PREFIX$n" --data-dir "$E2E_DIR/data$n" \
    --client-addr "${E2E_CLIENT[$n]}" --peer-addr "${E2E_PEER[$n]}" "${join[@]}" \
    --module-path "$TITAN_MODULE_PATH" >>"$E2E_DIR/titand$n.log" 2>&1 &
  E2E_PIDS[$n]=$!
}

# e2e_cluster_start: starts node 1, waits until it answers, starts the
# others and waits (30 s each) until all are voters.
e2e_cluster_start () {
  local n up=0
  e2e_node_start 1
  for _ in $(seq 1 300); do
    "$TITANCTL" --endpoints="${E2E_CLIENT[1]}" --timeout=1s status >/dev/null 2>&1 && break
    sleep 0.1
  done
  for n in $(seq 2 "$E2E_NODES"); do e2e_node_start "$n"; done
  for _ in $(seq 1 300); do
    up=$("$TITANCTL" --endpoints="${E2E_CLIENT[1]}" --timeout=1s -w json member list 2>/dev/null \
         | grep -o '"state":"up"' | wc -l) || up=0
    [ "$up" -ge "$E2E_NODES" ] && return 0
    sleep 0.1
  done
  e2e_fail "the $E2E_NODES nodes did not become voters"
}

# e2e_cluster_kill9 N...: SIGKILL to the given nodes in one kill(1) call
# (as close to the same moment as a shell can), then reaps them.
e2e_cluster_kill9 () {
  local n pids=()
  for n in "$@"; do pids+=("${E2E_PIDS[$n]}"); done
  kill -9 "${pids[@]}"
  for n in "$@"; do wait "${E2E_PIDS[$n]}" 2>/dev/null; E2E_PIDS[$n]=""; done
}

# e2e_cluster_leader: prints the index of the leader that the running
# nodes name (a running one); fails (status 1) when none does.
e2e_cluster_leader () {
  local n id
  for n in $(seq 1 "$E2E_NODES"); do
    [ -n "${E2E_PIDS[$n]}" ] || continue
    id=$("$TITANCTL" --endpoints="${E2E_CLIENT[$n]}" --timeout=1s -w json status 2>/dev/null \
         | sed -n "s/.*\"leader\":\"$E2E_PREFIX\([0-9]*\)\".*/\1/p")
    [ -n "$id" ] && [ -n "${E2E_PIDS[$id]:-}" ] && { echo "$id"; return 0; }
  done
  return 1
}

# e2e_cluster_wait_leader [SECONDS]: e2e_cluster_leader, polled until a
# running node names a running leader (default 20 s: one status call can
# time out on a loaded machine, and an election may be under way).
e2e_cluster_wait_leader () {
  local deadline=$(( $(date +%s) + ${1:-20} ))
  until e2e_cluster_leader; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# e2e_wait_local N KEY VALUE: polls a LOCAL read on node N (20 s).
e2e_wait_local () {
  local deadline=$(( $(date +%s) + 20 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$("$TITANCTL" --endpoints="${E2E_CLIENT[$1]}" --timeout=1s get "$2" --consistency=local 2>/dev/null)" = "$3" ] && return 0
    sleep 0.05
  done
  e2e_fail "node $1 did not get $2=$3 within 20 s"
}

# e2e_cluster_check_logs: e2e_check_log on every node's log.
e2e_cluster_check_logs () {
  local n
  for n in $(seq 1 "$E2E_NODES"); do e2e_check_log "$E2E_DIR/titand$n.log"; done
}
