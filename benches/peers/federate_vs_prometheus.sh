#!/usr/bin/env bash
# /federate of the same series: Prometheus 2.42 (one replica of an HA pair) against promfed
# (federating both replicas), on loopback, in one go. Prints a markdown table of times and the
# ratio promfed/Prometheus. Goal (issue): promfed <= 1/20 of Prometheus for 100k series.
#
#   benches/peers/federate_vs_prometheus.sh            # 100k series, 10 requests per case
#   SERIES=20000 N=5 benches/peers/federate_vs_prometheus.sh
#
# What runs, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds at most:
# - gen_target.py: a synthetic target serving SERIES series (text format);
# - two Prometheus (/usr/bin/prometheus, Debian's 2.42) scraping it every 5s with
#   external_labels replica=a and replica=b, each with its own temporary storage;
# - promfed (release binary; built first if missing) scraping both replicas' /federate every 5s.
#
# Measured with curl's time_total (request sent to last byte received), full selector
# {__name__=~".+"}, text, and with Accept-Encoding: gzip (body left compressed):
# - promfed "back to back": N requests in a row; whichever snapshot is current serves them, so
#   most are cached bodies, and a request landing just after a merge renders (shown by max);
# - promfed "first after merge": wait until the status API shows a new scrape was merged, then
#   one request (renders the body of the new snapshot) and one more (cached);
# - Prometheus replica a: N requests in a row, measured after promfed is stopped so that
#   promfed's own scrapes of it do not slow it down (the ratio is, if anything, kind to
#   Prometheus).
set -euo pipefail

SERIES=${SERIES:-100000}
N=${N:-10}
CYCLES=${CYCLES:-4}
DEADLINE=${DEADLINE:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

peers_init peers
need_peer "$PROMETHEUS" prometheus
build_promfed
start_deadline "$DEADLINE"

PT=$(free_port); PA=$(free_port); PB=$(free_port); PF=$(free_port)

start_target "$PT" "$SERIES"

for r in a b; do
    port=$PA; [ "$r" = b ] && port=$PB
    cat >"$TMP/prom-$r.yml" <<EOF
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  external_labels: {replica: $r}
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$PT']}]
EOF
    log "prometheus replica=$r on :$port"
    start_prometheus "prom-$r" "$port"
done

# Samples of the synthetic job in Prometheus at port $1 (0 until the first scrape is stored).
prom_samples() {
    curl -sf "http://127.0.0.1:$1/api/v1/query" --data-urlencode 'query=scrape_samples_scraped{job="synthetic"}' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
has_samples() { [ "$(prom_samples "$1")" -ge "$SERIES" ]; }
wait_for 90 "prometheus a to store a scrape" has_samples "$PA"
wait_for 30 "prometheus b to store a scrape" has_samples "$PB"

cat >"$TMP/promfed.yml" <<EOF
global:
  scrape_interval: 5s
  scrape_timeout: 4s
server:
  listen_address: 127.0.0.1:$PF
groups:
  - name: bench
    match: ['{__name__=~".+"}']
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$PA"}
      - {name: b, role: secondary, address: "127.0.0.1:$PB"}
EOF
log "promfed on :$PF"
start_promfed promfed
PROMFED_PID=$LAST_PID

# Series promfed serves, and a number that changes with every merged scrape.
promfed_state() {
    curl -sf "http://127.0.0.1:$PF/api/v1/status/groups" | python3 -c '
import json, sys
g = json.load(sys.stdin)["data"][0]
print(g["series"], sum(r.get("last_scrape_ms") or 0 for r in g["replicas"]))'
}
merged_since() { [ "$(promfed_state | cut -d" " -f2)" != "$1" ]; }
promfed_full() { [ "$(promfed_state | cut -d" " -f1)" -ge "$SERIES" ]; }
wait_for 60 "promfed to merge both replicas" promfed_full

QUERY='match%5B%5D=%7B__name__%3D~%22.%2B%22%7D' # match[]={__name__=~".+"}
fetch() { # fetch PORT ENCODING -> "seconds bytes"
    local enc=()
    [ "$2" = gzip ] && enc=(-H 'Accept-Encoding: gzip')
    curl -sf "${enc[@]}" -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$1/federate?$QUERY"
}
ROWS="$TMP/rows.tsv" # case, encoding, seconds, bytes
record() { # record CASE ENCODING PORT
    echo "$1	$2	$(fetch "$3" "$2" | tr ' ' '\t')" >>"$ROWS"
}
: >"$ROWS"

served=$(curl -sf "http://127.0.0.1:$PF/federate?$QUERY" | grep -vc '^#' || true)
log "promfed serves $served series; measuring"
for enc in identity gzip; do
    for _ in $(seq "$N"); do record "promfed back to back" "$enc" "$PF"; done
done
for enc in identity gzip; do
    for _ in $(seq "$CYCLES"); do
        before=$(promfed_state | cut -d" " -f2)
        wait_for 15 "a new merge" merged_since "$before"
        record "promfed first after merge" "$enc" "$PF"
        record "promfed cached" "$enc" "$PF"
    done
done

# promfed's memory holding the merged series of both replicas (and its cached bodies).
mem=$(grep -E '^(VmRSS|VmHWM):' "/proc/$PROMFED_PID/status" | awk '{printf "%s %.0f MB  ", $1, $2/1024}')
log "promfed memory: $mem"
echo "$mem" >"$TMP/promfed-mem.txt"
log "stopping promfed; measuring prometheus replica a"
stop "$PROMFED_PID"
prom_served=$(curl -sf "http://127.0.0.1:$PA/federate?$QUERY" | grep -vc '^#' || true)
log "prometheus a serves $prom_served series"
for enc in identity gzip; do
    for _ in $(seq "$N"); do record "prometheus 2.42 (replica a)" "$enc" "$PA"; done
done

python3 - "$ROWS" "$SERIES" "$served" "$prom_served" "$(cat "$TMP/promfed-mem.txt")" <<'EOF'
import statistics, sys
from collections import defaultdict

path, series, served, prom_served, mem = sys.argv[1], *sys.argv[2:]
rows = defaultdict(list)
for line in open(path):
    case, enc, secs, size = line.rstrip("\n").split("\t")
    rows[(case, enc)].append((float(secs), int(size)))
print(f"\n/federate of {series} synthetic series (promfed serves {served}, Prometheus {prom_served}); "
      "curl time_total, seconds\n")
print("| server | encoding | n | median | min | max | body bytes |")
print("|---|---|---:|---:|---:|---:|---:|")
med = {}
for (case, enc), v in rows.items():
    t = [s for s, _ in v]
    med[(case, enc)] = statistics.median(t)
    print(f"| {case} | {enc} | {len(t)} | {statistics.median(t):.4f} | {min(t):.4f} | {max(t):.4f} | {v[-1][1]} |")
print("\n| ratio promfed / Prometheus (medians) | identity | gzip | goal |")
print("|---|---:|---:|---|")
for case in ["promfed back to back", "promfed first after merge", "promfed cached"]:
    r = [med[(case, e)] / med[("prometheus 2.42 (replica a)", e)] for e in ("identity", "gzip")]
    ok = ["met" if x <= 0.05 else "NOT met" for x in r]
    print(f"| {case} | {r[0]:.3f} (1/{1 / r[0]:.0f}) | {r[1]:.3f} (1/{1 / r[1]:.0f}) | <= 0.05: {ok[0]}, {ok[1]} |")
print(f"\npromfed process at the end of its measurements: {mem.strip()}")
EOF
log "done"
