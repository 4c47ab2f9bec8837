#!/usr/bin/env bash
# Memory of the real promfed process holding SERIES merged series from two replicas, on
# loopback. Prints a markdown table of VmRSS and VmHWM in steady state, without and with a
# global scraper, and the same with MALLOC_ARENA_MAX=2 as an experiment.
# Goal (issue 7): VmRSS <= 250 MB at 1M series (the headline is the default allocator settings).
#
#   benches/peers/memory.sh                          # 1M series, 10 s, 4 rounds, 3 runs: ~10 min
#   SERIES=100000 INTERVAL=5 RUNS=1 benches/peers/memory.sh
#   ARENA_EXPERIMENT=0 benches/peers/memory.sh       # only the default settings
#
# What runs, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds at most:
# - two gen_target.py processes, replica "a" and "b", each serving the same SERIES series as a
#   Prometheus replica's /federate answers them (external label replica="a"/"b", which promfed
#   drops by default; a millisecond timestamp that is the request's time; values alternating
#   between two rounds);
# - per run, promfed (one group: a primary, b secondary) scraping both every INTERVAL s.
# Phases of a run, VmRSS and VmHWM (/proc/PID/status) read at the end of each:
#   1. steady: ROUNDS good scrapes of each replica, SERIES series merged;
#   2. + gzip /federate: one request as a global Prometheus makes it (full selector,
#      Accept-Encoding: gzip, body discarded), then two more scrapes of each replica (promfed
#      renders the gzip body ahead after every merge for 10 minutes after such a request);
#   3. + plain /federate (information only, not the goal): one request without gzip, then two
#      more scrapes of each: the plain text body is cached as well.
# A breakdown of the resident memory from /proc/PID/smaps is printed for the last run: the main
# heap, glibc's per-thread arenas (64 MiB reservations), other anonymous mappings (large
# allocations malloc mmaps on its own, e.g. scrape bodies) and the rest (binary, stacks).
set -euo pipefail

SERIES=${SERIES:-1000000}
INTERVAL=${INTERVAL:-10}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}
ARENA_EXPERIMENT=${ARENA_EXPERIMENT:-1}
DEADLINE=${DEADLINE:-$((RUNS * (ARENA_EXPERIMENT + 1) * (ROUNDS + 7) * INTERVAL + 600))}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/promfed-memory.XXXXXX)
# shellcheck source=benches/peers/lib.sh
. "$HERE/lib.sh"

build_promfed
lib_init "$DEADLINE"
T_START=$SECONDS

PA=$(free_port); PB=$(free_port)
log "targets: replicas a (:$PA) and b (:$PB), $SERIES series each (a few seconds to build at 1M)"
spawn "$TMP/target-a.log" python3 "$HERE/gen_target.py" "$PA" "$SERIES" --replica a
spawn "$TMP/target-b.log" python3 "$HERE/gen_target.py" "$PB" "$SERIES" --replica b
wait_for 240 "target a" curl -sf -o /dev/null "http://127.0.0.1:$PA/metrics"
wait_for 240 "target b" curl -sf -o /dev/null "http://127.0.0.1:$PB/metrics"

TIMEOUT=$((INTERVAL > 2 ? INTERVAL - 1 : 1))
QUERY='match%5B%5D=%7B__name__%3D~%22.%2B%22%7D' # match[]={__name__=~".+"}
DATA="$TMP/results.tsv" # variant, run, phase, vmrss, vmhwm
: >"$DATA"

good() { # good METRICS_URL REPLICA: good scrapes of that replica
    local m
    m=$(curl -sf "$1")
    awk -v r="replica=\"$2\"" '$1 ~ /^promfed_scrapes_total[{]/ && index($1, r) { s += $NF }
        $1 ~ /^promfed_scrape_errors_total[{]/ && index($1, r) { e += $NF } END { printf "%.0f\n", s - e }' <<<"$m"
}
both_at_least() { [ "$(good "$1" a)" -ge "$2" ] && [ "$(good "$1" b)" -ge "$2" ]; }
all_series() { [ "$(metric_sum "$1" promfed_group_series)" -ge "$SERIES" ]; }

# Resident memory by kind, from /proc/PID/smaps (MB): heap, arenas, other anonymous, rest.
breakdown() {
    python3 - "/proc/$1/smaps" <<'EOF'
import re, sys
maps = []  # (start, end, perms, path, rss_kb)
cur = None
for line in open(sys.argv[1]):
    m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
    if m:
        cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), 0]
        maps.append(cur)
    elif line.startswith("Rss:"):
        cur[4] = int(line.split()[1])
kinds = {"main heap ([heap])": 0, "thread arenas": 0, "other anonymous (large mmaps)": 0, "rest": 0}
arenas = 0
for i, (start, end, perms, path, rss) in enumerate(maps):
    if path == "[heap]":
        kinds["main heap ([heap])"] += rss
    elif path == "" and perms.startswith("rw"):
        # glibc reserves each thread arena as 64 MiB, read-write up to its top and PROT_NONE after.
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        size = end - start
        if (nxt and nxt[0] == end and nxt[2].startswith("---") and nxt[3] == ""
                and (size + nxt[1] - nxt[0]) % (64 << 20) == 0) or size == (64 << 20):
            kinds["thread arenas"] += rss
            arenas += 1
        else:
            kinds["other anonymous (large mmaps)"] += rss
    else:
        kinds["rest"] += rss
