#!/usr/bin/env bash
# End-to-end test of the metrics module and of the logs (issue 11, parts 1,
# 2 and 6) against real titand processes on free loopback ports:
#   - node m1 runs the metrics module (listen port 0: the port is read from
#     its log line); /healthz is 200, /readyz 200 once a leader is elected;
#   - a known workload (50 puts, 20 gets, 5 gets of missing keys) and then
#     the scraped figures: exact call counts per method and status, the
#     histograms consistent (buckets cumulative, +Inf = _count = the
#     counter), keys, Raft and module figures; the whole page is checked
#     against the text format (HELP/TYPE once per family, before samples);
#   - a module restart shows in titan_module_restarts_total;
#   - the log level changed at run time (titanctl log-level): the gateway's
#     debug line "call finished" appears only after the change; every line
#     of the node's own log has the one-line format;
#   - /readyz is 503 on a node waiting to join (not a member), and on m1
#     once the 3-node cluster it formed loses its quorum;
#   - a module that does not answer (a test module held by the kernel
#     while its restart backs off) does not hang the scrape: the page
#     comes, the miss is counted in titan_scrape_errors_total.
set -u
. "${TITAN_SRCDIR:-$(dirname "$0")/..}/tests/e2e_lib.sh"
e2e_require
command -v curl >/dev/null 2>&1 || e2e_skip "curl is not installed (scripts/install-deps.sh)"
found=no
IFS=: read -r -a dirs <<<"$TITAN_MODULE_PATH"
for dir in "${dirs[@]}"; do [ -e "$dir/titan_metrics.so" ] && found=yes; done
[ $found = yes ] || e2e_skip "titan_metrics.so is not built (TITAN_MODULE_PATH)"

D=$E2E_DIR
declare -a PIDS CLIENT PEER HTTP
for n in 1 2 3 4 5; do
  CLIENT[$n]="127.0.0.1:$(e2e_free_port)"
  PEER[$n]="127.0.0.1:$(e2e_free_port)"
  PIDS[$n]=""
done
trap 'for n in 1 2 3 4 5; do [ -n "${PIDS[$n]}" ] && kill -9 "${PIDS[$n]}" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"' EXIT

# Static placement with one group (explicit: the default is ring placement
# with Q = 16): the checks read shard 0's series.
{ e2e_static_modules; cat <<CFG
    metrics
        path = titan_metrics.so
        listen = 127.0.0.1:0
        poll_ms = 200
CFG
} >"$D/metrics.cfg"

