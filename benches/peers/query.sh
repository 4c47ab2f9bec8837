#!/usr/bin/env bash
# query_range through promfed over an HA pair against the same query asked of one replica
# directly (issue 14, item 5): Prometheus 2.42 replicas holding the same 2 hours of history,
# backfilled (`promtool tsdb create-blocks-from openmetrics`, once; the second replica gets a
# copy of the blocks). Goal: promfed's time <= 1.5x the direct Prometheus time.
#
#   benches/peers/query.sh                               # SERIES=10000 HISTOGRAMS=1000, ~10 minutes
#   SERIES=2000 HISTOGRAMS=200 RUNS=1 benches/peers/query.sh   # a few minutes
#   PROMFED=target/release/promfed benches/peers/query.sh      # no build
#
# Measured, each query over [end - 2h, end] at a 60 s step, curl's time_total, medians of RUNS:
# - a selector over SERIES counters (`q_requests_total`, 100 values of x x SERIES/100 of i);
# - `sum by (x) (rate(q_requests_total[5m]))`;
# - `histogram_quantile(0.99, sum by (le, h) (rate(q_latency_bucket[5m])))` over HISTOGRAMS
#   histograms of 8 buckets;
# - 16 concurrent dashboard-like clients: CLIENT_REQUESTS requests of the sum-by-rate query
#   each, wall time of all of them: all the same query; each client its own step; each its
#   own step and window;
# promfed's peak RSS (VmHWM) after all of it is reported (no peer, no goal).
# Everything on 127.0.0.1; promfed reads both replicas (remote read) and merges before it
# evaluates; Prometheus evaluates on its own TSDB.
set -euo pipefail

SERIES=${SERIES:-10000}
HISTOGRAMS=${HISTOGRAMS:-1000}
CLIENTS=${CLIENTS:-16}
CLIENT_REQUESTS=${CLIENT_REQUESTS:-4}
DEADLINE=${DEADLINE:-1200}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

peers_init query
start_deadline "$DEADLINE"
install_peers prometheus
need_peer "$PROMETHEUS" prometheus
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
need_peer "$PROMTOOL" prometheus
build_promfed

STEP_MS=15000
POINTS=480
END_MS=$(( ($(date +%s) - 120) * 1000 / STEP_MS * STEP_MS ))
START_MS=$(( END_MS - (POINTS - 1) * STEP_MS ))
log "backfilling $SERIES counters and $HISTOGRAMS histograms x $POINTS samples"
python3 - "$TMP/history.om" "$SERIES" "$HISTOGRAMS" "$START_MS" "$STEP_MS" "$POINTS" <<'EOF'
import sys
path, series, histograms, start, step, points = sys.argv[1], *map(int, sys.argv[2:])
with open(path, "w", buffering=1 << 20) as f:
    f.write("# TYPE q_requests counter\n")
    for s in range(series):
        x, i = s % 100, s // 100
        v = 0.0
        lines = []
        for k in range(points):
            t = start + k * step
            v += 1 + (s * k) % 5
            lines.append(f'q_requests_total{{i="i{i}",x="x{x}"}} {v} {t // 1000}.{t % 1000:03d}\n')
        f.write("".join(lines))
    f.write("# TYPE q_latency histogram\n")
    bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    for h in range(histograms):
        for b, le in enumerate(bounds):
            v = 0.0
            lines = []
            for k in range(points):
                t = start + k * step
                v += (b + 1) * (1 + (h + k) % 3)
                lines.append(f'q_latency_bucket{{h="h{h}",le="{le}"}} {v} {t // 1000}.{t % 1000:03d}\n')
            f.write("".join(lines))
    f.write("# EOF\n")
EOF
"$PROMTOOL" tsdb create-blocks-from openmetrics "$TMP/history.om" "$TMP/a" >"$TMP/backfill.log" 2>&1 ||
    { cat "$TMP/backfill.log" >&2; exit 1; }
rm -f "$TMP/history.om"
cp -r "$TMP/a" "$TMP/b"

port_a=$(free_port)
port_b=$(free_port)
port_p=$(free_port)
for r in a b; do printf 'global:\n  external_labels: {replica: %s}\n' "$r" >"$TMP/$r.yml"; done
start_prometheus a "$port_a"
start_prometheus b "$port_b"
wait_for 120 "replica a" curl -sf -o /dev/null "http://127.0.0.1:$port_a/-/ready"
wait_for 120 "replica b" curl -sf -o /dev/null "http://127.0.0.1:$port_b/-/ready"
cat >"$TMP/promfed.yml" <<EOF
server: {listen_address: "127.0.0.1:$port_p"}
groups:
  - name: pair
    scrape_interval: 60s
    scrape_timeout: 30s
    match: ['{__name__="none"}']
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$port_a"}
      - {name: b, role: secondary, address: "127.0.0.1:$port_b"}