print("; ".join(f"{k} {v / 1024:.0f} MB" for k, v in kinds.items()) + f"; {arenas} arenas")
EOF
}

run_once() { # run_once VARIANT RUN [ENV...]
    local variant=$1 run=$2 port dir pid url g
    shift 2
    port=$(free_port)
    dir="$TMP/$variant-$run"
    mkdir -p "$dir/data"
    cat >"$dir/promfed.yml" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: ${TIMEOUT}s
server:
  listen_address: 127.0.0.1:$port
data_dir: $dir/data
groups:
  - name: memory
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:$PA"}
      - {name: b, role: secondary, address: "127.0.0.1:$PB"}
EOF
    spawn "$dir/promfed.log" env RUST_LOG=warn "$@" "$PROMFED" serve --config "$dir/promfed.yml"
    pid=$SPAWNED
    url="http://127.0.0.1:$port/metrics"
    wait_for 60 "promfed to serve /metrics" curl -sf -o /dev/null "$url"
    wait_for $(((ROUNDS + 3) * INTERVAL + 60)) "$ROUNDS good scrapes of each replica" both_at_least "$url" "$ROUNDS"
    wait_for 60 "all $SERIES series merged" all_series "$url"
    printf '%s\t%s\tsteady\t%s\t%s\n' "$variant" "$run" "$(rss_mb "$pid")" "$(hwm_mb "$pid")" >>"$DATA"
    log "$variant run $run: steady after $ROUNDS rounds: VmRSS $(rss_mb "$pid") MB, VmHWM $(hwm_mb "$pid") MB; $(breakdown "$pid")"

    curl -sf -H 'Accept-Encoding: gzip' -o /dev/null "http://127.0.0.1:$port/federate?$QUERY"
    g=$(good "$url" a)
    wait_for $((4 * INTERVAL + 60)) "two more scrapes" both_at_least "$url" $((g + 2))
    printf '%s\t%s\t+ gzip /federate\t%s\t%s\n' "$variant" "$run" "$(rss_mb "$pid")" "$(hwm_mb "$pid")" >>"$DATA"
    log "$variant run $run: + gzip /federate: VmRSS $(rss_mb "$pid") MB, VmHWM $(hwm_mb "$pid") MB; $(breakdown "$pid")"
    [ "$variant" != default ] || BREAKDOWN_GZIP="$(breakdown "$pid")"

    curl -sf -o /dev/null "http://127.0.0.1:$port/federate?$QUERY"
    g=$(good "$url" a)
    wait_for $((4 * INTERVAL + 60)) "two more scrapes" both_at_least "$url" $((g + 2))
    printf '%s\t%s\t+ plain /federate too\t%s\t%s\n' "$variant" "$run" "$(rss_mb "$pid")" "$(hwm_mb "$pid")" >>"$DATA"
    log "$variant run $run: + plain /federate: VmRSS $(rss_mb "$pid") MB, VmHWM $(hwm_mb "$pid") MB; $(breakdown "$pid"); threads $(awk '/^Threads:/ {print $2}' "/proc/$pid/status")"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

BREAKDOWN_GZIP=""
for run in $(seq "$RUNS"); do
    run_once default "$run"
    if [ "$ARENA_EXPERIMENT" = 1 ]; then run_once MALLOC_ARENA_MAX=2 "$run" MALLOC_ARENA_MAX=2; fi
done
ELAPSED=$((SECONDS - T_START))

python3 - "$DATA" "$SERIES" "$INTERVAL" "$ROUNDS" "$RUNS" "$ELAPSED" "$(uptime)" "$BREAKDOWN_GZIP" <<'EOF'
import statistics, sys
from collections import defaultdict
path, series, interval, rounds, runs, elapsed, load, breakdown = sys.argv[1:9]
rows = defaultdict(list)
for line in open(path):
    variant, run, phase, rss, hwm = line.rstrip("\n").split("\t")
    rows[(variant, phase)].append((int(rss), int(hwm)))
print(f"\npromfed holding {int(series):,} series merged from two replicas scraped every {interval} s "
      f"(steady = after {rounds} rounds); medians of {runs} run(s)\n")
print("| allocator settings | phase | VmRSS MB | VmHWM MB | runs: VmRSS | goal VmRSS <= 250 MB |")
print("|---|---|---:|---:|---|---|")
for (variant, phase), v in rows.items():
    rss = statistics.median(r for r, _ in v)
    hwm = statistics.median(h for _, h in v)
    goal = "information" if "plain" in phase else ("met" if rss <= 250 else f"NOT met ({rss / 250:.2f}x)")
    print(f"| {variant} | {phase} | {rss:.0f} | {hwm:.0f} | {', '.join(str(r) for r, _ in v)} | {goal} |")
print(f"\nresident memory by kind, last run, + gzip /federate: {breakdown}")
print("(cargo bench --no-default-features --bench memory, single-threaded, docs/benchmarks.md: "
      "1M series, group + snapshot + cached gzip body 281 MB)")
print(f"took {elapsed} s; load at the end: {load.split('load average:')[-1].strip()}")
EOF

for phase in steady "+ gzip /federate"; do
    rss=$(median $(awk -F'\t' -v p="$phase" '$1 == "default" && $3 == p { print $4 }' "$DATA"))
    emit_result memory "$SERIES series from two replicas, $phase" "VmRSS" "MB" "$rss" "" "" "<= 250 MB" "$RUNS"
done
log "done"
