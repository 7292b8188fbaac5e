#!/usr/bin/env bash
# make check: a short chaos run (docs/chaos.md) -- 3 real titand nodes in
# their own network namespaces, 8 clients, about 30 s of workload with a
# fault every few seconds (leader and follower kill -9, SIGSTOP of a node,
# an isolated leader, a lossy or slow link, a leadership transfer), then the
# durability, convergence and linearizability checks.  Fixed seed, so a
# failure replays with `make chaos SEED=... FAULTS=... DURATION=30`; set
# CHAOS_SEED to vary it.  Skips (77) without root / network namespaces.
set -u
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/chaos_run.sh" --duration="${CHAOS_SHORT_DURATION:-30}" --nodes=3 \
  --seed="${CHAOS_SEED:-9001}" \
  --faults=kill-leader,kill-follower,pause,partition-leader,lossy,transfer,slow
