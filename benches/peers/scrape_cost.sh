#!/usr/bin/env bash
# Scrape + parse + merge cost: promfed and vmagent 1.79 scraping the same synthetic replica of
# SERIES series every INTERVAL seconds, on loopback. Prints a markdown table of CPU seconds per
# million samples scraped, VmRSS and VmHWM, and the ratio promfed / vmagent.
# Goal (issue 7): promfed's CPU per sample <= 1/5 of vmagent's.
#
#   benches/peers/scrape_cost.sh                        # 1M series, 10 s, 6 scrapes, 3 runs: ~15 min
#   SERIES=100000 INTERVAL=5 SCRAPES=4 RUNS=1 benches/peers/scrape_cost.sh
#   PROMFED=/path/to/promfed RESULTS=/tmp/results.jsonl benches/peers/scrape_cost.sh
#
# What runs, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds at most:
# - gen_target.py --replica a: SERIES series as a Prometheus replica's /federate answers them
#   (external label replica="a", a millisecond timestamp that is the request's time, values
#   alternating between two rounds), so every scrape brings SERIES new samples;
# - a remote-write sink (python, answers 204 to every POST without decoding it);
# - one at a time, RUNS times each:
#   (a) promfed: one group, its single replica the target's /federate (promfed's default path),
#       replica label dropped (default replica_labels), no remote_write;
#   (b) vmagent: the same /federate, honor_labels, -promscrape.maxScrapeSize raised to 1GB (the
#       default 16MB refuses the body), -remoteWrite.url the sink: vmagent cannot run without a
#       remote-write URL, so its CPU includes encoding + compressing every sample it sends;
#   (c) promfed with a remote_write destination to the same sink (default queue_config, queue
#       under a temporary data_dir): both do scrape + forward.
# Each tool runs until its first scrape is done (warm-up), then the window is SCRAPES good
# scrapes, from the moment the tool's own metrics show one scrape done to the moment they show
# SCRAPES more. Measured over the window: CPU seconds (utime+stime of /proc/PID/stat) and
# samples scraped from the tool's own metrics (promfed: good scrapes x promfed_scrape_samples,
# checked against promfed_merge_emitted_samples_total; vmagent: vm_promscrape_scraped_samples_sum);
# VmRSS and VmHWM at the end of the window. Medians over RUNS runs.
#
# Notes: the target answers uncompressed (a real Prometheus replica gzips /federate when asked,
# which both tools would then pay to gunzip); vmagent also adds its 5 automatic series per scrape.
set -euo pipefail

SERIES=${SERIES:-1000000}
INTERVAL=${INTERVAL:-10}
SCRAPES=${SCRAPES:-6}
RUNS=${RUNS:-3}
DEADLINE=${DEADLINE:-$((RUNS * 3 * (SCRAPES + 6) * INTERVAL + 300))}
HERE=$(cd "$(dirname "$0")" && pwd)
VMAGENT=${VMAGENT:-/usr/bin/vmagent}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
peers_init scrape-cost

install_peers "$VMAGENT:victoria-metrics"
build_promfed
# DEADLINE counts from here (a build may wait for the lock).
start_deadline "$DEADLINE"
T_START=$SECONDS

PT=$(free_port); PS=$(free_port)
log "target: $SERIES series as /federate on :$PT (takes a few seconds to build at 1M)"
spawn "$TMP/target.log" python3 "$HERE/gen_target.py" "$PT" "$SERIES" --replica a
wait_for 180 "target" curl -sf -o /dev/null "http://127.0.0.1:$PT/metrics"
log "$(cat "$TMP/target.log")"

cat >"$TMP/sink.py" <<'EOF'
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
EOF
spawn "$TMP/sink.log" python3 "$TMP/sink.py" "$PS"
SINK=http://127.0.0.1:$PS/api/v1/write

TIMEOUT=$((INTERVAL > 2 ? INTERVAL - 1 : 1))
DATA="$TMP/results.tsv" # tool, run, cpu s, samples, emitted, vmrss, vmhwm, seconds, errors, extra
: >"$DATA"

