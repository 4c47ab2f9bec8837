#!/usr/bin/env bash
# /federate of the same series: Prometheus 2.42 (one replica of an HA pair) against promfed
# (federating both replicas), on loopback, in one go (issue 7, item 2). For each size and each
# of text/protobuf x identity/gzip: time per request (1 client) and requests/s under 16
# concurrent clients (wrk). Prints a markdown table of medians over RUNS runs and the ratios
# promfed/Prometheus; appends one JSON line per row to $RESULTS when set (benches/peers/lib.sh).
# Goals: time per request <= 1/20 of Prometheus' (ratio <= 0.05), requests/s >= 20x.
#
#   benches/peers/federate.sh                          # 100k (RUNS=3) and 1M (RUNS_LARGE=1), ~16 min
#   SIZES=100000 RUNS=1 WRK_SECONDS=3 PROM_WRK_SECONDS=10 benches/peers/federate.sh   # ~2 minutes
#   PROMFED=target/release/promfed benches/peers/federate.sh      # no build
#
# What runs, per size, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds:
# - gen_target.py serving SERIES series (text, ~135-byte keys, ten names, six labels);
# - two Prometheus (Debian's 2.42) scraping it with external_labels replica=a / replica=b, each
#   with its own temporary TSDB; every INTERVAL s: 5, or 30 from 500k series on (a scrape of 1M
#   series costs Prometheus several CPU-seconds);
# - promfed (release) scraping both replicas' /federate every PROMFED_INTERVAL s: INTERVAL, or
#   60 from 500k series on (a /federate of 1M series costs Prometheus ~20 CPU-seconds and
#   ~20-30 s on this machine: at 30 s promfed's scrapes time out).
#
# Measured (selector {__name__=~".+"}; protobuf with the Accept header Prometheus sends,
# gzip with Accept-Encoding: gzip, the body left compressed):
# - promfed "first after a merge", variant after variant (one request first, so that promfed
#   renders that variant ahead after each merge, as for a global Prometheus scraping it): wait
#   until the status API shows a newly merged scrape, then one request (curl time_total): it
#   waits for the render ahead of it. promfed renders every variant asked in the last 10
#   minutes, the most recently asked first (a request for one not started yet renders it
#   itself): the variant being measured is the most recent one, so each first-after-merge
#   request waits for its own render only; the renders of the variants measured before it
#   still follow on the same 2 cores (pessimistic for the wrk runs);
# - promfed "cached": one more request on the same snapshot (retried when a merge overlapped);
# - requests/s: `wrk -c16 -t2 -dWRK_SECONDS --timeout WRK_SECONDS` (PROM_WRK_SECONDS for
#   Prometheus: 16 concurrent requests of 100k series take it ~8 s to answer). Merges keep
#   happening meanwhile: requests that land on a new snapshot wait for its one render (see
#   p99/max latency, merges and promfed's CPU in the note);
# - Prometheus replica a, after promfed is stopped (its scrapes would slow Prometheus down):
#   RUNS single requests per variant, then wrk as for promfed. A request wrk gives up on keeps
#   Prometheus busy (it renders to the end: at 1M series, 16 of them hold ~10 GB and minutes of
#   CPU); after each wrk run we wait up to DRAIN_SECONDS for the replica to go idle, and a
#   replica still busy is stopped and the next wrk runs against replica b. With both spent, the
#   remaining variants' Prometheus rates are not measured and say so (no ratio). At 1M, that
#   leaves text+gzip and protobuf+gzip, the variants scrapers ask for, measured.
set -euo pipefail

SIZES=${SIZES:-"100000 1000000"}
FORMATS=${FORMATS:-"text/gzip protobuf/gzip text/identity protobuf/identity"}
CLIENTS=${CLIENTS:-16}
WRK_SECONDS=${WRK_SECONDS:-}           # promfed; default 5, 10 from 500k series on
PROM_WRK_SECONDS=${PROM_WRK_SECONDS:-} # Prometheus; default 15 (16 requests of 100k take it ~8 s)
CURL_TIMEOUT=${CURL_TIMEOUT:-120}
DRAIN_SECONDS=${DRAIN_SECONDS:-30}
# Runs from 500k series on: one run at 1M takes ~8 minutes here (a /federate of 1M series costs
# Prometheus ~20 s, promfed merges every ~30 s); RUNS of them would break the ~30 minute budget
# of benches/peers/run.sh.
RUNS_LARGE=${RUNS_LARGE:-1}
DEADLINE=${DEADLINE:-1800}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

PROTOBUF_ACCEPT='application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'
QUERY='match%5B%5D=%7B__name__%3D~%22.%2B%22%7D' # match[]={__name__=~".+"}
PEER="Prometheus 2.42"

