#!/bin/sh
# Runs lin_check_tool on the sample histories of tests/lin/data and checks
# its summary line and exit status (0 linearizable, 1 not, 2 bad file,
# 3 budget exhausted).
set -u
tool="${TITAN_BUILDDIR:-.}/tests/lin_check_tool"
data="${TITAN_SRCDIR:-.}/tests/lin/data"
fail=0

expect () {   # expect STATUS SUMMARY-PREFIX ARGS...
    want_status=$1; want_line=$2; shift 2
    out=$("$tool" "$@" 2>&1)
    status=$?
    first=$(printf '%s\n' "$out" | head -n 1)
    if [ "$status" -ne "$want_status" ]; then
        echo "FAIL: lin_check_tool $*: exit $status, expected $want_status"; echo "$out"; fail=1
    elif ! printf '%s' "$first" | grep -qF -- "$want_line"; then
        echo "FAIL: lin_check_tool $*: '$first' lacks '$want_line'"; fail=1
    else
        echo "ok: lin_check_tool $* -> $status"
    fi
}

expect 0 "ops: 12 keys: 2 unknown: 2 linearizable: true" "$data/linearizable.hist"
expect 1 "ops: 3 keys: 1 unknown: 0 linearizable: false" "$data/stale_read.hist"
expect 1 "linearizable: false" "$data/double_cas.hist"
expect 2 "line 2" "$data/bad_hex.hist"
expect 2 "No such file" "$data/does-not-exist.hist"
expect 2 "usage" 
expect 3 "linearizable: unknown" --max-steps 1 "$data/linearizable.hist"
exit $fail
