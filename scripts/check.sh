#!/usr/bin/env bash
# Quick start, command 2: builds Titan-KV (installing missing Debian
# packages) and runs the whole test suite with `make check`.
# Extra arguments go to configure (e.g. --enable-sanitizers; then use a
# separate TITAN_BUILD_DIR).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" "$@"
builddir=${TITAN_BUILD_DIR:-$top/build}
cd "$builddir"
status=0
make -j"$(nproc)" check || status=$?
if [ $status -ne 0 ]; then
  for log in $(find . -name '*.log' -newer config.status); do
    if grep -q -E '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null; then
      echo "===== $log"; tail -n 60 "$log"
    fi
  done
fi
exit $status