# start_node N [--config F] [--join ADDR]: titand mN in the background
start_node () {
  local n=$1; shift
  "$TITAND" --node-id "m$n" --data-dir "$D/data$n" \
    --client-addr "${CLIENT[$n]}" --peer-addr "${PEER[$n]}" "$@" \
    --module-path "$TITAN_MODULE_PATH" >>"$D/titand$n.log" 2>&1 &
  PIDS[$n]=$!
}
# http_port N: waits (30 s) for node N's metrics module to log its port
http_port () {
  local n=$1 port="" deadline=$(( $(date +%s) + 30 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    port=$(sed -n 's/.*module=metrics msg="serving[^"]*".* port=\([0-9]*\).*/\1/p' "$D/titand$n.log" | tail -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "${PIDS[$n]}" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$D/titand$n.log" >&2
  e2e_fail "node m$n's metrics module did not report its port"
}
ctl () { "$TITANCTL" --timeout=5s "$@"; }
# status_of URL: prints the HTTP status code (000 when nothing answers)
status_of () { curl -s -o "$D/body" -w '%{http_code}' --max-time 10 "$1" || true; }
# wait_status URL CODE SECONDS: polls until URL answers CODE
wait_status () {
  local deadline=$(( $(date +%s) + $3 )) got
  while [ "$(date +%s)" -lt $deadline ]; do
    got=$(status_of "$1")
    [ "$got" = "$2" ] && return 0
    sleep 0.2
  done
  e2e_fail "$1 answered $got (body: $(cat "$D/body" 2>/dev/null)), expected $2 within $3 s"
}
# metric NAME{LABELS}: prints the value of exactly that sample
metric () {
  awk -v want="$1" '$1 == want { print $2; found = 1 } END { if (!found) print "missing" }' "$D/page"
}
expect_metric () {   # SAMPLE VALUE
  local got; got=$(metric "$1")
  [ "$got" = "$2" ] || e2e_fail "$1 is $got, expected $2"
}

# ------------------------------------------------ one node: health, figures
start_node 1 --config "$D/metrics.cfg"
PORT=$(http_port 1)
URL="http://127.0.0.1:$PORT"
[ "$(status_of "$URL/healthz")" = 200 ] || e2e_fail "/healthz did not answer 200"
[ "$(status_of "$URL/nothing")" = 404 ] || e2e_fail "an unknown path did not answer 404"
wait_status "$URL/readyz" 200 30
grep -q "^ready" "$D/body" || e2e_fail "/readyz 200 without the reason: $(cat "$D/body")"
EP="--endpoints=${CLIENT[1]}"

[ "$(ctl "$EP" log-level)" = info ] || e2e_fail "the default log level is not info"
for i in $(seq 1 50); do ctl "$EP" put "key$i" "value$i" >/dev/null || e2e_fail "put key$i failed"; done
for i in $(seq 1 20); do ctl "$EP" get "key$i" >/dev/null || e2e_fail "get key$i failed"; done
for i in $(seq 1 5); do expect_rc 1 ctl "$EP" get "missing$i"; done
grep -q 'msg="call finished"' "$D/titand1.log" && e2e_fail "a debug line was written at level info"

curl -s --max-time 10 -D "$D/headers" "$URL/metrics" >"$D/page" || e2e_fail "scrape failed"
grep -qi '^content-type: text/plain; version=0.0.4' "$D/headers" || e2e_fail "wrong content type: $(cat "$D/headers")"
KV='grpc_service="titan.v1.KV"'
expect_metric "titan_grpc_requests_total{$KV,grpc_method=\"Put\",grpc_code=\"OK\"}" 50
expect_metric "titan_grpc_requests_total{$KV,grpc_method=\"Get\",grpc_code=\"OK\"}" 20
expect_metric "titan_grpc_requests_total{$KV,grpc_method=\"Get\",grpc_code=\"NOT_FOUND\"}" 5
expect_metric "titan_grpc_request_duration_seconds_count{$KV,grpc_method=\"Put\",grpc_code=\"OK\"}" 50
expect_metric "titan_grpc_request_duration_seconds_bucket{$KV,grpc_method=\"Get\",grpc_code=\"NOT_FOUND\",le=\"+Inf\"}" 5
expect_metric 'titan_bitcask_keys{shard="0"}' 50
expect_metric 'titan_raft_is_leader{shard="0"}' 1
expect_metric 'titan_raft_has_leader{shard="0"}' 1
expect_metric 'titan_raft_members{shard="0"}' 1
expect_metric 'titan_raft_leader_changes_seen_total{shard="0"}' 1
expect_metric 'titan_module_up{module="bitcask"}' 1
expect_metric 'titan_module_restarts_total{module="bitcask"}' 0
expect_metric 'titan_metrics_source_up{source="gateway"}' 1
expect_metric 'titan_scrape_errors_total{source="raft"}' 0
[ "$(metric 'titan_raft_applied_index{shard="0"}')" -ge 50 ] || e2e_fail "applied index below 50"
# apply_sync = interval: the applies of those puts are fsynced together,
# every apply_sync_interval_ms (200), so at least once and at most once per
# commit
fsyncs=$(metric 'titan_bitcask_fsync_duration_seconds_count{shard="0"}')
commits=$(metric 'titan_bitcask_commits_total{shard="0"}')
[ "$fsyncs" -ge 1 ] && [ "$fsyncs" -le "$commits" ] \
  || e2e_fail "fsync count $fsyncs not in 1..commits ($commits)"
[ "$(metric 'titan_bitcask_commits_total{shard="0"}')" -ge 1 ] || e2e_fail "no bitcask commit counted"
# the interval sync covers the applies up to at most the applied index
durable=$(metric 'titan_bitcask_durable_applied_index{shard="0"}')
applied=$(metric 'titan_raft_applied_index{shard="0"}')
[ "${durable:-0}" -ge 1 ] && [ "$durable" -le "$applied" ] \
  || e2e_fail "durable applied index ${durable:-none} not in 1..applied ($applied)"

# The page as a whole: the exposition format and histogram consistency.
/usr/bin/python3 - "$D/page" <<'PY' || e2e_fail "the metrics page is not consistent (above)"
import re, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "the page must end with a newline"
types, helps, seen, hist = {}, set(), set(), {}
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
def fail(msg):
    print("metrics page:", msg); sys.exit(1)
for line in lines[:-1]:
    if line.startswith("# HELP "):
        name = line.split(" ")[2]
        if name in helps: fail("HELP twice for " + name)
        helps.add(name); continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        if name in types: fail("TYPE twice for " + name)
        if kind not in ("counter", "gauge", "histogram"): fail("bad type " + line)
        if name not in helps: fail("TYPE before HELP for " + name)
        types[name] = kind; continue
    m = sample.match(line)
    if not m: fail("bad line: " + line)
    name, labels, value = m.group(1), m.group(3) or "", m.group(4)
    float(value)
    pos, parsed = 0, {}
    while pos < len(labels):
        lm = label.match(labels, pos)
        if not lm: fail("bad labels: " + line)
        parsed[lm.group(1)] = lm.group(2); pos = lm.end()
    family = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in types and types[name[:-len(suffix)]] == "histogram":
            family = name[:-len(suffix)]
    if family not in types: fail("sample before its TYPE: " + line)
    if types[family] == "counter" and not family.endswith("_total"): fail("counter without _total: " + family)
    if types[family] == "histogram":
        key = (family, tuple(sorted((k, v) for k, v in parsed.items() if k != "le")))
        h = hist.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if name.endswith("_bucket"): h["buckets"].append((parsed["le"], float(value)))
        elif name.endswith("_count"): h["count"] = float(value)
        else: h["sum"] = float(value)
for (family, labels), h in hist.items():
    b = h["buckets"]
    if not b or b[-1][0] != "+Inf": fail("no +Inf bucket: %s %s" % (family, labels))
    les = [float(le) for le, _ in b[:-1]]
    if les != sorted(les): fail("bucket bounds not ascending: " + family)
    counts = [c for _, c in b]
    if counts != sorted(counts): fail("buckets not cumulative: %s %s" % (family, labels))
    if h["count"] != counts[-1]: fail("+Inf bucket != _count: %s %s" % (family, labels))
    if h["sum"] is None or h["sum"] < 0: fail("no _sum: " + family)
print("metrics page: %d families, %d histograms, format and histograms consistent" % (len(types), len(hist)))
PY

# A module restart is counted.
ctl "$EP" module restart bitcask >/dev/null || e2e_fail "module restart bitcask failed"
curl -s --max-time 10 "$URL/metrics" >"$D/page"
expect_metric 'titan_module_restarts_total{module="bitcask"}' 1
expect_metric 'titan_bitcask_keys{shard="0"}' 50

# ------------------------------------------------ log level at run time
[ "$(ctl "$EP" log-level debug)" = "log level debug (was info)" ] || e2e_fail "log-level debug did not answer as expected"
ctl "$EP" get key1 >/dev/null || e2e_fail "get after log-level debug failed"
deadline=$(( $(date +%s) + 10 ))
until grep -q 'level=debug node=m1 module=grpc_gateway msg="call finished" method=/titan.v1.KV/Get code=0 duration_us=' "$D/titand1.log"; do
  [ "$(date +%s)" -lt $deadline ] || e2e_fail "no debug line after log-level debug"
  sleep 0.1
done
grep -q 'level=warning node=m1 module=kernel msg="log level changed from info to debug' "$D/titand1.log" \
  || e2e_fail "the level change is not logged"
expect_rc 5 ctl "$EP" log-level loud
grep -q "INVALID_ARGUMENT: unknown log level 'loud'" "$D/err" || e2e_fail "bad level refused without reason: $(cat "$D/err")"
[ "$(ctl "$EP" log-level info)" = "log level info (was debug)" ] || e2e_fail "log-level info did not answer as expected"
# Every line the node wrote through the logging API has the one-line format.
bad=$(grep -v -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(error|warning|info|debug) node=m1 module=[a-z_]+ msg="([^"\\]|\\.)*"( [a-z_]+=[^ ]+)*$' "$D/titand1.log" | head -3)
[ -z "$bad" ] || e2e_fail "log lines not in the one-line format: $bad"

# ------------------------------------------------ readiness: not a member
start_node 4 --config "$D/metrics.cfg" --join "127.0.0.1:$(e2e_free_port)"
URL4="http://127.0.0.1:$(http_port 4)"
wait_status "$URL4/readyz" 503 30
grep -q "not a member" "$D/body" || e2e_fail "503 without the reason: $(cat "$D/body")"
echo "readyz of a node waiting to join: $(cat "$D/body")"
[ "$(status_of "$URL4/healthz")" = 200 ] || e2e_fail "/healthz of a joining node is not 200"
kill -9 "${PIDS[4]}"; wait "${PIDS[4]}" 2>/dev/null; PIDS[4]=""

# ------------------------------------------------ readiness: quorum lost
start_node 2 --config "$D/metrics.cfg" --join "${PEER[1]}"
start_node 3 --config "$D/metrics.cfg" --join "${PEER[1]}"
up=0
for _ in $(seq 1 300); do
  up=$(ctl "$EP" --timeout=1s -w json member list 2>/dev/null | grep -o '"state":"up"' | wc -l) || up=0
  [ "$up" -ge 3 ] && break
  sleep 0.1
done
[ "$up" -ge 3 ] || e2e_fail "the 3 nodes did not become voters"
wait_status "$URL/readyz" 200 30
curl -s --max-time 10 "$URL/metrics" >"$D/page"
expect_metric 'titan_raft_members{shard="0"}' 3
for n in 2 3; do kill -9 "${PIDS[$n]}"; wait "${PIDS[$n]}" 2>/dev/null; PIDS[$n]=""; done
wait_status "$URL/readyz" 503 30
grep -q "shard 0 has no leader" "$D/body" || e2e_fail "503 without the no-leader reason: $(cat "$D/body")"
echo "readyz without quorum: $(cat "$D/body")"
[ "$(status_of "$URL/healthz")" = 200 ] || e2e_fail "/healthz is not 200 without quorum"

# ------------------------------------------------ a module that does not answer
# m5's metrics module asks the test module "crash" for gw.stats; crash
# answers every request it does not know with "unknown" (not a
# GwStatsReply: an error reply), and once restarted it fails to start
# (fail_from = 1) and the kernel holds requests for it for 10 s of backoff.
cat >"$D/slow.cfg" <<CFG
kernel
    restart_backoff_ms = 10000
    restart_backoff_max_ms = 10000
modules
    bitcask
        path = titan_bitcask.so
    raft
        path = titan_raft.so
        placement = static
        shards = 1
    grpc_gateway
        path = titan_grpc_gateway.so
    crash
        path = titan_test_crash.so
        fail_from = 1
    metrics
        path = titan_metrics.so
        listen = 127.0.0.1:0
        poll_ms = 0
        scrape_timeout_ms = 300
        gateway = crash
CFG
start_node 5 --config "$D/slow.cfg"
URL5="http://127.0.0.1:$(http_port 5)"
wait_status "$URL5/readyz" 200 30
curl -s --max-time 10 "$URL5/metrics" >"$D/page" || e2e_fail "scrape of m5 failed"
errors=$(metric 'titan_scrape_errors_total{source="gateway"}')   # malformed replies
[ "$errors" -ge 1 ] || e2e_fail "a malformed gw.stats reply was not counted as an error"
expect_metric 'titan_metrics_source_up{source="gateway"}' 0
expect_metric 'titan_metrics_source_up{source="raft"}' 1
ctl --endpoints="${CLIENT[5]}" module restart crash >/dev/null 2>&1 && e2e_fail "crash restarted although fail_from = 1"
start=$(date +%s%N)
code=$(curl -s -o "$D/page" -w '%{http_code}' --max-time 10 "$URL5/metrics") || e2e_fail "scrape hung while crash is down"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$code" = 200 ] || e2e_fail "scrape answered $code while crash is down"
expect_metric 'titan_scrape_errors_total{source="gateway"}' $((errors + 1))   # the timeout
expect_metric 'titan_metrics_source_up{source="gateway"}' 0
expect_metric 'titan_module_up{module="crash"}' 0
expect_metric 'titan_bitcask_keys{shard="0"}' 0
echo "scrape with a module not answering: 200 in $ms ms (scrape_timeout_ms 300)"

kill -TERM "${PIDS[1]}"
wait "${PIDS[1]}" 2>/dev/null || e2e_fail "titand m1 did not exit cleanly after SIGTERM"
PIDS[1]=""
if grep -q -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D"/titand*.log; then
  e2e_fail "sanitizer report in a titand log"
fi
echo "PASS: metrics, health, readiness and log level"