peers_init federate
need_peer "$PROMETHEUS" prometheus
need_peer /usr/bin/wrk wrk
build_promfed
start_deadline "$DEADLINE"
ROWS="$TMP/rows.tsv" # size, server, variant, measure, value, extra
: >"$ROWS"

headers() { # headers VARIANT: curl/wrk -H arguments, one per line
    case $1 in protobuf/*) echo "Accept: $PROTOBUF_ACCEPT" ;; esac
    case $1 in */gzip) echo "Accept-Encoding: gzip" ;; esac
}
hargs() { # hargs VARIANT: sets H=(-H ... -H ...)
    H=()
    local h
    while IFS= read -r h; do [ -n "$h" ] && H+=(-H "$h"); done < <(headers "$1")
}
label() { # label SERIES: 100k, 1M
    if [ "$1" -ge 1000000 ] && [ $(($1 % 1000000)) -eq 0 ]; then echo "$(($1 / 1000000))M"; else echo "$(($1 / 1000))k"; fi
}

# fetch PORT VARIANT: one request; prints "seconds bytes", or "nan 0" when it failed.
fetch() {
    hargs "$2"
    curl -sf --max-time "$CURL_TIMEOUT" "${H[@]}" -o /dev/null -w '%{time_total} %{size_download}\n' \
        "http://127.0.0.1:$1/federate?$QUERY" || echo "nan 0"
}

# load PORT VARIANT: wrk with CLIENTS connections for WRK; prints "rps completed errors p50 p99 max"
# (rps of 2xx responses; latencies in seconds, nan when none completed).
load() {
    hargs "$2"
    wrk -c"$CLIENTS" -t2 -d"${WRK}s" --timeout "${WRK}s" --latency "${H[@]}" "http://127.0.0.1:$1/federate?$QUERY" \
        >"$TMP/wrk.out" 2>&1 || true
    python3 - "$TMP/wrk.out" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def secs(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m[2]] if m else float("nan")
m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
done, dur = (int(m[1]), secs(m[2] + m[3])) if m else (0, float("nan"))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
bad = int(bad[1]) if bad else 0
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = bad + (sum(int(x) for x in sock.groups()) if sock else 0)
pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text)
lat = lambda v: f"{secs(v):.4g}s" if done else "-"
print(f"{(done - bad) / dur:.4g} {done - bad} {errors} {lat(pct.get('50', ''))} {lat(pct.get('99', ''))} {lat(mx[1] if mx else '')}")
EOF
}

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
values() { # values SIZE SERVER VARIANT MEASURE: the recorded values, one per line
    awk -F'\t' -v s="$1" -v w="$2" -v v="$3" -v m="$4" '$1 == s && $2 == w && $3 == v && $4 == m && $5 != "nan" { print $5 }' "$ROWS"
}
extras() { # extras SIZE SERVER VARIANT MEASURE: the extra column, joined
    awk -F'\t' -v s="$1" -v w="$2" -v v="$3" -v m="$4" '$1 == s && $2 == w && $3 == v && $4 == m { printf "%s%s", sep, $6; sep = "; " }' "$ROWS"
}
# rps_note SIZE VARIANT: a short note on the wrk runs (latency medians, merges, errors, what
# Prometheus completed).
rps_note() {
    python3 - "$ROWS" "$1" "$2" <<'EOF'
import statistics, sys
path, size, variant = sys.argv[1:]
runs = {"promfed": [], "prometheus": []}
for line in open(path):
    s, who, v, measure, _, extra = line.rstrip("\n").split("\t")
    if s == size and v == variant and measure == "rps":
        runs[who].append(dict(kv.split("=", 1) for kv in extra.split()) if "=" in extra else {})
def med(rows, k):
    xs = [float(r[k].rstrip("s")) for r in rows if r.get(k, "-") != "-"]
    return f"{statistics.median(xs):.3g} s" if xs else "-"
pf, pr = runs["promfed"], runs["prometheus"]
out = []
if pf:
    merges = sum(int(r["merges"]) for r in pf)
    errors = sum(int(r["errors"]) for r in pf)
    out.append(f"promfed p50 {med(pf, 'p50')}, p99 {med(pf, 'p99')}, {merges} merges during its runs, {errors} errors")
done = [r["done"] for r in pr if r]
if done:
    out.append("Prometheus completed " + ", ".join(done) + " requests per run")
if any(not r for r in pr):
    out.append("Prometheus not measured for this variant: both replicas were spent by the 16-client runs before (it keeps rendering abandoned requests)")
print("; ".join(out))
EOF
}
med() { # med SIZE SERVER VARIANT MEASURE
    local v
    mapfile -t v < <(values "$@")
    if [ "${#v[@]}" -eq 0 ]; then echo nan; else median "${v[@]}"; fi
}

