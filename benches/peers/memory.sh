#!/usr/bin/env bash
# Memory of the real promfed process holding SERIES merged series from two replicas, on
# loopback. Prints a markdown table of VmRSS (lowest, median and highest over two scrape
# intervals) and VmHWM in steady state, without and with a global scraper, and the same with
# MALLOC_ARENA_MAX=2 as an experiment.
# Goal (issue 7): VmRSS <= 250 MB at 1M series (the headline is the default allocator settings).
#
#   benches/peers/memory.sh                          # 1M series, 10 s, 3 runs + 1 experiment: ~10 min
#   SERIES=100000 INTERVAL=5 RUNS=1 benches/peers/memory.sh
#   ARENA_RUNS=0 benches/peers/memory.sh             # only the default settings (or ARENA_EXPERIMENT=0)
#
# What runs, all on 127.0.0.1, all killed on exit (trap) and after DEADLINE seconds at most:
# - two gen_target.py processes, replica "a" and "b", each serving the same SERIES series as a
#   Prometheus replica's /federate answers them (external label replica="a"/"b", which promfed
#   drops by default; a millisecond timestamp that is the request's time; values alternating
#   between two rounds);
# - per run, promfed (one group: a primary, b secondary) scraping both every INTERVAL s;
#   RUNS runs with the default settings, then ARENA_RUNS with MALLOC_ARENA_MAX=2.
# Phases of a run; in each, VmRSS is sampled every 0.25 s over two scrape intervals (the process
# swings by a scrape body and its batch while a scrape is in flight, so one reading would be
# luck): lowest (between scrapes: what holding the series costs), median, highest; and VmHWM:
#   1. steady: after ROUNDS good scrapes of each replica, SERIES series merged;
#   2. + gzip /federate: one request as a global Prometheus makes it (full selector,
#      Accept-Encoding: gzip, body discarded), then one more scrape of each replica (promfed
#      renders the gzip body ahead after every merge for 10 minutes after such a request);
#   3. + plain /federate too (information, not the goal): one request without gzip, then one
#      more scrape of each: the plain text body is rendered ahead and cached as well.
# At the lowest sample, the resident memory is broken down by kind from /proc/PID/smaps: the
# main heap, glibc's per-thread arenas, other anonymous mappings (allocations above malloc's
# mmap threshold: the series slab, snapshot and index vectors, scrape bodies, cached bodies)
# and the rest (binary, libraries, stacks).
set -euo pipefail

SERIES=${SERIES:-1000000}
INTERVAL=${INTERVAL:-10}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-3}
ARENA_RUNS=${ARENA_RUNS:-1}
[ "${ARENA_EXPERIMENT:-1}" != 0 ] || ARENA_RUNS=0 # ARENA_EXPERIMENT=0: the same as ARENA_RUNS=0
DEADLINE=${DEADLINE:-$(((RUNS + ARENA_RUNS) * (ROUNDS + 12) * INTERVAL + 600))}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
peers_init memory

build_promfed
start_deadline "$DEADLINE"
T_START=$SECONDS

PA=$(free_port); PB=$(free_port)
log "targets: replicas a (:$PA) and b (:$PB), $SERIES series each (a few seconds to build at 1M)"
spawn "$TMP/target-a.log" python3 "$HERE/gen_target.py" "$PA" "$SERIES" --replica a
spawn "$TMP/target-b.log" python3 "$HERE/gen_target.py" "$PB" "$SERIES" --replica b
wait_for 240 "target a" curl -sf -o /dev/null "http://127.0.0.1:$PA/metrics"
wait_for 240 "target b" curl -sf -o /dev/null "http://127.0.0.1:$PB/metrics"

TIMEOUT=$((INTERVAL > 2 ? INTERVAL - 1 : 1))
QUERY='match%5B%5D=%7B__name__%3D~%22.%2B%22%7D' # match[]={__name__=~".+"}
DATA="$TMP/results.tsv" # variant, run, phase, "min median max hwm", breakdown at min
: >"$DATA"

good() { # good METRICS_URL REPLICA: good scrapes of that replica
    local m
    m=$(curl -sf "$1")
    awk -v r="replica=\"$2\"" '$1 ~ /^promfed_scrapes_total[{]/ && index($1, r) { s += $NF }
        $1 ~ /^promfed_scrape_errors_total[{]/ && index($1, r) { e += $NF } END { printf "%.0f\n", s - e }' <<<"$m"
}
both_at_least() { [ "$(good "$1" a)" -ge "$2" ] && [ "$(good "$1" b)" -ge "$2" ]; }
all_series() { [ "$(metric_sum "$1" promfed_group_series)" -ge "$SERIES" ]; }

# sampler.py PID SECONDS: VmRSS every 0.25 s; prints "MIN MEDIAN MAX HWM<TAB>BREAKDOWN" (MB),
# the breakdown taken at the lowest sample.
cat >"$TMP/sampler.py" <<'EOF'
import re, statistics, sys, time
pid, seconds = sys.argv[1], float(sys.argv[2])

def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

def breakdown():
    maps, cur = [], None
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
        if m:
            cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip(), 0]
            maps.append(cur)
        elif line.startswith("Rss:"):
            cur[4] = int(line.split()[1])
    kinds = {"main heap": 0, "thread arenas": 0, "other anonymous (large allocations)": 0, "rest": 0}
    arenas = 0
    for i, (start, end, perms, path, rss) in enumerate(maps):
        if path == "[heap]":
            kinds["main heap"] += rss
        elif path == "" and perms.startswith("rw"):
            # glibc reserves each thread arena as 64 MiB: read-write up to its top, PROT_NONE after.
            nxt = maps[i + 1] if i + 1 < len(maps) else None
            size = end - start
            if (nxt and nxt[0] == end and nxt[2].startswith("---") and nxt[3] == ""
                    and (size + nxt[1] - nxt[0]) % (64 << 20) == 0) or size == (64 << 20):
                kinds["thread arenas"] += rss
                arenas += 1
            else:
                kinds["other anonymous (large allocations)"] += rss
        else:
            kinds["rest"] += rss
    return ", ".join(f"{k} {v / 1024:.0f}" for k, v in kinds.items()) + f" MB ({arenas} arenas)"

