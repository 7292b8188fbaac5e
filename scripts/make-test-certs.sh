#!/usr/bin/env bash
# make-test-certs.sh DIR [NODE...]: makes everything a Titan-KV cluster
# needs to run with TLS, client tokens and CURVE, for tests and the TLS
# compose overlay (docker-compose.tls.yml).  NOT for production: the CA key
# lies next to the certificates, unencrypted.
#
#   DIR/ca.crt, DIR/ca.key          a test CA (EC P-256, 10 years)
#   DIR/token                       a random client token (hex)
#   DIR/client/client.{crt,key}     titanctl's client certificate (CN titanctl)
#   DIR/NODE/node.{crt,key}         per node (default node1 node2 node3): a
#                                   certificate for server and client use,
#                                   SAN DNS:NODE, DNS:localhost, IP:127.0.0.1
#   DIR/NODE/ca.crt, DIR/NODE/token copies, so that DIR/NODE is all a node needs
#   DIR/NODE/curve/node.cert[_secret]    the node's CURVE key pair (node-id NODE)
#   DIR/NODE/curve/server.cert[_secret]  the cluster's CURVE server key pair
#   DIR/NODE/curve/keys/*.cert           every node's public key (the allowed set)
#
# The CURVE keys need titan-keygen (built in cli/; $TITAN_KEYGEN, else
# PATH); without it they are skipped with a message.  Uses openssl (Debian
# package openssl).  Refuses a DIR that already holds a CA.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [NODE...]" >&2; exit 2; }
dir=$1; shift
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(node1 node2 node3)
command -v openssl >/dev/null || { echo "$0: openssl is missing (apt-get install openssl)" >&2; exit 1; }
[ ! -e "$dir/ca.key" ] || { echo "$0: $dir already holds a CA; use a new directory" >&2; exit 1; }
keygen=${TITAN_KEYGEN:-$(command -v titan-keygen || true)}
mkdir -p "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ossl () { openssl "$@" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; }

ossl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=Titan-KV test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# issue NAME OUTDIR BASENAME SAN EKU
issue () {
  local name=$1 out=$2 base=$3 san=$4 eku=$5
  mkdir -p "$out"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$work/ext"
  ossl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$out/$base.key" -out "$work/$base.csr" -subj "/CN=$name"
  ossl x509 -req -in "$work/$base.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -CAserial "$work/serial" -out "$out/$base.crt" -days 825 \
    -extfile "$work/ext"
}

od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$dir/token"
echo >>"$dir/token"
issue titanctl "$dir/client" client "" clientAuth
for node in "${nodes[@]}"; do
  issue "$node" "$dir/$node" node "DNS:$node,DNS:localhost,IP:127.0.0.1" serverAuth,clientAuth
  cp "$dir/ca.crt" "$dir/token" "$dir/$node/"
done

if [ -n "$keygen" ] && [ -x "$keygen" ]; then
  mkdir -p "$work/curve/keys"
  "$keygen" "$work/curve/server.cert" >/dev/null
  for node in "${nodes[@]}"; do
    mkdir -p "$dir/$node/curve"
    "$keygen" "$dir/$node/curve/node.cert" "$node" >/dev/null
    cp "$dir/$node/curve/node.cert" "$work/curve/keys/$node.cert"
  done
  for node in "${nodes[@]}"; do
    cp "$work/curve/server.cert" "$work/curve/server.cert_secret" "$dir/$node/curve/"
    mkdir -p "$dir/$node/curve/keys"
    cp "$work/curve/keys/"*.cert "$dir/$node/curve/keys/"
  done
else
  echo "$0: titan-keygen not found (set TITAN_KEYGEN): CURVE keys skipped" >&2
fi
# readable by the container user and the test user; keys stay private to
# the owner unless the caller widens them (see docs/security.md)
chmod 755 "$dir" "$dir"/*/ 2>/dev/null || true
find "$dir" -type d -exec chmod 755 {} +
find "$dir" -type f \( -name '*.crt' -o -name '*.cert' \) -exec chmod 644 {} +
echo "made $dir: CA, token, client certificate, nodes: ${nodes[*]}"
