#!/usr/bin/env bash
# Interoperability test: a real titand called by Python grpcio (Debian's
# python3-grpcio), a gRPC client this project did not write, using only
# proto/titan.proto, compiled here at test time with protoc (Debian's
# protobuf-compiler) or, failing that, grpc_tools (python3-grpc-tools):
# every operation and error status, binary keys and values at the limits,
# and acknowledged writes read back after kill -9 and after a restart.
# Skips (exit 77) with the reason when neither tool nor grpcio exists.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
PY=${PYTHON_GRPC:-/usr/bin/python3}
[ -x "$PY" ] || PY=/usr/bin/python3
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null \
  || e2e_skip "$PY has no grpcio/protobuf (install python3-grpcio python3-protobuf)"
gen="$E2E_DIR/gen"
mkdir -p "$gen"
proto_dir="$TITAN_SRCDIR/proto"
if command -v protoc >/dev/null 2>&1; then
  protoc --proto_path="$proto_dir" --python_out="$gen" "$proto_dir/titan.proto" \
    || e2e_fail "protoc cannot compile proto/titan.proto"
elif "$PY" -c 'import grpc_tools' 2>/dev/null; then
  "$PY" -m grpc_tools.protoc --proto_path="$proto_dir" --python_out="$gen" \
    "$proto_dir/titan.proto" || e2e_fail "grpc_tools cannot compile proto/titan.proto"
else
  e2e_skip "no protoc (protobuf-compiler) nor grpc_tools (python3-grpc-tools) to compile the proto"
fi
e2e_start
dead=$(e2e_free_port)
"$PY" "$TITAN_SRCDIR/tests/interop_client.py" "$gen" "$E2E_ENDPOINT" "127.0.0.1:$dead" \
  || { tail -20 "$E2E_DIR/titand.log" >&2; e2e_fail "interop client failed"; }
# every acknowledged write survives a kill -9, then a clean restart
e2e_kill9
e2e_start
"$PY" "$TITAN_SRCDIR/tests/interop_client.py" "$gen" "$E2E_ENDPOINT" "127.0.0.1:$dead" --verify \
  || e2e_fail "writes lost after kill -9"
e2e_stop
e2e_start
"$PY" "$TITAN_SRCDIR/tests/interop_client.py" "$gen" "$E2E_ENDPOINT" "127.0.0.1:$dead" --verify \
  || e2e_fail "writes lost after a clean restart"
e2e_stop
echo "PASS: interop_python"
