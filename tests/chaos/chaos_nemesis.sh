# Titan-KV chaos harness: the nemesis (sourced by chaos_run.sh, after
# chaos_net.sh and chaos_cluster.sh).
#
# nem_plan writes the fault schedule from the seed alone: one line per
# fault, `at=S kind=K pick=P hold=H`, with S the planned start (seconds
# from the start of the workload), K the fault kind, P a number that picks
# the target among the candidates known when the fault starts (a follower,
# a split of the nodes...) and H how long the fault lasts.  The same seed,
# duration, fault list and node count give the same file, so a failing run
# replays with the same faults in the same order at the same times (the
# roles -- who leads -- are looked up at run time).
#
# nem_run executes the schedule one fault at a time: it waits for the
# planned start, injects the fault, holds it, heals it, and waits (bounded)
# for the cluster to be healthy again before the next one.  Each step is
# appended to $CL_DIR/faults.log.

NEM_KINDS_ALL="kill-follower kill-leader kill-all pause partition-leader partition-split partition-bridge slow lossy transfer member snapshot"
NEM_INJECTED=0
declare -A NEM_COUNT

# nem_plan SEED DURATION "KINDS" FILE
nem_plan () {
  local seed=$1 duration=$2 kinds=$3 file=$4
  (
    RANDOM=$seed
    read -r -a k <<<"$kinds"
    t=3
    while :; do
      kind=${k[$(( RANDOM % ${#k[@]} ))]}
      pick=$RANDOM
      case $kind in
        pause) hold=$(( 1 + RANDOM % 3 )) ;;               # >> election timeout (0.1-0.2 s)
        transfer) hold=1 ;;
        snapshot) hold=$(( 4 + RANDOM % 4 )) ;;
        *) hold=$(( 2 + RANDOM % 4 )) ;;
      esac
      gap=$(( 2 + RANDOM % 3 ))
      [ $(( t + hold + 3 )) -le "$duration" ] || break
      echo "at=$t kind=$kind pick=$pick hold=$hold"
      t=$(( t + hold + gap ))
    done
  ) >"$file"
}

nem_log () { echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $*" >>"$CL_DIR/faults.log"; }

# nem_pick_follower L PICK: a follower of L chosen by PICK.
nem_pick_follower () {
  local -a f
  mapfile -t f < <(cl_followers "$1")
  echo "${f[$(( $2 % ${#f[@]} ))]}"
}

# nem_inject KIND PICK HOLD: one fault, held then healed.  Returns 1 when
# it could not be injected (no leader, refused): the run goes on.
nem_inject () {
  local kind=$1 pick=$2 hold=$3 l f i a b what
  l=$(cl_leader) || { nem_log "skip $kind: no leader"; return 1; }
  f=$(nem_pick_follower "$l" "$pick")
  case $kind in
    kill-follower)
      nem_log "kill -9 follower n$f for ${hold}s"
      cl_kill9 "$f"; sleep "$hold"; cl_start "$f" ;;
    kill-leader)
      nem_log "kill -9 leader n$l for ${hold}s"
      cl_kill9 "$l"; sleep "$hold"; cl_start "$l" ;;
    kill-all)
      nem_log "kill -9 all nodes for ${hold}s"
      for i in $(seq 1 "$CL_N"); do cl_kill9 "$i"; done
      sleep "$hold"
      for i in $(seq 1 "$CL_N"); do cl_start "$i"; done ;;
    pause)
      [ $(( pick % 2 )) = 0 ] && f=$l
      nem_log "SIGSTOP n$f ($([ "$f" = "$l" ] && echo leader || echo follower)) for ${hold}s"
      cl_pause "$f"; sleep "$hold"; cl_resume "$f" ;;
    partition-leader)
      nem_log "partition: leader n$l isolated from $(cl_followers "$l" | tr '\n' ' ')for ${hold}s"
      net_partition "$l" "$(cl_followers "$l")"; sleep "$hold"; net_heal ;;
    partition-split)
      # A random minority (floor(N/2) nodes, starting at a picked index).
      a=""; b=""
      for i in $(seq 0 $(( CL_N - 1 ))); do
        local n=$(( (pick + i) % CL_N + 1 ))
        if [ "$i" -lt $(( CL_N / 2 )) ]; then a="$a $n"; else b="$b $n"; fi
      done
      nem_log "partition: minority {$a } / majority {$b } (leader n$l) for ${hold}s"
      net_partition "$a" "$b"; sleep "$hold"; net_heal ;;
    partition-bridge)
      # The picked node sees both sides; the others split into two halves
      # that do not see each other.
      local bridge=$(( pick % CL_N + 1 )) side=0
      a=""; b=""
      for i in $(seq 1 "$CL_N"); do
        [ "$i" = "$bridge" ] && continue
        if [ $side = 0 ]; then a="$a $i"; side=1; else b="$b $i"; side=0; fi
      done
      nem_log "partition: {$a } and {$b } apart, bridge n$bridge sees both (leader n$l) for ${hold}s"
      net_partition "$a" "$b"; sleep "$hold"; net_heal ;;
    slow)
      i=$(( pick % CL_N + 1 ))
      what=$(net_slow "$i")
      nem_log "slow link on n$i ($what; leader n$l) for ${hold}s"
      sleep "$hold"; net_heal ;;
    lossy)
      i=$(( pick % CL_N + 1 )); a=$(( 10 + pick % 21 ))
      nem_log "lossy link on n$i: drop ${a}% of packets (leader n$l) for ${hold}s"
      net_lossy "$i" "$a"; sleep "$hold"; net_heal ;;
    transfer)
      nem_log "leader transfer n$l -> n$f"
      ctl --endpoints="$(cl_client "$l")" leader transfer "$(cl_id "$f")" >>"$CL_DIR/faults.log" 2>&1 \
        || nem_log "  transfer refused"
      sleep "$hold" ;;
    member)
      nem_log "member remove n$f (wipe), re-add after ${hold}s"
      cl_remove_member "$f" || { nem_log "  removal refused"; return 1; }
      sleep "$hold"
      cl_add_member "$f" || nem_log "  re-add failed within 60 s" ;;
    snapshot)
      a=$(cl_applied "$l")
      nem_log "snapshot: follower n$f down while >= $(( 2 * CL_SNAPSHOT_ENTRIES )) entries are applied (from ${a:-?}; at least ${hold}s)"
      cl_kill9 "$f"; sleep "$hold"
      local deadline=$(( $(date +%s) + 30 ))
      while [ "$(date +%s)" -lt $deadline ]; do
        b=$(cl_applied "$l")
        [ -n "$a" ] && [ -n "$b" ] && [ "$b" -ge $(( a + 2 * CL_SNAPSHOT_ENTRIES )) ] && break
        sleep 0.5
      done
      local before
      before=$(grep -c "installed" "$CL_DIR/n$f/titand.log")
      cl_start "$f"
      deadline=$(( $(date +%s) + 30 ))
      while [ "$(date +%s)" -lt $deadline ]; do
        [ "$(grep -c "installed" "$CL_DIR/n$f/titand.log")" -gt "$before" ] && break
        sleep 0.5
      done
      if [ "$(grep -c "installed" "$CL_DIR/n$f/titand.log")" -gt "$before" ]; then
        nem_log "  n$f installed a snapshot ($(grep "installed" "$CL_DIR/n$f/titand.log" | tail -1 | sed 's/.*group [0-9]*: //'))"
      else
        nem_log "  n$f did not log a snapshot install within 30 s (applied ${a:-?} -> ${b:-?})"
      fi ;;
    *) nem_log "unknown fault kind $kind"; return 1 ;;
  esac
  return 0
}