samples, low, low_breakdown = [], None, ""
until = time.monotonic() + seconds
while time.monotonic() < until:
    rss = status("VmRSS:")
    samples.append(rss)
    if low is None or rss < low:
        low, low_breakdown = rss, breakdown()
    time.sleep(0.25)
print(f"{min(samples):.0f} {statistics.median(samples):.0f} {max(samples):.0f} {status('VmHWM:'):.0f}\t{low_breakdown}")
EOF

measure() { # measure VARIANT RUN PHASE PID: one line of $DATA
    local out
    out=$(python3 "$TMP/sampler.py" "$4" $((2 * INTERVAL)))
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$out" >>"$DATA"
    log "$1 run $2, $3: VmRSS min/median/max, VmHWM: ${out%%$'\t'*} MB; at the lowest: ${out#*$'\t'}"
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
    measure "$variant" "$run" steady "$pid"

    curl -sf -H 'Accept-Encoding: gzip' -o /dev/null "http://127.0.0.1:$port/federate?$QUERY"
    g=$(good "$url" a)
    wait_for $((3 * INTERVAL + 60)) "one more scrape of each" both_at_least "$url" $((g + 1))
    measure "$variant" "$run" "+ gzip /federate" "$pid"

    curl -sf -o /dev/null "http://127.0.0.1:$port/federate?$QUERY"
    g=$(good "$url" a)
    wait_for $((3 * INTERVAL + 60)) "one more scrape of each" both_at_least "$url" $((g + 1))
    measure "$variant" "$run" "+ plain /federate too" "$pid"
    log "$variant run $run: $(awk '/^Threads:/ {print $2}' "/proc/$pid/status") threads"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for run in $(seq "$RUNS"); do run_once default "$run"; done
for run in $(seq "$ARENA_RUNS"); do run_once MALLOC_ARENA_MAX=2 "$run" MALLOC_ARENA_MAX=2; done
ELAPSED=$((SECONDS - T_START))

python3 - "$DATA" "$SERIES" "$INTERVAL" "$ROUNDS" "$ELAPSED" "$(uptime)" >"$TMP/summary.txt" <<'EOF'
import json, statistics, sys
from collections import defaultdict
path, series, interval, rounds, elapsed, load = sys.argv[1:7]
rows = defaultdict(list)
breakdowns = {}
for line in open(path):
    variant, run, phase, nums, breakdown = line.rstrip("\n").split("\t")
    rows[(variant, phase)].append([float(x) for x in nums.split()])
    breakdowns[(variant, phase)] = breakdown
print(f"\npromfed holding {int(series):,} series merged from two replicas scraped every {interval} s "
      f"(steady = after {rounds} rounds); VmRSS sampled every 0.25 s over {2 * int(interval)} s; "
      f"medians over runs\n")
print("| allocator settings | phase | runs | VmRSS lowest MB | VmRSS median MB | VmRSS highest MB | VmHWM MB | "
      "runs: lowest / highest | goal: lowest <= 250 MB | goal: highest <= 250 MB |")
print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
out = {}
for (variant, phase), v in rows.items():
    lo, md, hi, hwm = (statistics.median(r[i] for r in v) for i in range(4))
    info = "plain" in phase or variant != "default"
    goal = lambda x: "information" if info else ("met" if x <= 250 else f"NOT met ({x / 250:.2f}x)")
    if variant == "default" and "plain" not in phase:
        out[phase] = (lo, hi)
    per_run = ", ".join(f"{r[0]:.0f} / {r[2]:.0f}" for r in v)
    print(f"| {variant} | {phase} | {len(v)} | {lo:.0f} | {md:.0f} | {hi:.0f} | {hwm:.0f} | {per_run} | {goal(lo)} | {goal(hi)} |")
print("\nresident memory by kind at the lowest sample of the last run (MB):\n")
for (variant, phase), b in breakdowns.items():
    print(f"- {variant}, {phase}: {b}")
print("\n(cargo bench --no-default-features --bench memory, one thread, docs/benchmarks.md: 1M series, "
      "group + snapshot + cached gzip body 281 MB)")
print(f"took {elapsed} s; load at the end: {load.split('load average:')[-1].strip()}")
print("OUT " + json.dumps(out))
EOF
grep -v '^OUT ' "$TMP/summary.txt"
for phase in steady "+ gzip /federate"; do
    read -r lo hi < <(grep '^OUT ' "$TMP/summary.txt" | sed 's/^OUT //' |
        python3 -c "import json,sys; print(*json.load(sys.stdin).get('$phase', ['', '']))")
    emit_result memory "$SERIES series from two replicas, $phase, between scrapes (lowest VmRSS)" \
        "VmRSS" "MB" "$lo" "" "" "<= 250 MB" "$RUNS"
    emit_result memory "$SERIES series from two replicas, $phase, during scrapes (highest VmRSS)" \
        "VmRSS" "MB" "$hi" "" "" "<= 250 MB" "$RUNS"
done
log "done"
