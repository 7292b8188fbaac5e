#!/usr/bin/env bash
# Docker test of Titan-KV: the image and the compose cluster exercised for
# real through titanctl from the host.  Stages, each its own function:
#   docker_build_images        docker/build-images.sh (offline bases, cached)
#   docker_single_node_test    one container with the image defaults: serves
#                              put/get, is healthy, runs as `titan`, keeps its
#                              data across a restart and a kill -9, and a new
#                              container on its volume finds the data
#   docker_cluster_up_test     docker-compose up; the 3-node cluster forms
#   docker_cluster_rw_test     writes and reads through every node
#   docker_cluster_failover_test  kill the leader: writes go on through the
#                              others; restart it: it catches up
#   docker_cluster_partition_test  disconnect one node: the majority serves,
#                              the isolated node refuses writes; reconnect:
#                              it converges
#   docker_cluster_down_test   every acknowledged write is readable through
#                              every node; `down -v` leaves nothing behind
# Every write that titanctl acknowledged is kept in a ledger and must be
# readable at the end.  The host needs python3 (to read `titanctl -w json`).
#
# Usage: tests/docker_cluster_test.sh [stage...]   stages: build single cluster
# (default: all three).  Environment: TITANCTL (host titanctl; default the
# build tree's, else the one in the image run with --network host),
# TITAN_IMAGE, TITAN_DOCKER_SKIP_BUILD=1, TITAN_DOCKER_DEADLINE (s, 180),
# host ports TITAN_NODE{1,2,3}_PORT (17400, 17410, 17420) and
# TITAN_DOCKER_SINGLE_PORT (17430), the network TITAN_NET (172.30.75).
# Exit status: 0 pass, 1 fail, 77 skipped (no Docker engine).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
image=${TITAN_IMAGE:-titan-kv:latest}
export TITAN_IMAGE=$image
deadline_s=${TITAN_DOCKER_DEADLINE:-180}
project=titankvtest
single_name=$project-single
single_volume=$project-single-data
single_port=${TITAN_DOCKER_SINGLE_PORT:-17430}
declare -A ledger=()        # key -> last acknowledged value
# Host ports away from the defaults, so that a titand or a cluster someone
# runs on this machine is neither disturbed nor mistaken for ours.
export TITAN_NODE1_PORT=${TITAN_NODE1_PORT:-17400}
export TITAN_NODE2_PORT=${TITAN_NODE2_PORT:-17410}
export TITAN_NODE3_PORT=${TITAN_NODE3_PORT:-17420}
export TITAN_NET=${TITAN_NET:-172.30.75}    # the test network's /24
declare -A node_port=([node1]=$TITAN_NODE1_PORT [node2]=$TITAN_NODE2_PORT [node3]=$TITAN_NODE3_PORT)
failures=0