# Samples of the synthetic job stored by the Prometheus at port $1 (0 before the first scrape).
prom_samples() {
    curl -sf "http://127.0.0.1:$1/api/v1/query" --data-urlencode 'query=scrape_samples_scraped{job="synthetic"}' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
has_samples() { [ "$(prom_samples "$1")" -ge "$2" ]; }
# Series promfed serves, and a number that changes with every merged scrape.
promfed_state() {
    curl -sf "http://127.0.0.1:$PF/api/v1/status/groups" | python3 -c '
import json, sys
g = json.load(sys.stdin)["data"][0]
print(g["series"], sum(r.get("last_scrape_ms") or 0 for r in g["replicas"]))'
}
merged_since() { [ "$(promfed_state | cut -d" " -f2)" != "$1" ]; }
promfed_full() { [ "$(promfed_state | cut -d" " -f1)" -ge "$1" ]; }

bench_size() {
    local series=$1 size interval run variant r rep ok before runs=$RUNS
    size=$(label "$series")
    [ "$series" -lt 500000 ] || runs=$RUNS_LARGE
    RUNS_BY_SIZE[$size]=$runs
    interval=${INTERVAL:-$([ "$series" -lt 500000 ] && echo 5 || echo 30)}
    local pinterval=${PROMFED_INTERVAL:-$([ "$series" -lt 500000 ] && echo "$interval" || echo 60)}
    local wrk_promfed=${WRK_SECONDS:-$([ "$series" -lt 500000 ] && echo 5 || echo 10)}
    local wrk_prom=${PROM_WRK_SECONDS:-$([ "$series" -lt 500000 ] && echo 15 || echo 10)}
    WRK_BY_SIZE[$size]="$wrk_promfed s; Prometheus $wrk_prom s"
    local started=$SECONDS
    PT=$(free_port) PA=$(free_port) PB=$(free_port) PF=$(free_port)
    start_target "$PT" "$series"
    local target_pid=$LAST_PID
    local -A prom_pid prom_port=([a]=$PA [b]=$PB)
    for r in a b; do
        cat >"$TMP/prom-$r.yml" <<EOF
global:
  scrape_interval: ${interval}s
  scrape_timeout: ${interval}s
  external_labels: {replica: $r}
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$PT']}]
EOF
        log "$size: prometheus replica=$r on :${prom_port[$r]}, scraping every ${interval}s"
        start_prometheus "prom-$r" "${prom_port[$r]}"
        prom_pid[$r]=$LAST_PID
    done
    wait_for $((interval * 4 + 120)) "prometheus a to store a scrape" has_samples "$PA" "$series"
    wait_for $((interval * 2 + 60)) "prometheus b to store a scrape" has_samples "$PB" "$series"
    cat >"$TMP/promfed.yml" <<EOF
global:
  scrape_interval: ${pinterval}s
  scrape_timeout: ${pinterval}s
server:
  listen_address: 127.0.0.1:$PF
groups:
  - name: bench
    match: ['{__name__=~".+"}']
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$PA"}
      - {name: b, role: secondary, address: "127.0.0.1:$PB"}
EOF
    log "$size: promfed on :$PF, scraping both every ${pinterval}s"
    start_promfed promfed
    local promfed_pid=$LAST_PID
    wait_for $((pinterval * 3 + 60)) "promfed to merge both replicas" promfed_full "$series" ||
        { tail -20 "$TMP/promfed.log" >&2; exit 1; }
    log "$size: ready after $((SECONDS - started))s; promfed serves $(promfed_state | cut -d' ' -f1) series"

    local state try
    for variant in $FORMATS; do
        # Once before measuring: from then on promfed renders this variant ahead after each
        # merge, as it does for a global Prometheus that scrapes it regularly.
        fetch "$PF" "$variant" >/dev/null
        for run in $(seq "$runs"); do
            before=$(promfed_state | cut -d" " -f2)
            wait_for $((pinterval + 10)) "a new merge" merged_since "$before" || continue
            read -r t bytes < <(fetch "$PF" "$variant")
            record "$size" promfed "$variant" first "$t" "$bytes bytes"
            # Cached: a request that no merge overlapped (the same snapshot's body); at most 3 tries.
            for try in 1 2 3; do
                state=$(promfed_state | cut -d" " -f2)
                read -r t bytes < <(fetch "$PF" "$variant")
                [ "$(promfed_state | cut -d" " -f2)" = "$state" ] && break
                t=nan
            done
            record "$size" promfed "$variant" cached "$t" "$bytes bytes"
        done
        log "$size: promfed $variant: $runs first-after-merge and cached requests done"
    done
    local rss0 rss1 m0 m1 c0 cpu
    rss0=$(rss_mb "$promfed_pid")
    for run in $(seq "$runs"); do
        for variant in $FORMATS; do
            # Merges during the run and promfed's CPU: with the cache working, about one render
            # per merge and variant, not one per request.
            m0=$(metric_sum "http://127.0.0.1:$PF/metrics" promfed_merge_duration_seconds_count)
            c0=$(cpu_seconds "$promfed_pid")
            WRK=$wrk_promfed
            read -r rps n err p50 p99 max < <(load "$PF" "$variant")
            m1=$(metric_sum "http://127.0.0.1:$PF/metrics" promfed_merge_duration_seconds_count)
            cpu=$(calc "round($(cpu_seconds "$promfed_pid") - $c0, 2)")
            record "$size" promfed "$variant" rps "$rps" "done=$n errors=$err p50=$p50 p99=$p99 max=$max merges=$((m1 - m0)) cpu=$cpu"
            log "$size: promfed wrk $variant: $rps req/s ($n done, $err errors, p50 $p50 p99 $p99 max $max; $((m1 - m0)) merges meanwhile, promfed ${cpu} CPU-s)"
        done
    done
    rss1=$(rss_mb "$promfed_pid")
    PROMFED_MEM[$size]="RSS ${rss0} MB before the wrk runs, ${rss1} MB after, peak $(hwm_mb "$promfed_pid") MB"
    log "$size: stopping promfed (${PROMFED_MEM[$size]}); measuring prometheus replica a"
    stop "$promfed_pid"

    for run in $(seq "$runs"); do
        for variant in $FORMATS; do
            read -r t bytes < <(fetch "$PA" "$variant")
            record "$size" prometheus "$variant" single "$t" "$bytes bytes"
        done
        log "$size: prometheus run $run/$runs single requests done"
    done
    local spares=(a b)
    for run in $(seq "$runs"); do
        for variant in $FORMATS; do
            if [ "${#spares[@]}" -eq 0 ]; then
                record "$size" prometheus "$variant" rps nan "spent"
                continue
            fi
            rep=${spares[0]}
            WRK=$wrk_prom
            read -r rps n err p50 p99 max < <(load "${prom_port[$rep]}" "$variant")
            record "$size" prometheus "$variant" rps "$rps" "done=$n errors=$err p50=$p50 p99=$p99 max=$max"
            log "$size: prometheus $rep wrk $variant: $rps req/s ($n done, $err errors); waiting up to ${DRAIN_SECONDS}s for it to go idle (RSS $(rss_mb "${prom_pid[$rep]}") MB)"
            ok=1
            wait_idle "${prom_pid[$rep]}" "$DRAIN_SECONDS" || ok=0
            if [ "$ok" = 0 ]; then
                log "$size: prometheus $rep still busy with requests wrk gave up on (RSS $(rss_mb "${prom_pid[$rep]}") MB): stopping it"
                stop_within "${prom_pid[$rep]}" 10
                spares=("${spares[@]:1}")
            fi
        done
    done
    for r in a b; do stop_within "${prom_pid[$r]}" 10; done
    stop "$target_pid"
    rm -rf "$TMP/prom-a" "$TMP/prom-b"
    log "$size: done in $((SECONDS - started))s"
}

declare -A PROMFED_MEM WRK_BY_SIZE RUNS_BY_SIZE
for series in $SIZES; do bench_size "$series"; done

# Rows: medians over the runs, ratios promfed/Prometheus.
for series in $SIZES; do
    size=$(label "$series")
    for variant in $FORMATS; do
        v=${variant/\// }
        peer_t=$(med "$size" prometheus "$variant" single)
        for kind in first cached; do
            what="time per request, first after a merge"
            [ "$kind" = cached ] && what="time per request, cached"
            emit_result federate "$size $v, 1 client" "$what" s "$(med "$size" promfed "$variant" "$kind")" "$PEER" "$peer_t" "<= 0.05" "${RUNS_BY_SIZE[$size]}" \
                "$(extras "$size" promfed "$variant" "$kind" | cut -d';' -f1)"
        done
        emit_result federate "$size $v, $CLIENTS clients" "requests/s (wrk ${WRK_BY_SIZE[$size]})" "req/s" \
            "$(med "$size" promfed "$variant" rps)" "$PEER" "$(med "$size" prometheus "$variant" rps)" ">= 20" "${RUNS_BY_SIZE[$size]}" \
            "$(rps_note "$size" "$variant")"
    done
done

echo
echo "/federate, promfed (federating two replicas) against ${PEER} (one replica), sizes: $SIZES; medians of $RUNS runs ($RUNS_LARGE from 500k series on)"
echo
results_table federate
echo
for size in "${!PROMFED_MEM[@]}"; do echo "promfed at $size: ${PROMFED_MEM[$size]}"; done
log "done"
