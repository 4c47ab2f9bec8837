#!/usr/bin/env bash
# Remote-Write receive throughput, side by side on loopback: promfed (receiver only; then with
# ha_tracker), Prometheus 2.42 (--web.enable-remote-write-receiver) and VictoriaMetrics, each
# started alone and driven by the same load generator (benches/rw_load.rs) with the same
# payloads. Prints markdown tables: samples/s (wall), samples per CPU-second of the receiver
# ("per core"), peak RSS, and the ratios promfed/peer (medians over RUNS runs, default 1 here);
# with RESULTS set, appends the per-core rows to it (benches/peers/lib.sh). Goal (issues 4 and
# 7): >= 2x both peers per core.
#
#   benches/peers/remote_write_receive.sh                       # 20 s per receiver, ~2 min
#   RUNS=3 RUN_SECONDS=10 SERIES=100000 benches/peers/remote_write_receive.sh   # ~4 min
#   RUN_SECONDS=10 SERIES=50000 benches/peers/remote_write_receive.sh
#   RECEIVERS="promfed vm" benches/peers/remote_write_receive.sh
#
# The payload (see benches/rw_load.rs): SERIES series of ten labels (__name__, the external
# labels __replica__ and cluster, cpu, instance, job, mode, namespace, node, pod), one sample per
# series per round, SAMPLES_PER_REQUEST series per request (Prometheus' max_samples_per_send),
# CONCURRENCY keep-alive HTTP/1.1 connections, each owning a fixed share of the series (per
# series in order, as Prometheus' shards send). Two warm-up rounds create the series and are not
# measured; then RUN_SECONDS of load (or MAX_SAMPLES accepted samples, whichever comes first).
# CPU is utime+stime of the receiver's process over the window, and over the window plus
# SETTLE_SECONDS (what a receiver defers, e.g. VictoriaMetrics' background merges, counts too;
# the "per core" ratios use this one). The load generator runs on the same 2 cores: wall
# samples/s are limited by it and by the machine's other load, per-core numbers much less so.
#
# All on 127.0.0.1, each receiver with its own temporary storage, everything killed on exit
# (trap) and after DEADLINE seconds at most; the temporary directory is removed.
set -euo pipefail

SERIES=${SERIES:-10000}
SAMPLES_PER_REQUEST=${SAMPLES_PER_REQUEST:-500}
CONCURRENCY=${CONCURRENCY:-4}
RUN_SECONDS=${RUN_SECONDS:-20}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
MAX_SAMPLES=${MAX_SAMPLES:-500000000}
RECEIVERS=${RECEIVERS:-"promfed promfed-ha prometheus vm"}
DEADLINE=${DEADLINE:-300}
RUNS=${RUNS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
RW_LOAD=${RW_LOAD:-}

peers_init rw-receive
for r in $RECEIVERS; do
    case $r in
        promfed | promfed-ha) ;;
        prometheus) need_peer "$PROMETHEUS" prometheus ;;
        vm) need_peer "$VM" victoria-metrics ;;
        *) die "unknown receiver $r (promfed, promfed-ha, prometheus, vm)" ;;
    esac
done
build_promfed
build_rw_load
# DEADLINE counts from here (a build may wait for the lock).
start_deadline "$DEADLINE"

ROWS="$TMP/rows.tsv"
: >"$ROWS"

