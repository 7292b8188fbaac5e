#!/usr/bin/env bash
# Builds Titan-KV in ./build (out of tree), installing missing Debian
# packages first.  Extra arguments are passed to configure on the first run
# (e.g. --enable-sanitizers).  Re-running only rebuilds what changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
builddir=${TITAN_BUILD_DIR:-$top/build}
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f config.status ]; then
  "$top/configure" --prefix="$builddir/install" "$@" >/dev/null
fi
make -j"$(nproc)" >/dev/null
echo "build: ok ($builddir)" >&2
