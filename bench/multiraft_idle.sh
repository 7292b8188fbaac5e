#!/bin/sh
# What idle Raft groups cost: a 3-node cluster of titand processes on
# loopback whose raft modules host SHARDS groups (multi-Raft, every node
# every shard) sits idle for IDLE_S seconds once every shard has 3 voters;
# prints the CPU the three processes used in that window (from
# /proc/PID/stat) and each node's transport counters (messages and batches
# sent over its life, logged by the raft module when it stops).
#
# usage: bench/multiraft_idle.sh [SHARDS...]   (default: 1 17)
# Run from the build directory (`make bench-multiraft-idle`).
set -eu
TITAND=${TITAND:-./titand}
TITANCTL=${TITANCTL:-./cli/titanctl}
MODPATH=${TITAN_MODULE_PATH:-modules/bitcask/.libs:modules/raft/.libs:modules/grpc_gateway/.libs}
IDLE_S=${IDLE_S:-20}
HZ=$(getconf CLK_TCK)
[ $# -gt 0 ] || set -- 1 17

free_port () {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cpu_ticks () {   # utime + stime of the given pids
    t=0
    for p in "$@"; do
        set -- $(sed 's/^.*) //' /proc/$p/stat)
        t=$((t + ${12} + ${13}))
    done
    echo $t
}

for shards in "$@"; do
    dir=$(mktemp -d /tmp/titan-idle-XXXXXX)
    pids=""
    first_peer=""
    endpoints=""
    for i in 1 2 3; do
        cp=$(free_port); pp=$(free_port)
        join=""
        [ -n "$first_peer" ] && join="    join = $first_peer"
        [ -z "$first_peer" ] && first_peer=127.0.0.1:$pp
        endpoints="$endpoints${endpoints:+,}127.0.0.1:$cp"
        cat > "$dir/n$i.cfg" <<EOF
node
    id = n$i
    data_dir = $dir/data$i
    client_addr = 127.0.0.1:$cp
    peer_addr = 127.0.0.1:$pp
$join
modules
    bitcask
        path = titan_bitcask.so
    raft
        path = titan_raft.so
        join_retry_ms = 50
        placement = static
        shards = $shards
    grpc_gateway
        path = titan_grpc_gateway.so
EOF
        "$TITAND" --config "$dir/n$i.cfg" --module-path "$MODPATH" \
            > "$dir/n$i.log" 2>&1 &
        pids="$pids $!"
        sleep 0.3
    done
    # settled: every shard lists 3 voters and a leader, no learner
    deadline=$(( $(date +%s) + 120 ))
    while :; do
        out=$("$TITANCTL" --endpoints="$endpoints" -w json status 2>/dev/null || true)
        ok=$(printf '%s' "$out" | python3 -c '
import json, sys
try:
    st = json.load(sys.stdin)
except Exception:
    print(0); sys.exit()
sh = st.get("shards", [])
print(int(len(sh) == int(sys.argv[1]) and all(len(s["replicas"]) == 3
      and not s["learners"] and s["leader"] for s in sh)))' "$shards")
        [ "$ok" = 1 ] && break
        if [ "$(date +%s)" -gt "$deadline" ]; then
            echo "shards=$shards: cluster did not settle" >&2
            kill $pids; exit 1
        fi
        sleep 0.5
    done
    sleep 3                      # leadership balancing, then idle
    c0=$(cpu_ticks $pids)
    sleep "$IDLE_S"
    c1=$(cpu_ticks $pids)
    kill -TERM $pids
    wait $pids 2>/dev/null || true
    cpu=$(python3 -c "print('%.1f' % (100.0 * ($c1 - $c0) / $HZ / $IDLE_S))")
    echo "shards=$shards groups/node=$shards idle ${IDLE_S}s: 3 processes used ${cpu}% of one core"
    grep -h "the transport sent" "$dir"/n*.log | sed 's/^.*raft /  raft /'
    rm -rf "$dir"
done