# nem_run SCHEDULE START_EPOCH [END_EPOCH]: runs the schedule
# (START_EPOCH: the workload's start, seconds since the epoch).  Faults are
# run in order however late they are (recovery on a loaded machine can
# take longer than the gaps), but none is started at or after END_EPOCH:
# the rest of the schedule is logged as not run.
nem_run () {
  local file=$1 start=$2 end=${3:-0} line at kind pick hold now left
  while read -r line; do
    at=${line#at=}; at=${at%% *}
    kind=${line#*kind=}; kind=${kind%% *}
    pick=${line#*pick=}; pick=${pick%% *}
    hold=${line#*hold=}
    now=$(date +%s)
    if [ "$end" != 0 ] && [ "$now" -ge "$end" ]; then
      left=$(awk -v a="$at" '{ split($1, f, "="); if (f[2] >= a) n++ } END { print n + 0 }' "$file")
      nem_log "run duration reached: $left planned faults not run (from at=${at}s)"
      break
    fi
    if [ $(( start + at )) -gt "$now" ]; then sleep $(( start + at - now )); fi
    if nem_inject "$kind" "$pick" "$hold"; then
      NEM_INJECTED=$(( NEM_INJECTED + 1 ))
      NEM_COUNT[$kind]=$(( ${NEM_COUNT[$kind]:-0} + 1 ))
    fi
    cl_heal_all
    cl_wait_healthy 60 || nem_log "  cluster not healthy 60 s after healing $kind"
    nem_log "  healed $kind (planned at ${at}s, done at $(( $(date +%s) - start ))s)"
  done <"$file"
}