log () { echo "docker-test: $*" >&2; }
fail () { log "FAIL: $*"; failures=$((failures + 1)); return 1; }
skip () { log "SKIP: $*"; exit 77; }
now () { date +%s.%N; }
elapsed () { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

# --- environment --------------------------------------------------------

command -v docker >/dev/null 2>&1 || skip "no docker command on this machine"
docker info >/dev/null 2>&1 || skip "no Docker engine answers 'docker info'"
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  compose_cmd=()
fi
compose () {
  TITAN_RESTART=no "${compose_cmd[@]}" -p "$project" -f "$top/docker-compose.yml" "$@"
}

# titanctl from the host: the build tree's if there is one, else the image's
# (run on the host network, so it too talks to the published ports).
if [ -n "${TITANCTL:-}" ]; then
  titanctl=("$TITANCTL")
elif [ -n "${TITAN_BUILDDIR:-}" ] && [ -x "$TITAN_BUILDDIR/cli/titanctl" ]; then
  titanctl=("$TITAN_BUILDDIR/cli/titanctl")
elif command -v titanctl >/dev/null 2>&1; then
  titanctl=(titanctl)
else
  titanctl=(docker run --rm -i --network host --entrypoint titanctl "$image")
fi

# ctl PORT ARGS...: titanctl against the client port PORT on the host.
ctl () { local port=$1; shift; "${titanctl[@]}" --endpoints="127.0.0.1:$port" "$@"; }

# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds or the
# deadline passes.
wait_until () {
  local what=$1; shift
  local end=$(( $(date +%s) + deadline_s ))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      fail "timed out after ${deadline_s}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# put_ack PORT KEY VALUE: one write; on success it joins the ledger.
put_ack () {
  if ctl "$1" put "$2" "$3" >/dev/null 2>&1; then
    ledger[$2]=$3
    return 0
  fi
  return 1
}

# expect_get PORT KEY VALUE [ARGS]: the read through PORT returns VALUE.
expect_get () {
  local port=$1 key=$2 want=$3 got; shift 3
  got=$(ctl "$port" get "$@" "$key" 2>&1) || { fail "get $key via :$port failed: $got"; return 1; }
  [ "$got" = "$want" ] || { fail "get $key via :$port returned '$got', want '$want'"; return 1; }
}

get_is () { local got; got=$(ctl "$1" get "$2" 2>/dev/null) && [ "$got" = "$3" ]; }

# check_ledger PORT...: every acknowledged write reads back through each.
check_ledger () {
  local port key bad=0
  for port in "$@"; do
    for key in "${!ledger[@]}"; do
      expect_get "$port" "$key" "${ledger[$key]}" || bad=1
    done
  done
  [ $bad -eq 0 ] && log "ledger: ${#ledger[@]} acknowledged writes read back through port(s) $*"
  return $bad
}

cleanup () {
  docker rm -f "$single_name" >/dev/null 2>&1 || true
  docker volume rm "$single_volume" >/dev/null 2>&1 || true
  if [ ${#compose_cmd[@]} -gt 0 ]; then compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
}

show_logs () {
  log "last log lines of the test containers:"
  local c
  for c in $(docker ps -aq --filter "label=com.docker.compose.project=$project") \
           $(docker ps -aq --filter "name=^$single_name\$"); do
    echo "----- $(docker inspect -f '{{.Name}}' "$c")" >&2
    docker logs --tail 30 "$c" >&2 2>&1 || true
  done
}

# --- stages -------------------------------------------------------------

docker_build_images () {
  if [ "${TITAN_DOCKER_SKIP_BUILD:-0}" = 1 ]; then
    docker image inspect "$image" >/dev/null 2>&1 || { fail "TITAN_DOCKER_SKIP_BUILD=1 but no image $image"; return 1; }
    log "using the existing image $image"
    return 0
  fi
  "$top/docker/build-images.sh" || { fail "docker/build-images.sh failed"; return 1; }
}

docker_single_node_test () {
  log "single node: start $image with its defaults on 127.0.0.1:$single_port"
  cleanup
  docker volume create "$single_volume" >/dev/null || { fail "volume create"; return 1; }
  local t0; t0=$(now)
  docker run -d --name "$single_name" -p "127.0.0.1:$single_port:7400" \
    -v "$single_volume:/var/lib/titan" "$image" >/dev/null || { fail "docker run"; return 1; }
  wait_until "the single node to serve" ctl "$single_port" put __probe ready || return 1
  log "single node: serving $(elapsed "$t0") s after docker run"

  local uid; uid=$(docker exec "$single_name" id -u) || { fail "docker exec id"; return 1; }
  [ "$uid" != 0 ] || fail "titand runs as root in the container"
  local pid1; pid1=$(docker exec "$single_name" cat /proc/1/comm 2>/dev/null)
  [ "$pid1" = titand ] || fail "PID 1 is '$pid1', not titand (the entry point must exec it)"

  local i
  for i in $(seq 1 20); do
    put_ack "$single_port" "single-$i" "value-$i" || fail "put single-$i"
  done
  check_ledger "$single_port" || return 1
  ctl "$single_port" get no-such-key >/dev/null 2>&1 && fail "get of a missing key succeeded"

  wait_until "the health check to report healthy" \
    sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' $single_name)\" = healthy ]" || return 1

  log "single node: docker restart (SIGTERM) keeps the data"
  t0=$(now)
  docker restart "$single_name" >/dev/null || { fail "docker restart"; return 1; }
  wait_until "the node to serve after restart" get_is "$single_port" single-20 value-20 || return 1
  log "single node: serving again $(elapsed "$t0") s after docker restart"
  check_ledger "$single_port" || return 1

  log "single node: docker kill (SIGKILL) loses no acknowledged write"
  put_ack "$single_port" single-last acknowledged-before-kill || fail "put single-last"
  docker kill "$single_name" >/dev/null || { fail "docker kill"; return 1; }
  docker start "$single_name" >/dev/null || { fail "docker start after kill"; return 1; }
  wait_until "the node to serve after kill" get_is "$single_port" single-last acknowledged-before-kill || return 1
  check_ledger "$single_port" || return 1

  log "single node: a new container on the same volume has the data"
  docker rm -f "$single_name" >/dev/null || { fail "docker rm"; return 1; }
  docker run -d --name "$single_name" -p "127.0.0.1:$single_port:7400" \
    -v "$single_volume:/var/lib/titan" "$image" >/dev/null || { fail "docker run (second container)"; return 1; }
  wait_until "the new container to serve" ctl "$single_port" put __probe again || return 1
  check_ledger "$single_port" || return 1

  docker rm -f "$single_name" >/dev/null
  docker volume rm "$single_volume" >/dev/null || fail "volume $single_volume still in use"
  ledger=()
  log "single node: ok"
}

# The cluster functions read `titanctl -w json status`: the member nodes and,
# per shard, its leader.  "The leader" below is the leader of the lowest
# numbered shard (every node leads some shards; killing that one is what
# the failover test needs).
status_of () { ctl "${node_port[$1]}" -w json status 2>/dev/null; }
# status_field NODE WHAT: from NODE's status, WHAT is "members" (sorted ids,
# space separated), "leader" (leader of the first shard) or "leaders" (one
# "shard=leader" per shard, empty leader when a shard has none).
status_field () {
  status_of "$1" | python3 -c '
import json, sys
st = json.load(sys.stdin)
what = sys.argv[1]
shards = sorted(st.get("shards", []), key=lambda s: s.get("id", 0))
if what == "members":
    print(" ".join(sorted(n["id"] for n in st.get("nodes", []))))
elif what == "leader":
    print(shards[0].get("leader", "") if shards else "")
else:
    print(" ".join("%s=%s" % (s.get("id", 0), s.get("leader", "")) for s in shards))
' "$2"
}
leader_seen_by () { status_field "$1" leader; }
# The cluster has formed when every node lists the three members, every
# shard has a leader, and all nodes agree on the leaders.
cluster_formed () {
  local n members leaders first=""
  for n in node1 node2 node3; do
    members=$(status_field "$n" members) || return 1
    [ "$members" = "node1 node2 node3" ] || return 1
    leaders=$(status_field "$n" leaders) || return 1
    [ -n "$leaders" ] || return 1
    case " $leaders " in *"= "*) return 1 ;; esac
    [ -z "$first" ] || [ "$first" = "$leaders" ] || return 1
    first=$leaders
  done
}
container_of () { compose ps -q "$1"; }

docker_cluster_up_test () {
  [ ${#compose_cmd[@]} -gt 0 ] || { fail "neither 'docker compose' nor docker-compose is installed"; return 1; }
  cleanup
  local t0; t0=$(now)
  compose up -d --no-build >/dev/null || { fail "compose up"; return 1; }
  wait_until "the 3-node cluster to form" cluster_formed || return 1
  log "cluster: formed $(elapsed "$t0") s after compose up; leader $(leader_seen_by node1)"
}

docker_cluster_rw_test () {
  local n m i
  for n in node1 node2 node3; do
    for i in 1 2 3; do
      put_ack "${node_port[$n]}" "via-$n-$i" "v-$n-$i" || fail "put via $n"
    done
  done
  for m in node1 node2 node3; do check_ledger "${node_port[$m]}" || return 1; done
}

docker_cluster_failover_test () {
  local leader others=() n i acked=0
  leader=$(leader_seen_by node1)
  [ -n "$leader" ] || { fail "no leader known"; return 1; }
  for n in node1 node2 node3; do [ "$n" = "$leader" ] || others+=("$n"); done
  log "cluster: docker kill $leader (the leader)"
  docker kill "$(container_of "$leader")" >/dev/null || { fail "docker kill $leader"; return 1; }
  local end=$(( $(date +%s) + deadline_s ))
  for i in $(seq 1 30); do
    while ! put_ack "${node_port[${others[$((i % 2))]}]}" "failover-$i" "f-$i"; do
      [ "$(date +%s)" -lt "$end" ] || { fail "writes did not resume within ${deadline_s}s after the leader died"; return 1; }
      sleep 0.2
    done
    acked=$((acked + 1))
  done
  log "cluster: $acked writes acknowledged through ${others[*]} with $leader down"
  docker start "$(container_of "$leader")" >/dev/null || { fail "docker start $leader"; return 1; }
  wait_until "$leader to catch up" get_is "${node_port[$leader]}" failover-30 f-30 || return 1
  wait_until "the cluster to re-form" cluster_formed || return 1
  check_ledger "${node_port[$leader]}"
}

docker_cluster_partition_test () {
  local net victim=node3 n
  net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' \
        "$(container_of "$victim")" | awk '{print $1}')
  [ -n "$net" ] || { fail "cannot find the network of $victim"; return 1; }
  local ip
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$(container_of "$victim")")
  log "cluster: docker network disconnect $net $victim ($ip)"
  docker network disconnect "$net" "$(container_of "$victim")" || { fail "network disconnect"; return 1; }
  # The majority keeps serving writes (retried across a leader change).
  local end=$(( $(date +%s) + deadline_s )) i
  for i in $(seq 1 10); do
    while ! put_ack "${node_port[node$((1 + i % 2))]}" "partition-$i" "p-$i"; do
      [ "$(date +%s)" -lt "$end" ] || { fail "the majority stopped serving writes"; return 1; }
      sleep 0.2
    done
  done
  # The isolated node is reachable only from inside its container now; a
  # write there must fail (no quorum), and must not appear later.
  local rc=0
  docker exec "$(container_of "$victim")" titanctl --endpoints=127.0.0.1:7400 --timeout=5s \
    put minority-write must-not-commit >/dev/null 2>&1 || rc=$?
  case $rc in
    0) fail "the isolated node acknowledged a write" ;;
    4) log "cluster: the isolated node refused the write (unavailable)" ;;
    *) fail "the isolated node's write failed with exit $rc, not 4 (unavailable)" ;;
  esac
  log "cluster: reconnect $victim"
  docker network connect --ip "$ip" --alias "$victim" "$net" "$(container_of "$victim")" \
    || { fail "network connect"; return 1; }
  wait_until "$victim to converge" get_is "${node_port[$victim]}" partition-10 p-10 || return 1
  for n in node1 node2 node3; do
    if ctl "${node_port[$n]}" get minority-write 2>/dev/null | grep -q must-not-commit; then
      fail "the write refused by the minority was applied (seen via $n)"
    fi
  done
}

docker_cluster_down_test () {
  local n
  for n in node1 node2 node3; do check_ledger "${node_port[$n]}" || true; done
  compose down -v >/dev/null || fail "compose down -v"
  local left
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
  [ -z "$left" ] || fail "containers left after down: $left"
  left=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
  [ -z "$left" ] || fail "volumes left after down -v: $left"
}

# Whether the image can form a cluster: titand has --join and the raft
# module is installed.  Both are part of the product, so an image without
# them fails the cluster stages rather than skipping them.
cluster_supported () {
  local out
  out=$(timeout 30 docker run --rm --name "$project-probe" --entrypoint sh "$image" -c \
        'titand --help; ls /usr/lib/titan-kv' 2>&1)
  docker rm -f "$project-probe" >/dev/null 2>&1
  grep -q -- '--join' <<<"$out" && grep -q 'titan_raft\.so' <<<"$out"
}

# --- main ---------------------------------------------------------------

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(build single cluster)
trap 'cleanup' EXIT
for stage in "${stages[@]}"; do
  case "$stage" in
    build) docker_build_images || break ;;
    single) docker_single_node_test || { show_logs; cleanup; } ;;
    cluster)
      if ! cluster_supported; then
        fail "$image has no titand --join or no raft module: it cannot form a cluster"
        break
      fi
      for f in docker_cluster_up_test docker_cluster_rw_test docker_cluster_failover_test \
               docker_cluster_partition_test docker_cluster_down_test; do
        log "== $f"
        $f || { show_logs; break; }
      done ;;
    *) log "unknown stage '$stage' (build, single, cluster)"; exit 2 ;;
  esac
done
if [ $failures -gt 0 ]; then
  log "$failures failure(s)"
  exit 1
fi
log "PASS (${stages[*]})"
exit 0
