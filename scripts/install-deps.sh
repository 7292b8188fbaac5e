#!/usr/bin/env bash
# Installs the Debian packages Titan-KV needs to build and test, skipping
# those already installed.  Usage: scripts/install-deps.sh [extra-package...]
# Run as root, or as a user with sudo.  Exits non-zero if apt-get fails.
set -euo pipefail

packages=(
  build-essential autoconf automake libtool pkg-config
  libzmq3-dev libczmq-dev
  libprotobuf-c-dev protobuf-c-compiler
  libgrpc-dev
  libmicrohttpd-dev                         # the metrics module's HTTP server
  check
  python3 python3-grpcio python3-protobuf protobuf-compiler  # interop test: a gRPC client we did not write
  procps iproute2                           # fault tests: ps, kill, ip
  curl                                      # metrics test: scrapes /metrics
  openssl                                   # scripts/make-test-certs.sh (security tests)
  iptables nftables                         # chaos harness: partitions and lossy links in netns
  libleveldb-dev librocksdb-dev liblmdb-dev # benchmark peers (linked into bench/ only)
  clang libclang-rt-14-dev                  # make fuzz (libFuzzer)
  valgrind                                  # make valgrind-check
  etcd-server etcd-client gnuplot-nox       # make bench-cluster: etcd 3.4 peer, chart
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