# Starts receiver $1; sets RX_PID, RX_URL (write endpoint) and RX_METRICS.
start_receiver() {
    local port
    port=$(free_port)
    mkdir -p "$TMP/$1"
    case $1 in
        promfed | promfed-ha)
            if [ "$1" = promfed ]; then
                receiver='remote_write_receiver: {}'
            else
                receiver='remote_write_receiver: {ha_tracker: {cluster_label: cluster, replica_label: __replica__}}'
            fi
            printf 'server:\n  listen_address: 127.0.0.1:%s\n%s\n' "$port" "$receiver" >"$TMP/$1/promfed.yml"
            start_promfed "$1/promfed"
            RX_METRICS="http://127.0.0.1:$port/metrics"
            ;;
        prometheus)
            echo 'global: {scrape_interval: 1h}' >"$TMP/$1/prometheus.yml"
            start_prometheus "$1/prometheus" "$port" --web.enable-remote-write-receiver
            RX_METRICS="http://127.0.0.1:$port/metrics"
            ;;
        vm)
            spawn "$TMP/$1/vm.log" "$VM" -httpListenAddr="127.0.0.1:$port" -storageDataPath="$TMP/$1/data" -loggerLevel=ERROR
            RX_METRICS="http://127.0.0.1:$port/metrics"
            ;;
    esac
    RX_PID=$LAST_PID
    RX_URL="http://127.0.0.1:$port/api/v1/write"
    wait_for 60 "$1 to serve its metrics" curl -sf -o /dev/null "$RX_METRICS" || { tail -20 "$TMP/$1"/*.log >&2; exit 1; }
}

# What the receiver itself counts as received (includes the warm-up rounds).
receiver_count() {
    case $1 in
        promfed | promfed-ha) metric_sum "$RX_METRICS" promfed_remote_write_samples_received_total ;;
        prometheus) metric_sum "$RX_METRICS" prometheus_tsdb_head_samples_appended_total 'type="float"' ;;
        vm) metric_sum "$RX_METRICS" vm_rows_inserted_total 'type="promremotewrite"' ;;
    esac
}

for run in $(seq "$RUNS"); do
    for r in $RECEIVERS; do
        log "$r: starting (run $run/$RUNS)"
        start_receiver "$r"
        log "$r: pid $RX_PID on $RX_URL; load for ${RUN_SECONDS}s (+${SETTLE_SECONDS}s settle)"
        out=$("$RW_LOAD" --url "$RX_URL" --pid "$RX_PID" --seconds "$RUN_SECONDS" --settle-seconds "$SETTLE_SECONDS" \
            --concurrency "$CONCURRENCY" --series "$SERIES" --samples-per-request "$SAMPLES_PER_REQUEST" \
            --max-samples "$MAX_SAMPLES" 2>"$TMP/$r.load.log") || { cat "$TMP/$r.load.log" >&2; exit 1; }
        cat "$TMP/$r.load.log" >&2
        echo "$out" >&2
        counted=$(receiver_count "$r")
        if [ "$r" = promfed-ha ]; then
            dropped=$(metric_sum "$RX_METRICS" promfed_remote_write_samples_dropped_total)
            log "$r: dropped by promfed (all reasons): $dropped"
        fi
        grep '^RESULT' <<<"$out" | sed "s/^RESULT/$r run=$run/; s/\$/ counted=$counted/" >>"$ROWS"
        stop "$RX_PID"
        rm -rf "${TMP:?}/$r"
    done
done

python3 - "$ROWS" "$SERIES" "$SAMPLES_PER_REQUEST" "$CONCURRENCY" "$RUN_SECONDS" "$SETTLE_SECONDS" <<'EOF'
import sys

path, series, spr, conc, secs, settle = sys.argv[1:]
NAMES = {
    "promfed": "promfed (receiver only)",
    "promfed-ha": "promfed (ha_tracker on)",
    "prometheus": "Prometheus 2.42",
    "vm": "VictoriaMetrics 1.79",
}
import statistics

runs = []  # (receiver, row) per run
for line in open(path):
    name, *kv = line.split()
    runs.append((name, dict(x.split("=", 1) for x in kv)))
rows = {name: row for name, row in runs}  # the last run's row, for the receivers present

def num(r, k):
    """The median over the runs of receiver r's field k."""
    try:
        return statistics.median(float(row[k]) for name, row in runs if name == r)
    except (KeyError, ValueError, statistics.StatisticsError):
        return float("nan")

print(f"\nRemote-Write receive: {series} series x 10 labels, {spr} samples per request, {conc} "
      f"connections, {secs} s per receiver after 2 warm-up rounds; CPU over the window (+{settle} s after)\n")
print("| receiver | run | samples accepted | samples/s (wall) | CPU s | CPU s incl. settle | samples per CPU-s | "
      "samples per CPU-s incl. settle | peak RSS MB | errors | receiver's own count | load generator CPU s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r, row in runs:
    print(f"| {NAMES.get(r, r)} | {row['run']} | {row['samples']} | {float(row['samples_per_sec']):,.0f} | {row['receiver_cpu_seconds']} | "
          f"{row['receiver_cpu_seconds_settled']} | {float(row['samples_per_cpu_second']):,.0f} | "
          f"{float(row['samples_per_cpu_second_settled']):,.0f} | {row['receiver_vmhwm_mb']} | {row['errors']} | "
          f"{row['counted']} | {row['loadgen_cpu_seconds']} |")
peers = [p for p in ("prometheus", "vm") if p in rows]
mine = [m for m in ("promfed", "promfed-ha") if m in rows]
if peers and mine:
    print(f"\n| ratio promfed / peer (medians of {len(runs) // len(rows)} runs) | per core (incl. settle) | per core (window) | wall samples/s | peak RSS | goal >= 2x per core |")
    print("|---|---:|---:|---:|---:|---|")
    for m in mine:
        for p in peers:
            core = num(m, "samples_per_cpu_second_settled") / num(p, "samples_per_cpu_second_settled")
            core_w = num(m, "samples_per_cpu_second") / num(p, "samples_per_cpu_second")
            wall = num(m, "samples_per_sec") / num(p, "samples_per_sec")
            rss = num(m, "receiver_vmhwm_mb") / num(p, "receiver_vmhwm_mb")
            print(f"| {NAMES[m]} / {NAMES[p]} | {core:.2f}x | {core_w:.2f}x | {wall:.2f}x | {rss:.2f}x | "
                  f"{'met' if core >= 2 else 'NOT met'} |")
EOF

# The shared results: samples per CPU-second (incl. settle) per receiver, medians over the runs.
per_core() { # per_core RECEIVER: the median of samples_per_cpu_second_settled over the runs
    local v
    mapfile -t v < <(awk -v r="$1" '$1 == r { for (i = 2; i <= NF; i++) if ($i ~ /^samples_per_cpu_second_settled=/) { sub(/.*=/, "", $i); print $i } }' "$ROWS")
    if [ "${#v[@]}" -eq 0 ]; then echo nan; else median "${v[@]}"; fi
}
declare -A RX_NAME=([promfed]="receiver only" [promfed-ha]="ha_tracker on" [prometheus]="Prometheus 2.42" [vm]="VictoriaMetrics 1.79")
for m in promfed promfed-ha; do
    [[ " $RECEIVERS " == *" $m "* ]] || continue
    for p in prometheus vm; do
        [[ " $RECEIVERS " == *" $p "* ]] || continue
        emit_result remote_write_receive "$((SERIES / 1000))k series, promfed ${RX_NAME[$m]}" \
            "samples per CPU-second (incl. ${SETTLE_SECONDS} s settle)" "samples/CPU-s" "$(per_core "$m")" \
            "${RX_NAME[$p]}" "$(per_core "$p")" ">= 2" "$RUNS" "${RUN_SECONDS} s of load, ${CONCURRENCY} connections"
    done
done
if [ -n "${RESULTS:-}" ]; then echo; results_table remote_write_receive; fi
log "done"
