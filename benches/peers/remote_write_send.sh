#!/usr/bin/env bash
# Remote-Write sender end to end, on loopback: promfed scrapes a synthetic target of SERIES
# series (benches/peers/gen_target.py, as /metrics) every SCRAPE_INTERVAL and remote-writes
# every merged sample to VictoriaMetrics; then Prometheus 2.42 scrapes the same target and
# remote-writes the same series to the same VictoriaMetrics. Prints markdown tables: samples/s
# sent, bytes per sample on the wire (promfed_remote_storage_bytes_total /
# promfed_remote_storage_samples_total, and Prometheus' prometheus_remote_storage_* twins).
#
#   benches/peers/remote_write_send.sh                  # 100k series, about 2.5 minutes
#   SERIES=20000 benches/peers/remote_write_send.sh
#
# promfed phases:
# 1. backlog: VictoriaMetrics is not started yet, so promfed's requests fail (connection
#    refused, retried with backoff up to 1s) and every merged sample waits in the durable queue,
#    until BACKLOG samples are queued;
# 2. drain: VictoriaMetrics is started; samples/s sent is measured from the moment the first
#    sample is accepted until the queue is back to less than one scrape's worth (the sender's
#    throughput with SHARDS shards, scrapes still going on), with promfed's CPU time over it;
# 3. steady: STEADY_SECONDS more; the rate sent equals the rate scraped.
# Prometheus (queue_config of 2.42's defaults, max_shards SHARDS like promfed) runs
# STEADY_SECONDS after its first sample was sent, once promfed is stopped.
#
# All on 127.0.0.1, everything killed on exit (trap) and after DEADLINE seconds at most; the
# temporary directory (queues, TSDBs) is removed.
set -euo pipefail

