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

# e2e_check_log: fails on a sanitizer report in titand's log (builds with
# --enable-sanitizers).
e2e_check_log () {
  if grep -q -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$E2E_DIR/titand.log"; then
    grep -A 30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$E2E_DIR/titand.log" | head -60 >&2
    e2e_fail "sanitizer report in titand's log"
  fi
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
