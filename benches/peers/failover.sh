#!/usr/bin/env bash
# Failover as a downstream Prometheus sees it: the longest gap between consecutive stored samples
# of promfed's series when the primary replica of the pair is killed (kill -9), on loopback.
# Prints a markdown table of gaps in seconds and in downstream scrape intervals.
# Goal (issue 7): the longest gap <= 1 scrape interval of the downstream.
#
#   benches/peers/failover.sh                         # 10k series, 5 s, 3 runs: ~8 min
#   SERIES=2000 RUNS=1 PRE=30 POST=30 benches/peers/failover.sh
#
# What runs, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds at most;
# per run, from scratch:
# - gen_target.py: SERIES series at /metrics (values change every request);
# - the HA pair: two Prometheus 2.42 (replica=a, replica=b), each scraping the target every
#   REPLICA_INTERVAL (default SCRAPE_INTERVAL) with its own phase, as real replicas do;
# - two promfeds federating the pair (a primary, b secondary): "fast" scraping the replicas
#   every PROMFED_FAST_INTERVAL (default 1s), "equal" every SCRAPE_INTERVAL;
# - the downstream Prometheus 2.42 scraping both promfeds' /federate every SCRAPE_INTERVAL
#   (honor_labels, timestamps honoured as by default; each promfed's series get the target
#   label via="fast" / via="equal" so that they do not collide), and, for information, the fast
#   promfed once more with honor_timestamps: false (via="fast_own_ts": samples stored at the
#   downstream's own scrape times, the work-around when the timestamps passed through make gaps).
# PRE seconds after the downstream stored its first samples, replica a is killed with SIGKILL
# (no stale markers, connection refused from then on); POST seconds later the downstream's raw
# samples of every series are read back (/api/v1/query of a range selector) and, per series:
# - the longest gap after the kill: gaps ending after kill - REPLICA_INTERVAL - 1 s (a sample
#   stored after the failover can carry a timestamp from before the kill: the secondary's newest
#   sample is up to one replica interval old), i.e. the failover and everything until the end;
# - the longest gap before that (steady state: what scrape-phase jitter alone gives);
# - how much later in the replica interval the secondary's samples are than the primary's.
# A series counts as "> 1 interval" when a gap exceeds 1.1 intervals (10% for scrape jitter:
# Prometheus' timestamps are its scrape start times, a few ms off the period).
#
# Why a real Prometheus pair rather than gen_target's simulated /federate: the gap depends on
# the replicas' scrape phases, on when their /federate shows a new sample (after the scrape is
# ingested), and on a killed Prometheus leaving no stale marker; simulating those would choose
# the answer. The downstream also stores promfed's samples with the replicas' own timestamps
# (honor_timestamps), which is what makes a gap visible at all.
set -euo pipefail

SERIES=${SERIES:-10000}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-5}
REPLICA_INTERVAL=${REPLICA_INTERVAL:-$SCRAPE_INTERVAL}
PROMFED_FAST_INTERVAL=${PROMFED_FAST_INTERVAL:-1}
PRE=${PRE:-60}
POST=${POST:-60}
RUNS=${RUNS:-3}
DEADLINE=${DEADLINE:-$((RUNS * (PRE + POST + 150) + 120))}
HERE=$(cd "$(dirname "$0")" && pwd)
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
peers_init failover

install_peers "$PROMETHEUS:prometheus"
build_promfed
start_deadline "$DEADLINE"
T_START=$SECONDS

QUERY_MATCH='{__name__=~".+"}'
DATA="$TMP/gaps.jsonl" # one JSON object per run and promfed
: >"$DATA"

