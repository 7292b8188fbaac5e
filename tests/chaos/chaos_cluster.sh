# Titan-KV chaos harness: the cluster under test (sourced by chaos_run.sh,
# after chaos_net.sh).
#
# Node I (1..N) is a real titand, id nI, started with `ip netns exec` in
# its namespace, client address 10.77.X.I:7400 and peer address
# 10.77.X.I:7401 (fixed ports are safe: each node has its own namespace
# and address), data and log under $CL_DIR/nI/.  Its config file sets the
# raft module's snapshot_entries/snapshot_slack small so that a node kept
# down falls behind log compaction and must take a snapshot install.
# node1 bootstraps the cluster; the others join it.  A node that has been
# removed from the cluster and wiped is restarted with `join` pointing at
# an address where nobody listens, so that it waits to be added back by
# `titanctl member add` (the fault under test).
#
# Needs: TITAND, TITANCTL, TITAN_MODULE_PATH, CL_DIR, CL_N, CL_SHARDS,
# CL_PLACEMENT (static or ring).

CL_SNAPSHOT_ENTRIES=${CL_SNAPSHOT_ENTRIES:-200}
CL_SNAPSHOT_SLACK=${CL_SNAPSHOT_SLACK:-20}
declare -a CL_PID CL_PAUSED CL_WAIT_ADD