EOF
start_promfed promfed
pid_p=$LAST_PID
wait_for 60 "promfed" curl -sf -o /dev/null "http://127.0.0.1:$port_p/-/healthy"
wait_for 60 "promfed's replicas" sh -c "curl -sf http://127.0.0.1:$port_p/api/v1/status/groups | grep -q '\"address\":\"127.0.0.1:$port_b\"'"

# time_of BASE QUERY [ANSWER_FILE [STEP [SHIFT]]]: seconds for one query_range (a form POST, as
# Grafana sends it) over the 2 hours, or SHIFT seconds before them, checking that it succeeded;
# the answer left in ANSWER_FILE ($TMP/answer.json).
time_of() {
    local out=${3:-$TMP/answer.json} shift=${5:-0}
    curl -sf -o "$out" -w '%{time_total}\n' --max-time 300 "$1/api/v1/query_range" \
        --data-urlencode "query=$2" --data-urlencode "start=$((START_MS / 1000 - shift))" \
        --data-urlencode "end=$((END_MS / 1000 - shift))" --data-urlencode "step=${4:-60}"
    grep -q '"status":"success"' "$out" || { head -c 500 "$out" >&2; exit 1; }
}

declare -A QUERIES=(
    [selector]='q_requests_total'
    [sum_by_rate]='sum by (x) (rate(q_requests_total[5m]))'
    [histogram_quantile]='histogram_quantile(0.99, sum by (le, h) (rate(q_latency_bucket[5m])))'
)
for case in selector sum_by_rate histogram_quantile; do
    q=${QUERIES[$case]}
    # One answer of each first: the same series and points from both (a sanity check, not the test).
    time_of "http://127.0.0.1:$port_p" "$q" >/dev/null
    ours=$(python3 -c 'import json; d=json.load(open("'"$TMP/answer.json"'"))["data"]["result"]; print(len(d), sum(len(s["values"]) for s in d))')
    time_of "http://127.0.0.1:$port_a" "$q" >/dev/null
    theirs=$(python3 -c 'import json; d=json.load(open("'"$TMP/answer.json"'"))["data"]["result"]; print(len(d), sum(len(s["values"]) for s in d))')
    [ "$ours" = "$theirs" ] || log "$case: promfed answered $ours (series points), Prometheus $theirs"
    p=() d=()
    for _ in $(seq "$RUNS"); do
        p+=("$(time_of "http://127.0.0.1:$port_p" "$q")")
        d+=("$(time_of "http://127.0.0.1:$port_a" "$q")")
    done
    emit_result query "$case, $SERIES series x 2 h" "seconds per query_range" s "$(median "${p[@]}")" \
        "Prometheus 2.42 (one replica)" "$(median "${d[@]}")" "<= 1.5" "$RUNS" "answers: $ours series/points"
done

# Dashboard-like concurrency: CLIENTS clients, CLIENT_REQUESTS sum-by-rate queries each; all
# asking the same (one dashboard in many browsers: promfed answers identical queries in flight
# once), each its own step over the same window (distinct queries reading the same: promfed
# shares the fetch), or each its own step over its own window, 1 to CLIENTS minutes earlier
# (nothing shared).
concurrent() { # concurrent BASE same|distinct|shifted
    local start end
    start=$(now)
    for c in $(seq "$CLIENTS"); do
        (
            f=$(mktemp "$TMP/answer.XXXXXX")
            step=60 shift=0
            [ "$2" = same ] || step=$((59 + c))
            [ "$2" != shifted ] || shift=$((60 * c))
            for _ in $(seq "$CLIENT_REQUESTS"); do
                time_of "$1" "${QUERIES[sum_by_rate]}" "$f" "$step" "$shift" >/dev/null
            done
        ) &
    done
    wait
    end=$(now)
    calc "$end - $start"
}
for kind in same distinct shifted; do
    p=() d=()
    for _ in $(seq "$RUNS"); do
        p+=("$(concurrent "http://127.0.0.1:$port_p" "$kind")")
        d+=("$(concurrent "http://127.0.0.1:$port_a" "$kind")")
    done
    emit_result query "$CLIENTS concurrent clients x $CLIENT_REQUESTS sum_by_rate, $kind queries" "wall seconds" s \
        "$(median "${p[@]}")" "Prometheus 2.42 (one replica)" "$(median "${d[@]}")" "<= 1.5" "$RUNS"
done
emit_result query "promfed peak RSS after the queries" "VmHWM" MB "$(hwm_mb "$pid_p")" "" "" "" 1
results_table query
# PROMFED_LOG=promfed::query=debug: where promfed's time went (fetch, evaluation, rendering).
[ -z "${PROMFED_LOG:-}" ] || grep "query answered" "$TMP/promfed.log" | tail -12 >&2
