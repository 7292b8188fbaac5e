# Sourced by bench/shard_move.sh and bench/shard_spread.sh: the programs
# they run (from the build directory, or as the environment names them)
# and the config file of one titand node.
TITAND=${TITAND:-./titand}
TITANCTL=${TITANCTL:-./cli/titanctl}
MODPATH=${TITAN_MODULE_PATH:-modules/bitcask/.libs:modules/raft/.libs:modules/ring/.libs:modules/grpc_gateway/.libs}

# sb_require SCRIPT PROGRAM...: exits 2, naming it, unless each is built
sb_require () {
    local script=$1 p
    shift
    for p in "$@"; do
        [ -x "$p" ] || { echo "$script: $p is not built" >&2; exit 2; }
    done
}

# sb_node_cfg FILE ID DATA_DIR CLIENT_PORT PEER_PORT JOIN [RAFT_LINE...]:
# writes the config of node ID on 127.0.0.1 (JOIN: a member's peer
# address to join, or "" to bootstrap); the raft module retries a join
# every 50 ms and gets the RAFT_LINEs ("key = value") as its settings;
# with "placement = ring" among them the ring module is loaded too
sb_node_cfg () {
    local file=$1 id=$2 data=$3 cp=$4 pp=$5 join=$6 line
    shift 6
    {
        echo "node"
        echo "    id = $id"
        echo "    data_dir = $data"
        echo "    client_addr = 127.0.0.1:$cp"
        echo "    peer_addr = 127.0.0.1:$pp"
        [ -z "$join" ] || echo "    join = $join"
        echo "modules"
        echo "    bitcask"
        echo "        path = titan_bitcask.so"
        # ring placement: the ring module (the meta group's state machine)
        # before raft, with the Q of the "shards = Q" line and R = 3
        local ring=0 q=1
        for line in "$@"; do
            case $line in
                "placement = ring") ring=1 ;;
                "shards = "*) q=${line#shards = } ;;
            esac
        done
        if [ "$ring" = 1 ]; then
            echo "    ring"
            echo "        path = titan_ring.so"
            echo "        shards = $q"
            echo "        replicas = 3"
        fi
        echo "    raft"
        echo "        path = titan_raft.so"
        echo "        join_retry_ms = 50"
        # explicit, since ring placement is the default
        [ "$ring" = 1 ] || echo "        placement = static"
        for line in "$@"; do
            [ -z "$line" ] || echo "        $line"
        done
        echo "    grpc_gateway"
        echo "        path = titan_grpc_gateway.so"
    } > "$file"
}