timeout_for() { echo $(($1 > 2 ? $1 - 1 : 1)); }
prom_query() { # prom_query PORT QUERY
    curl -sf "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2"
}
count_of() { # count_of PORT QUERY: the value of a one-element instant vector (0 when empty)
    prom_query "$1" "$2" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
has_at_least() { [ "$(count_of "$1" "$2")" -ge "$3" ]; } # has_at_least PORT QUERY N
promfed_full() { [ "$(metric_sum "http://127.0.0.1:$1/metrics" promfed_group_series)" -ge "$SERIES" ]; }

run_once() { # run_once RUN
    local run=$1 pt pa pb pfast pequal pd dir pids=() r port interval kill_ms end_s
    dir="$TMP/run-$run"
    mkdir -p "$dir"
    pt=$(free_port); pa=$(free_port); pb=$(free_port); pfast=$(free_port); pequal=$(free_port); pd=$(free_port)

    spawn "$dir/target.log" python3 "$HERE/gen_target.py" "$pt" "$SERIES"
    pids+=("$SPAWNED")
    wait_for 60 "target" curl -sf -o /dev/null "http://127.0.0.1:$pt/metrics"
    for r in a b; do
        port=$pa
        [ "$r" = b ] && port=$pb
        mkdir -p "$dir/prom-$r"
        cat >"$dir/prom-$r.yml" <<EOF
global:
  scrape_interval: ${REPLICA_INTERVAL}s
  scrape_timeout: $(timeout_for "$REPLICA_INTERVAL")s
  external_labels: {replica: $r}
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$pt']}]
EOF
        spawn "$dir/prom-$r.log" "$PROMETHEUS" --config.file="$dir/prom-$r.yml" --storage.tsdb.path="$dir/prom-$r" \
            --web.listen-address="127.0.0.1:$port" --log.level=warn
        pids+=("$SPAWNED")
        if [ "$r" = a ]; then PRIMARY_PID=$SPAWNED; fi
    done
    wait_for 90 "replica a to store a scrape" has_at_least "$pa" 'scrape_samples_scraped{job="synthetic"}' "$SERIES"
    wait_for 60 "replica b to store a scrape" has_at_least "$pb" 'scrape_samples_scraped{job="synthetic"}' "$SERIES"

    for r in fast equal; do
        port=$pfast interval=$PROMFED_FAST_INTERVAL
        [ "$r" = equal ] && port=$pequal interval=$SCRAPE_INTERVAL
        mkdir -p "$dir/promfed-$r"
        cat >"$dir/promfed-$r.yml" <<EOF
global:
  scrape_interval: ${interval}s
  scrape_timeout: $(timeout_for "$interval")s
server:
  listen_address: 127.0.0.1:$port
data_dir: $dir/promfed-$r
groups:
  - name: pair
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$pa"}
      - {name: b, role: secondary, address: "127.0.0.1:$pb"}
EOF
        spawn "$dir/promfed-$r.log" env RUST_LOG=warn "$PROMFED" serve --config "$dir/promfed-$r.yml"
        pids+=("$SPAWNED")
    done
    wait_for 60 "promfed fast to merge" promfed_full "$pfast"
    wait_for 60 "promfed equal to merge" promfed_full "$pequal"

    mkdir -p "$dir/downstream"
    cat >"$dir/downstream.yml" <<EOF
global:
  scrape_interval: ${SCRAPE_INTERVAL}s
  scrape_timeout: $(timeout_for "$SCRAPE_INTERVAL")s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {'match[]': ['$QUERY_MATCH']}
    static_configs:
      - {targets: ['127.0.0.1:$pfast'], labels: {via: fast}}
      - {targets: ['127.0.0.1:$pequal'], labels: {via: equal}}
  - job_name: federate_own_ts
    honor_labels: true
    honor_timestamps: false
    metrics_path: /federate
    params: {'match[]': ['$QUERY_MATCH']}
    static_configs:
      - {targets: ['127.0.0.1:$pfast'], labels: {via: fast_own_ts}}
EOF
    spawn "$dir/downstream.log" "$PROMETHEUS" --config.file="$dir/downstream.yml" \
        --storage.tsdb.path="$dir/downstream" --web.listen-address="127.0.0.1:$pd" --log.level=warn
    pids+=("$SPAWNED")
    wait_for 90 "the downstream to store both promfeds" has_at_least "$pd" 'count(up{job=~"federate.*"} == 1)' 3
    sleep "$PRE"
    kill_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
    # (waited for here, with the shell's "Killed" notice discarded)
    { kill -9 "$PRIMARY_PID" && wait "$PRIMARY_PID"; } 2>/dev/null || true
    log "run $run: primary replica a killed (kill -9) at $kill_ms; $POST s more"
    sleep "$POST"
    end_s=$(python3 -c 'import time; print(f"{time.time():.3f}")')
    for r in fast equal fast_own_ts; do
        port=$pfast
        [ "$r" = equal ] && port=$pequal
        log "run $run, promfed $r: $(curl -sf "http://127.0.0.1:$port/api/v1/status/groups" | python3 -c '
import json, sys
g = json.load(sys.stdin)["data"][0]
print("leader", g["leader"], "failovers", g["failovers"], "series", g["series"])')"
        curl -sf "http://127.0.0.1:$pd/api/v1/query" --data-urlencode "query={via=\"$r\",job!~\"federate.*\"}[$((PRE + POST + 120))s]" \
            --data-urlencode "time=$end_s" -o "$dir/samples-$r.json"
        python3 - "$dir/samples-$r.json" "$run" "$r" "$kill_ms" "$SCRAPE_INTERVAL" "$REPLICA_INTERVAL" "$SERIES" >>"$DATA" <<'EOF'
import json, statistics, sys
path, run, via, kill_ms, interval, replica_interval, series = sys.argv[1:8]
kill, interval, r = int(kill_ms) / 1000, float(interval), float(replica_interval)
# A sample stored after the kill can carry a timestamp from before it (the secondary's newest
# sample at the failover is up to one replica interval old), so the gaps "after the kill" are
# those ending after kill - replica interval - 1 s; before that only the primary was served.
cut = kill - r - 1
res = json.load(open(path))["data"]["result"]
after, before, n_over, stopped, lags = [], [], 0, 0, []
example = None
end = max(float(s["values"][-1][0]) for s in res) if res else 0
for s in res:
    ts = [float(v[0]) for v in s["values"]]
    gaps = [(b - a, b) for a, b in zip(ts, ts[1:])]
    before.append(max((g for g, b in gaps if b <= cut), default=0))
    after.append(max((g for g, b in gaps if b > cut), default=0))
    if after[-1] > 1.1 * interval:
        n_over += 1
    if ts[-1] < end - 2 * interval:
        stopped += 1
    # How much later in the replica interval the secondary's samples are than the primary's.
    first, last = [t for t in ts if t <= cut], ts[-1]
    if first:
        lags.append(round((last - first[-1]) % r, 2))
    if example is None:
        example = [round(t - kill, 3) for t in ts if kill - 3 * interval <= t <= kill + 4 * interval]
print(json.dumps({"run": int(run), "via": via, "series_seen": len(res), "series": int(series),
                  "longest_after": max(after, default=None), "median_after": statistics.median(after) if after else None,
                  "longest_before": max(before, default=None), "series_over_1_interval": n_over,
                  "series_stopped": stopped, "secondary_lag": statistics.median(lags) if lags else None,
                  "example_ts_around_kill": example}))
EOF
        log "run $run, $r: $(tail -1 "$DATA")"
    done
    DOWNSTREAM_ERRORS="$(metric_sum "http://127.0.0.1:$pd/metrics" prometheus_target_scrapes_sample_out_of_order_total) out-of-order, $(metric_sum "http://127.0.0.1:$pd/metrics" prometheus_target_scrapes_sample_duplicate_timestamp_total) duplicate-timestamp samples rejected by the downstream"
    log "run $run: $DOWNSTREAM_ERRORS"
    for r in "${pids[@]}"; do kill "$r" 2>/dev/null || true; done
    for r in "${pids[@]}"; do wait "$r" 2>/dev/null || true; done
    rm -rf "$dir"
}

for run in $(seq "$RUNS"); do run_once "$run"; done
ELAPSED=$((SECONDS - T_START))

python3 - "$DATA" "$SERIES" "$SCRAPE_INTERVAL" "$REPLICA_INTERVAL" "$PROMFED_FAST_INTERVAL" "$RUNS" "$ELAPSED" "$(uptime)" >"$TMP/summary.txt" <<'EOF'
import json, statistics, sys
path, series, interval, replica_interval, fast, runs, elapsed, load = sys.argv[1:9]
d = float(interval)
rows = [json.loads(l) for l in open(path)]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"\nFailover: {int(series):,} series, replicas (Prometheus 2.42) scrape the target every {replica_interval} s, "
      f"the downstream Prometheus scrapes promfed every {interval} s; primary killed with SIGKILL; "
      f"medians of {runs} run(s); gaps between consecutive samples stored downstream\n")
print("| promfed scrapes the replicas every | longest gap after the kill s (intervals), median of runs | worst run s (intervals) | "
      "runs with a gap > 1.1 intervals | longest gap before the kill s | series with a gap > 1.1 intervals after the kill | "
      "series that stopped | runs: longest after, s | goal longest <= 1 interval (median / worst run) |")
print("|---|---:|---:|---:|---:|---:|---:|---|---|")
out = {}
for via, label in (("fast", f"{fast} s (faster than downstream)"), ("equal", f"{interval} s (= downstream)"),
                   ("fast_own_ts", f"{fast} s, downstream with honor_timestamps: false (information)")):
    v = [r for r in rows if r["via"] == via]
    if not v:
        continue
    la = med([r["longest_after"] for r in v])
    lb = med([r["longest_before"] for r in v])
    over = med([r["series_over_1_interval"] for r in v])
    stopped = med([r["series_stopped"] for r in v])
    worst = max(r["longest_after"] for r in v)
    n_bad = sum(r["longest_after"] > 1.1 * d for r in v)
    out[via] = (la / d, worst / d)
    runs_after = ", ".join(f"{r['longest_after']:.2f}" for r in v)
    ok = lambda x: "met" if x <= 1.1 * d else f"NOT met ({x / d:.2f} intervals)"
    print(f"| {label} | {la:.2f} ({la / d:.2f}) | {worst:.2f} ({worst / d:.2f}) | {n_bad} of {len(v)} | {lb:.2f} | "
          f"{over:.0f} of {series} (median of runs) | {stopped:.0f} | {runs_after} | {ok(la)} / {ok(worst)} |")
print("\n(a gap counts as within 1 interval up to 1.1 intervals: scrape timestamps jitter by a few ms)")
print("(all series share the replicas' scrape phases, so in a run either every series has the long gap or none)")
for r in rows:
    lag = "" if r["via"] == "fast_own_ts" else (f"the secondary's samples are {r['secondary_lag']} s later in the replica "
                                                f"interval than the primary's; ")
    print(f"run {r['run']} {r['via']}: {lag}one series' timestamps around the kill (s from it): {r['example_ts_around_kill']}")
print(f"took {elapsed} s; load at the end: {load.split('load average:')[-1].strip()}")
print("OUT " + json.dumps(out))
EOF
grep -v '^OUT ' "$TMP/summary.txt"
echo "last run: ${DOWNSTREAM_ERRORS:-}"
for via in fast equal; do
    read -r gap worst < <(grep '^OUT ' "$TMP/summary.txt" | sed 's/^OUT //' |
        python3 -c "import json,sys; print(*json.load(sys.stdin).get('$via', ['', '']))")
    interval=$PROMFED_FAST_INTERVAL
    [ "$via" = equal ] && interval=$SCRAPE_INTERVAL
    emit_result failover "$SERIES series, primary killed, promfed scraping every ${interval}s, downstream every ${SCRAPE_INTERVAL}s" \
        "longest gap downstream" "scrape intervals" "$gap" "" "" "<= 1.1" "$RUNS"
    # The median hides a run that missed: the worst run as its own row.
    emit_result failover "$SERIES series, primary killed, promfed scraping every ${interval}s, downstream every ${SCRAPE_INTERVAL}s, worst of $RUNS runs" \
        "longest gap downstream" "scrape intervals" "$worst" "" "" "<= 1.1" "$RUNS"
done
log "done"
