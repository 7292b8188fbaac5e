#!/usr/bin/env bash
# Quick start, command 1: builds Titan-KV (installing missing Debian
# packages) and runs one node with the embedded defaults: client (gRPC) on
# 127.0.0.1:7400, peer port 127.0.0.1:7401, data under ./data; ring
# placement with 16 shards, all on this node until others join (it serves
# a second or so after it starts).
# In another terminal: build/titanctl put hello world; build/titanctl get hello
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh"
builddir=${TITAN_BUILD_DIR:-$top/build}
export TITAN_MODULE_PATH="$builddir/modules/bitcask/.libs:$builddir/modules/raft/.libs:$builddir/modules/ring/.libs:$builddir/modules/grpc_gateway/.libs"
exec "$builddir/titand" "$@"
