# Titan-KV chaos harness: the network under test (sourced by chaos_run.sh).
#
# Each node gets its own network namespace with one veth pair into a
# bridge made for the run, and its own address 10.77.X.I/24 (X is chosen
# at random per run and reserved by creating the bridge chaosbrX, so two
# runs on one machine do not collide; I is the node number).  The root
# namespace holds 10.77.X.254 on the bridge: the clients and titanctl talk
# to the nodes from there.  Faults are made inside the namespaces:
#   partitions   iptables DROP rules in a chain CHAOS hooked into INPUT and
#                OUTPUT, matching the other nodes' addresses (client
#                traffic from 10.77.X.254 is never dropped, so a client can
#                still reach a node cut off from its peers);
#   lossy link   iptables statistic random DROP of a fraction of packets;
#   slow link    tc netem delay when the kernel has sch_netem, else a tbf
#                rate limit (a slow, queueing link), on both ends of the
#                node's veth pair.
# net_cleanup removes everything (called from the run's EXIT trap).

NET_X=""
NET_BRIDGE=""
NET_N=0

# net_ns I / net_ip I / net_hostveth I: names and address of node I.
net_ns () { echo "chaos${NET_X}n$1"; }
net_ip () { echo "10.77.${NET_X}.$1"; }
net_hostveth () { echo "chv${NET_X}x$1"; }
net_in () { local i=$1; shift; ip netns exec "$(net_ns "$i")" "$@"; }

# net_can_run: prints why namespaces cannot be made and returns 1, or 0.
net_can_run () {
  [ "$(id -u)" = 0 ] || { echo "not root (network namespaces need CAP_NET_ADMIN)"; return 1; }
  local p
  for p in ip iptables tc; do
    command -v "$p" >/dev/null 2>&1 || { echo "$p is not installed (scripts/install-deps.sh)"; return 1; }
  done
  local probe="chaosprobe$$"
  ip netns add "$probe" 2>/dev/null || { echo "cannot create a network namespace (ip netns add)"; return 1; }
  if ! ip netns exec "$probe" iptables -L -n >/dev/null 2>&1; then
    ip netns del "$probe"
    echo "iptables does not work inside a network namespace"; return 1
  fi
  ip netns del "$probe"
  return 0
}

# net_setup N: makes the bridge, N namespaces and veth pairs.
net_setup () {
  NET_N=$1
  local try
  for try in $(seq 1 50); do
    NET_X=$(( (RANDOM % 240) + 10 ))
    if ! ip -4 addr show | grep -q "inet 10\.77\.${NET_X}\." \
       && ip link add "chaosbr$NET_X" type bridge 2>/dev/null; then
      NET_BRIDGE="chaosbr$NET_X"
      break
    fi
  done
  [ -n "$NET_BRIDGE" ] || { echo "cannot reserve a 10.77.X.0/24 subnet" >&2; return 1; }
  # Bridged frames go through the root namespace's FORWARD chain when
  # br_netfilter is loaded (net.bridge.bridge-nf-call-iptables = 1, which
  # overrides the bridge's own nf_call_iptables), and a FORWARD policy DROP
  # (Docker's) would cut the nodes apart: accept this bridge's traffic
  # with a rule removed by net_cleanup.
  ip link set "$NET_BRIDGE" type bridge nf_call_iptables 0 2>/dev/null || true
  iptables -I FORWARD 1 -i "$NET_BRIDGE" -o "$NET_BRIDGE" -j ACCEPT || return 1
  NET_FORWARD_RULE=1
  ip addr add "10.77.${NET_X}.254/24" dev "$NET_BRIDGE" || return 1
  ip link set "$NET_BRIDGE" up || return 1
  local i
  for i in $(seq 1 "$NET_N"); do
    net_add_node "$i" || return 1
  done
}

# net_add_node I: namespace, veth pair, address and the CHAOS chain.
net_add_node () {
  local i=$1 ns veth
  ns=$(net_ns "$i"); veth=$(net_hostveth "$i")
  ip netns add "$ns" || return 1
  ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
  ip link set "$veth" master "$NET_BRIDGE" || return 1
  ip link set "$veth" up || return 1
  net_in "$i" ip link set lo up || return 1
  net_in "$i" ip addr add "$(net_ip "$i")/24" dev eth0 || return 1
  net_in "$i" ip link set eth0 up || return 1
  net_in "$i" iptables -N CHAOS || return 1
  net_in "$i" iptables -A INPUT -j CHAOS || return 1
  net_in "$i" iptables -A OUTPUT -j CHAOS || return 1
}

# net_block I J: drops traffic between nodes I and J (both directions,
# rules on both sides).
net_block () {
  local i=$1 j=$2
  net_in "$i" iptables -A CHAOS -s "$(net_ip "$j")" -j DROP
  net_in "$i" iptables -A CHAOS -d "$(net_ip "$j")" -j DROP
  net_in "$j" iptables -A CHAOS -s "$(net_ip "$i")" -j DROP
  net_in "$j" iptables -A CHAOS -d "$(net_ip "$i")" -j DROP
}

# net_partition "I J ..." "K L ...": no traffic between the two groups.
net_partition () {
  local a b
  for a in $1; do
    for b in $2; do net_block "$a" "$b"; done
  done
}

# net_lossy I PERCENT: drops PERCENT % of node I's packets, both ways.
net_lossy () {
  local p
  p=$(awk -v x="$2" 'BEGIN { printf "%.2f", x / 100 }')
  net_in "$1" iptables -A CHAOS -m statistic --mode random --probability "$p" -j DROP
}

# net_slow I: slows node I's link (both directions).  Prints what it did.
net_slow () {
  local i=$1 veth
  veth=$(net_hostveth "$i")
  if net_in "$i" tc qdisc add dev eth0 root netem delay 100ms 50ms 2>/dev/null; then
    tc qdisc add dev "$veth" root netem delay 100ms 50ms
    echo "netem delay 100ms +-50ms"
  else
    net_in "$i" tc qdisc add dev eth0 root tbf rate 96kbit burst 2kb latency 400ms
    tc qdisc add dev "$veth" root tbf rate 96kbit burst 2kb latency 400ms
    echo "tbf rate 96kbit latency 400ms (no sch_netem in this kernel)"
  fi
}

# net_heal: removes every partition, loss and slow-down.
net_heal () {
  local i
  for i in $(seq 1 "$NET_N"); do
    net_in "$i" iptables -F CHAOS 2>/dev/null
    net_in "$i" tc qdisc del dev eth0 root 2>/dev/null
    tc qdisc del dev "$(net_hostveth "$i")" root 2>/dev/null
  done
  return 0
}

# net_cleanup: deletes the namespaces (and so the veth pairs) and the bridge.
net_cleanup () {
  local i
  [ -n "$NET_X" ] || return 0
  for i in $(seq 1 "$NET_N"); do
    ip netns del "$(net_ns "$i")" 2>/dev/null
    ip link del "$(net_hostveth "$i")" 2>/dev/null
  done
  if [ "${NET_FORWARD_RULE:-0}" = 1 ]; then
    iptables -D FORWARD -i "$NET_BRIDGE" -o "$NET_BRIDGE" -j ACCEPT 2>/dev/null
    NET_FORWARD_RULE=0
  fi
  [ -n "$NET_BRIDGE" ] && ip link del "$NET_BRIDGE" 2>/dev/null
  NET_BRIDGE=""
  return 0
}