cl_id () { echo "n$1"; }
cl_client () { echo "$(net_ip "$1"):7400"; }
cl_peer () { echo "$(net_ip "$1"):7401"; }
cl_all_clients () {
  local i out=""
  for i in $(seq 1 "$CL_N"); do out="$out${out:+,}$(cl_client "$i")"; done
  echo "$out"
}
cl_log () { echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $*" >>"$CL_DIR/cluster.log"; }
cl_alive () { [ -n "${CL_PID[$1]:-}" ] && kill -0 "${CL_PID[$1]}" 2>/dev/null; }
ctl () { "$TITANCTL" --timeout="${CTL_TIMEOUT:-2s}" "$@"; }

# cl_write_config I JOIN: the node's ZPL config (JOIN: "bootstrap" or H:P).
cl_write_config () {
  local i=$1 join=$2 cfg="$CL_DIR/n$1/titan.cfg"
  {
    echo "node"
    echo "    id = $(cl_id "$i")"
    echo "    data_dir = $CL_DIR/n$i/data"
    echo "    client_addr = $(cl_client "$i")"
    echo "    peer_addr = $(cl_peer "$i")"
    if [ "$join" = bootstrap ]; then echo "    bootstrap = true"
    else echo "    join = $join"; fi
    echo "modules"
    echo "    bitcask"
    echo "        path = titan_bitcask.so"
    if [ "${CL_PLACEMENT:-static}" = ring ]; then
      # The defaults: the ring module places 16 shards, 3 replicas each.
      echo "    ring"
      echo "        path = titan_ring.so"
    fi
    echo "    raft"
    echo "        path = titan_raft.so"
    if [ "${CL_PLACEMENT:-static}" = static ]; then
      # Static placement, every node hosting shards 0..CL_SHARDS-1 (default
      # one group): the member fault removes a member and adds it back
      # under its id, which ring placement forbids (a removed id is a
      # tombstone).
      echo "        placement = static"
      echo "        shards = ${CL_SHARDS:-1}"
    fi
    echo "        snapshot_entries = $CL_SNAPSHOT_ENTRIES"
    echo "        snapshot_slack = $CL_SNAPSHOT_SLACK"
    echo "    grpc_gateway"
    echo "        path = titan_grpc_gateway.so"
  } >"$cfg"
}

# cl_start I: starts node I (its config must exist).
cl_start () {
  local i=$1
  if cl_alive "$i"; then return 0; fi
  mkdir -p "$CL_DIR/n$i/data"
  echo "=== start $(date -u +%T.%N)" >>"$CL_DIR/n$i/titand.log"
  ip netns exec "$(net_ns "$i")" "$TITAND" --config "$CL_DIR/n$i/titan.cfg" \
    --module-path "$TITAN_MODULE_PATH" >>"$CL_DIR/n$i/titand.log" 2>&1 &
  CL_PID[$i]=$!
  CL_PAUSED[$i]=0
  cl_log "started n$i pid ${CL_PID[$i]}"
}

# cl_kill9 I: SIGKILL, no chance to flush.
cl_kill9 () {
  local i=$1
  [ -n "${CL_PID[$i]:-}" ] || return 0
  kill -9 "${CL_PID[$i]}" 2>/dev/null
  wait "${CL_PID[$i]}" 2>/dev/null
  CL_PID[$i]=""
  CL_PAUSED[$i]=0
  cl_log "killed n$i"
}

cl_pause () { kill -STOP "${CL_PID[$1]}" && CL_PAUSED[$1]=1 && cl_log "paused n$1"; }
cl_resume () {
  [ "${CL_PAUSED[$1]:-0}" = 1 ] || return 0
  kill -CONT "${CL_PID[$1]}" 2>/dev/null; CL_PAUSED[$1]=0; cl_log "resumed n$1"
}

# cl_status I: one `status` call to node I; prints "LEADER UP" (the
# leader's index, empty when none, and how many members are voters).
cl_status () {
  local json leader up
  json=$(CTL_TIMEOUT=1s ctl --endpoints="$(cl_client "$1")" -w json status 2>/dev/null) || return 1
  leader=$(echo "$json" | sed -n 's/.*"shards":\[{"id":0,"leader":"n\([0-9]*\)".*/\1/p')
  up=$(echo "$json" | grep -o '"state":"up"' | wc -l)
  echo "${leader:-0} $up"
}

cl_running () { cl_alive "$1" && [ "${CL_PAUSED[$1]:-0}" = 0 ]; }

# cl_leader: prints the index of the leader that a live, running node
# names (and that is itself live and running), or returns 1.
cl_leader () {
  local i s
  for i in $(seq 1 "$CL_N"); do
    cl_running "$i" || continue
    s=$(cl_status "$i") || continue
    s=${s% *}
    if [ "$s" != 0 ] && cl_running "$s"; then echo "$s"; return 0; fi
  done
  return 1
}

# cl_followers L: the member indexes other than L (in order).
cl_followers () {
  local i
  for i in $(seq 1 "$CL_N"); do [ "$i" = "$1" ] || echo "$i"; done
}

# cl_wait_healthy SECONDS: every node live, answering, naming the same
# live leader, and all N members voters.  Returns 1 on timeout.
cl_wait_healthy () {
  local deadline=$(( $(date +%s) + $1 )) i s l ok
  while [ "$(date +%s)" -lt "$deadline" ]; do
    ok=1 l=""
    for i in $(seq 1 "$CL_N"); do
      cl_running "$i" || { ok=0; break; }
      s=$(cl_status "$i") || { ok=0; break; }
      [ "${s#* }" -ge "$CL_N" ] && [ "${s% *}" != 0 ] || { ok=0; break; }
      [ -z "$l" ] && l=${s% *}
      [ "${s% *}" = "$l" ] || { ok=0; break; }
    done
    [ $ok = 1 ] && cl_running "$l" && return 0
    sleep 0.2
  done
  return 1
}

# cl_applied I: the highest applied index of the shards node I reports
# (empty if no answer): with several shards, when it has grown by D since
# an earlier call, some shard has applied at least D entries meanwhile.
cl_applied () {
  CTL_TIMEOUT=1s ctl --endpoints="$(cl_client "$1")" -w json status 2>/dev/null \
    | grep -o '"applied_index":[0-9]*' | cut -d: -f2 | sort -n | tail -1
}

# cl_form: starts node1 (bootstrap), then the others one at a time (each
# joins node1, and the next starts once it is a voter: single-server
# membership changes are serialized anyway, and on a loaded machine
# concurrent joins only retry), and waits until all are voters.  Each
# step has 120 s; on failure the member list goes to cluster.log.
cl_form () {
  local i deadline s
  for i in $(seq 1 "$CL_N"); do
    mkdir -p "$CL_DIR/n$i"
    if [ "$i" = 1 ]; then cl_write_config 1 bootstrap
    else cl_write_config "$i" "$(cl_peer 1)"; fi
    CL_PAUSED[$i]=0
    CL_WAIT_ADD[$i]=0
  done
  for i in $(seq 1 "$CL_N"); do
    cl_start "$i"
    deadline=$(( $(date +%s) + 120 ))
    while :; do
      s=$(cl_status 1) && [ "${s#* }" -ge "$i" ] && break
      if [ "$(date +%s)" -ge "$deadline" ] || ! cl_alive "$i"; then
        cl_log "n$i did not become a voter within 120 s (n1 status: ${s:-no answer})"
        CTL_TIMEOUT=2s ctl --endpoints="$(cl_client 1)" -w json member list >>"$CL_DIR/cluster.log" 2>&1
        return 1
      fi
      sleep 0.2
    done
    cl_log "n$i is a voter"
  done
  cl_wait_healthy 120
}

# cl_remove_member I: removes node I from the configuration (asked
# through another node), kills it and wipes its data.  Returns 1 if the
# removal was refused.
cl_remove_member () {
  local i=$1 via j
  for j in $(cl_followers "$i"); do cl_alive "$j" && { via=$j; break; }; done
  ctl --timeout=10s --endpoints="$(cl_client "$via")" member remove "$(cl_id "$i")" \
    >>"$CL_DIR/cluster.log" 2>&1 || return 1
  cl_log "removed n$i from the configuration"
  cl_kill9 "$i"
  rm -rf "$CL_DIR/n$i/data"
  # Wait to be added: join an address where nobody listens.
  cl_write_config "$i" "$(net_ip "$i"):9"
  CL_WAIT_ADD[$i]=1
}

# cl_add_member I: starts the wiped node I and adds it back with
# `titanctl member add` (as a learner, promoted once caught up).
cl_add_member () {
  local i=$1 via j
  cl_start "$i"
  for j in $(cl_followers "$i"); do cl_alive "$j" && { via=$j; break; }; done
  local deadline=$(( $(date +%s) + 60 ))
  until ctl --timeout=10s --endpoints="$(cl_client "$via")" member add "$(cl_id "$i")" \
          "$(cl_client "$i")" "$(cl_peer "$i")" >>"$CL_DIR/cluster.log" 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  CL_WAIT_ADD[$i]=0
  cl_log "added n$i back"
}

# cl_heal_all: every node running (resumed, restarted, re-added).
cl_heal_all () {
  local i
  for i in $(seq 1 "$CL_N"); do
    cl_resume "$i"
    if [ "${CL_WAIT_ADD[$i]:-0}" = 1 ]; then cl_add_member "$i"
    elif ! cl_alive "$i"; then cl_start "$i"; fi
  done
}

# cl_stop_all: SIGKILL every node (end of run).
cl_stop_all () {
  local i
  for i in $(seq 1 "$CL_N"); do
    [ -n "${CL_PID[$i]:-}" ] || continue
    kill -CONT "${CL_PID[$i]}" 2>/dev/null
    cl_kill9 "$i"
  done
}