# --- the tools: start_X PORT DIR, sets $SPAWNED; good_X URL, samples_X URL ---
start_promfed() { # start_promfed PORT DIR WITH_REMOTE_WRITE
    mkdir -p "$2/data"
    cat >"$2/promfed.yml" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: ${TIMEOUT}s
server:
  listen_address: 127.0.0.1:$1
data_dir: $2/data
groups:
  - name: cost
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$PT"}
EOF
    if [ "$3" = 1 ]; then
        printf 'remote_write:\n  - {name: sink, url: "%s"}\n' "$SINK" >>"$2/promfed.yml"
    fi
    spawn "$2/promfed.log" env RUST_LOG=warn "$PROMFED" serve --config "$2/promfed.yml"
}
good_promfed() { echo $(($(metric_sum "$1" promfed_scrapes_total) - $(metric_sum "$1" promfed_scrape_errors_total))); }
errors_promfed() { metric_sum "$1" promfed_scrape_errors_total; }
samples_promfed() { # good scrapes x samples of the last good scrape (all scrapes are the same size)
    local m
    m=$(curl -sf "$1")
    awk '$1 ~ /^promfed_scrapes_total[{]/ { s += $NF } $1 ~ /^promfed_scrape_errors_total[{]/ { e += $NF }
         $1 ~ /^promfed_scrape_samples[{]/ { n += $NF } END { printf "%.0f\n", (s - e) * n }' <<<"$m"
}
emitted_promfed() { metric_sum "$1" promfed_merge_emitted_samples_total; }

start_vmagent() { # start_vmagent PORT DIR
    cat >"$2/vmagent.yml" <<EOF
global: {scrape_interval: ${INTERVAL}s, scrape_timeout: ${TIMEOUT}s}
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    metrics_path: /federate
    static_configs: [{targets: ['127.0.0.1:$PT']}]
EOF
    spawn "$2/vmagent.log" "$VMAGENT" -httpListenAddr="127.0.0.1:$1" -promscrape.config="$2/vmagent.yml" \
        -promscrape.maxScrapeSize=1GB -remoteWrite.url="$SINK" -remoteWrite.tmpDataPath="$2/vmq" -loggerLevel=WARN
}
good_vmagent() { metric_sum "$1" vm_promscrape_scraped_samples_count; }
errors_vmagent() { metric_sum "$1" vm_promscrape_scrapes_failed_total; }
samples_vmagent() { metric_sum "$1" vm_promscrape_scraped_samples_sum; }
emitted_vmagent() { metric_sum "$1" vmagent_remotewrite_rows_pushed_after_relabel_total; }

at_least() { [ "$("good_$1" "$2")" -ge "$3" ]; } # at_least TOOL URL N

measure() { # measure NAME TOOL RUN [START ARGS...]: one window of SCRAPES scrapes
    local name=$1 tool=$2 run=$3 port dir pid url g0 c0 s0 e0 t0 g1 c1 s1 e1 t1 err0 err1 extra=""
    shift 3
    port=$(free_port)
    dir="$TMP/$name-$run"
    mkdir -p "$dir"
    "start_$tool" "$port" "$dir" "$@"
    pid=$SPAWNED
    url="http://127.0.0.1:$port/metrics"
    wait_for 60 "$name to serve /metrics" curl -sf -o /dev/null "$url"
    # Warm-up: the first good scrape (it builds the series), then align on the next one.
    wait_for $((INTERVAL * 3 + 60)) "$name's first scrape" at_least "$tool" "$url" 1
    g0=$("good_$tool" "$url")
    wait_for $((INTERVAL * 3 + 60)) "$name's next scrape" at_least "$tool" "$url" $((g0 + 1))
    c0=$(cpu_seconds "$pid"); t0=$SECONDS
    g0=$("good_$tool" "$url"); s0=$("samples_$tool" "$url"); e0=$("emitted_$tool" "$url"); err0=$("errors_$tool" "$url")
    wait_for $(((SCRAPES + 3) * INTERVAL + 60)) "$name's $SCRAPES scrapes" at_least "$tool" "$url" $((g0 + SCRAPES))
    c1=$(cpu_seconds "$pid"); t1=$SECONDS
    g1=$("good_$tool" "$url"); s1=$("samples_$tool" "$url"); e1=$("emitted_$tool" "$url"); err1=$("errors_$tool" "$url")
    if [ "$tool" = promfed ] && [ "${1:-0}" = 1 ]; then
        extra="sent $(metric_sum "$url" promfed_remote_storage_samples_total), pending $(metric_sum "$url" promfed_remote_storage_samples_pending), failed $(metric_sum "$url" promfed_remote_storage_samples_failed_total)"
    elif [ "$tool" = vmagent ]; then
        extra="pending $(metric_sum "$url" vm_persistentqueue_bytes_pending) bytes, rows sent $(metric_sum "$url" vmagent_remotewrite_rows_pushed_after_relabel_total)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$run" "$(python3 -c "print(round($c1 - $c0, 2))")" \
        $((s1 - s0)) $((e1 - e0)) "$(rss_mb "$pid")" "$(hwm_mb "$pid")" $((t1 - t0)) $((err1 - err0)) "$extra" >>"$DATA"
    log "$name run $run: $((g1 - g0)) scrapes, $((s1 - s0)) samples, $(python3 -c "print(round($c1 - $c0, 2))") CPU s in $((t1 - t0)) s, VmRSS $(rss_mb "$pid") MB, VmHWM $(hwm_mb "$pid") MB; $extra"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for run in $(seq "$RUNS"); do
    measure promfed promfed "$run" 0
    measure vmagent vmagent "$run"
    measure promfed-rw promfed "$run" 1
done
ELAPSED=$((SECONDS - T_START))

python3 - "$DATA" "$SERIES" "$INTERVAL" "$SCRAPES" "$RUNS" "$ELAPSED" "$(uptime)" <<'EOF'
import statistics, sys
from collections import defaultdict
path, series, interval, scrapes, runs, elapsed, load = sys.argv[1:8]
rows = defaultdict(list)
for line in open(path):
    name, run, cpu, samples, emitted, rss, hwm, secs, errs, extra = line.rstrip("\n").split("\t")
    rows[name].append(dict(cpu=float(cpu), samples=int(samples), emitted=int(emitted), rss=int(rss),
                           hwm=int(hwm), secs=int(secs), errs=int(errs), extra=extra))
label = {
    "promfed": "promfed: scrape + parse + merge",
    "vmagent": "vmagent 1.79: scrape + parse + remote-write (encode, compress, send)",
    "promfed-rw": "promfed + remote_write: scrape + parse + merge + remote-write",
}
print(f"\nScrape cost: {int(series):,} series (/federate body, timestamps), every {interval} s, "
      f"windows of {scrapes} scrapes, medians of {runs} run(s)\n")
print("| tool | samples in window | CPU s | CPU s per 1M samples | VmRSS MB | VmHWM MB | scrape errors | runs: CPU s / 1M |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
med = {}
for name in ("promfed", "vmagent", "promfed-rw"):
    v = rows.get(name, [])
    if not v:
        continue
    per = [r["cpu"] / (r["samples"] / 1e6) if r["samples"] else float("nan") for r in v]
    m = lambda k: statistics.median(r[k] for r in v)
    med[name] = dict(per=statistics.median(per), rss=m("rss"), hwm=m("hwm"))
    print(f"| {label[name]} | {m('samples'):,.0f} | {m('cpu'):.2f} | {statistics.median(per):.3f} | "
          f"{m('rss'):.0f} | {m('hwm'):.0f} | {sum(r['errs'] for r in v)} | {', '.join(f'{x:.3f}' for x in per)} |")
print("\n| ratio promfed / vmagent, CPU per sample (medians) | ratio | goal | |")
print("|---|---:|---|---|")
for name in ("promfed", "promfed-rw"):
    if name in med and "vmagent" in med:
        r = med[name]["per"] / med["vmagent"]["per"]
        print(f"| {label[name]} | {r:.3f} (1/{1 / r:.1f}) | <= 0.2 | {'met' if r <= 0.2 else 'NOT met'} |")
for name, v in rows.items():
    if v[0]["extra"]:
        print(f"\n{name} at the end of each window: " + "; ".join(r["extra"] for r in v))
    print(f"{name}: merged/forwarded samples per window: " + ", ".join(str(r["emitted"]) for r in v))
print(f"\n(promfed samples = good scrapes x promfed_scrape_samples; vmagent's = vm_promscrape_scraped_samples_sum; "
      f"vmagent's CPU includes encoding and compressing what it sends; the sink's CPU is not counted)")
print(f"took {elapsed} s; load at the end: {load.split('load average:')[-1].strip()}")
EOF

emit_rows() {
    python3 - "$DATA" <<'EOF'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    name, run, cpu, samples, *_ = line.split("\t")
    rows[name].append((float(cpu) / (int(samples) / 1e6), int(line.split("\t")[5])))
for name, v in rows.items():
    print(name, statistics.median(x for x, _ in v), statistics.median(r for _, r in v))
EOF
}
declare -A PER RSS
while read -r name per rss; do PER[$name]=$per; RSS[$name]=$rss; done < <(emit_rows)
if [ -n "${PER[vmagent]:-}" ]; then
    emit_result scrape_cost "$SERIES series every ${INTERVAL}s, scrape+parse+merge vs vmagent scrape+remote-write" \
        "CPU per million samples" "CPU s" "${PER[promfed]:-}" "vmagent 1.79" "${PER[vmagent]}" "<= 0.2" "$RUNS"
    emit_result scrape_cost "$SERIES series every ${INTERVAL}s, both scrape+remote-write" \
        "CPU per million samples" "CPU s" "${PER[promfed-rw]:-}" "vmagent 1.79" "${PER[vmagent]}" "<= 0.2" "$RUNS"
    emit_result scrape_cost "$SERIES series every ${INTERVAL}s, scrape+merge (promfed) vs scrape+remote-write (vmagent)" \
        "VmRSS" "MB" "${RSS[promfed]:-}" "vmagent 1.79" "${RSS[vmagent]}" "" "$RUNS"
fi
log "done"