SERIES=${SERIES:-100000}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-2}
BACKLOG=${BACKLOG:-$((SERIES * 20))}
SHARDS=${SHARDS:-4}
CAPACITY=${CAPACITY:-2500} # samples read ahead per shard (Prometheus 2.42's default)
STEADY_SECONDS=${STEADY_SECONDS:-30}
DEADLINE=${DEADLINE:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

peers_init rw-send
need_peer "$PROMETHEUS" prometheus
need_peer "$VM" victoria-metrics
build_promfed
# DEADLINE counts from here (a build may wait for the lock).
start_deadline "$DEADLINE"

PT=$(free_port); PV=$(free_port); PF=$(free_port); PP=$(free_port)

start_target "$PT" "$SERIES"

mkdir -p "$TMP/data"
cat >"$TMP/promfed.yml" <<EOF
global:
  scrape_interval: ${SCRAPE_INTERVAL}s
  scrape_timeout: $((SCRAPE_INTERVAL - 1))s
server:
  listen_address: 127.0.0.1:$PF
data_dir: $TMP/data
groups:
  - name: bench
    path: /metrics
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$PT"}
remote_write:
  - name: vm
    url: http://127.0.0.1:$PV/api/v1/write
    queue_config: {capacity: $CAPACITY, min_shards: $SHARDS, max_shards: $SHARDS, max_samples_per_send: 500, max_backoff: 1s}
EOF
log "promfed on :$PF (VictoriaMetrics not started yet: the queue fills)"
start_promfed promfed
PROMFED_PID=$LAST_PID
PM="http://127.0.0.1:$PF/metrics"
wait_for 30 "promfed" curl -sf -o /dev/null "$PM"
pending() { metric_sum "$PM" promfed_remote_storage_samples_pending; }
sent() { metric_sum "$PM" promfed_remote_storage_samples_total; }
backlogged() { [ "$(pending)" -ge "$BACKLOG" ]; }
wait_for $((BACKLOG / SERIES * SCRAPE_INTERVAL * 3 + 30)) "a backlog of $BACKLOG samples" backlogged
log "backlog: $(pending) samples pending, $(metric_sum "$PM" promfed_remote_storage_queue_bytes) bytes in the queue"

VM_DIR="$TMP/vm"
spawn "$TMP/vm.log" "$VM" -httpListenAddr="127.0.0.1:$PV" -storageDataPath="$VM_DIR" -loggerLevel=ERROR
VM_PID=$LAST_PID
any_sent() { [ "$(sent)" -gt 0 ]; }
wait_for 30 "promfed's first accepted request" any_sent
t0=$(now); s0=$(sent); c0=$(cpu_seconds "$PROMFED_PID"); v0=$(cpu_seconds "$VM_PID"); b0=$(metric_sum "$PM" promfed_remote_storage_bytes_total)
log "VictoriaMetrics up; draining (from $s0 sent, $(pending) pending)"
drained() { [ "$(pending)" -lt "$SERIES" ]; }
wait_for 120 "the backlog to drain" drained
t1=$(now); s1=$(sent); c1=$(cpu_seconds "$PROMFED_PID"); v1=$(cpu_seconds "$VM_PID"); b1=$(metric_sum "$PM" promfed_remote_storage_bytes_total)
log "drained: $((s1 - s0)) samples in $(calc "round($t1 - $t0, 2)") s"
sleep "$STEADY_SECONDS"
t2=$(now); s2=$(sent); c2=$(cpu_seconds "$PROMFED_PID")
b2=$(metric_sum "$PM" promfed_remote_storage_bytes_total)
failed=$(metric_sum "$PM" promfed_remote_storage_samples_failed_total)
dropped=$(metric_sum "$PM" promfed_remote_storage_samples_dropped_total)
emitted=$(metric_sum "$PM" promfed_merge_emitted_samples_total)
promfed_hwm=$(hwm_mb "$PROMFED_PID")
stop "$PROMFED_PID"
log "promfed stopped: sent $s2 of $emitted emitted, failed $failed, dropped $dropped"

cat >"$TMP/prom.yml" <<EOF
global:
  scrape_interval: ${SCRAPE_INTERVAL}s
  scrape_timeout: $((SCRAPE_INTERVAL - 1))s
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$PT']}]
remote_write:
  - url: http://127.0.0.1:$PV/api/v1/write
    queue_config: {max_shards: $SHARDS}
EOF
log "prometheus on :$PP, remote-writing the same series to the same VictoriaMetrics"
start_prometheus prom "$PP"
PROM_PID=$LAST_PID
QM="http://127.0.0.1:$PP/metrics"
prom_sent() { metric_sum "$QM" prometheus_remote_storage_samples_total; }
prom_any() { [ "$(prom_sent)" -gt 0 ]; }
wait_for 60 "prometheus' first remote-write" prom_any
q0=$(now); qs0=$(prom_sent); qb0=$(metric_sum "$QM" prometheus_remote_storage_bytes_total)
qc0=$(cpu_seconds "$PROM_PID")
sleep "$STEADY_SECONDS"
q1=$(now); qs1=$(prom_sent); qb1=$(metric_sum "$QM" prometheus_remote_storage_bytes_total)
qc1=$(cpu_seconds "$PROM_PID")
qfailed=$(metric_sum "$QM" prometheus_remote_storage_samples_failed_total)
prom_hwm=$(hwm_mb "$PROM_PID")

python3 - <<EOF
series, interval, shards = $SERIES, $SCRAPE_INTERVAL, $SHARDS
drain = ($s1 - $s0, $t1 - $t0, $c1 - $c0, $b1 - $b0)
steady = ($s2 - $s1, $t2 - $t1, $c2 - $c1, $b2 - $b1)
prom = ($qs1 - $qs0, $q1 - $q0, $qc1 - $qc0, $qb1 - $qb0)
print(f"\nRemote-Write sender: {series} series scraped every {interval} s, sent to VictoriaMetrics 1.79 "
      f"on loopback, {shards} shards, capacity $CAPACITY, 500 samples per request\n")
print("| sender | phase | samples sent | seconds | samples/s sent | sender CPU s | samples per CPU-s | bytes/sample on the wire |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
def row(who, phase, v, note=""):
    n, secs, cpu, b = v
    per_cpu = f"{n / cpu:,.0f}" if cpu > 0 else "-"
    print(f"| {who} | {phase} | {n} | {secs:.1f} | {n / secs:,.0f} | {cpu:.2f} | {per_cpu}{note} | {b / n if n else float('nan'):.2f} |")
row("promfed", "drain of a $BACKLOG-sample backlog", drain)
row("promfed", "steady", steady)
row("Prometheus 2.42", "steady", prom)
total_b, total_s = $b2, $s2
print(f"\npromfed over the whole run: {total_s} samples sent of $emitted emitted, {total_b} bytes: "
      f"{total_b / total_s:.2f} bytes/sample; failed $failed, dropped $dropped; peak RSS ${promfed_hwm} MB")
print(f"Prometheus 2.42: {prom[3] / prom[0]:.2f} bytes/sample over its window, failed $qfailed; peak RSS ${prom_hwm} MB")
print(f"VictoriaMetrics used {$v1 - $v0:.2f} CPU-s during the drain ({($v1 - $v0) / drain[1]:.2f} cores)")
print(f"bytes/sample promfed / Prometheus: {(total_b / total_s) / (prom[3] / prom[0]):.2f}")
print("(sender CPU: the whole process, scrapes and merges included; Prometheus also runs its TSDB)")
EOF
log "done"
