#!/usr/bin/env bash
# The peer comparisons of issue 7 in one command: installs the peers when missing (Debian's
# prometheus 2.42, victoria-metrics 1.79 with vmagent, wrk), builds promfed (release, without the
# ec2 feature) and the Remote-Write load generator once, runs every comparison script present,
# each bounded in time, then renders one markdown summary table from their results and writes it
# into docs/benchmarks.md between <!-- peers:begin --> and <!-- peers:end -->.
#
#   benches/peers/run.sh                                   # everything, ~30 minutes on 2 cores
#   QUICK=1 benches/peers/run.sh                           # smoke run: 100k only, RUNS=1, ~5 minutes
#   ONLY="federate remote_write_receive" benches/peers/run.sh
#   PROMFED=/path/to/promfed benches/peers/run.sh          # no promfed build
#   WRITE_DOCS=0 benches/peers/run.sh                      # print the table, leave docs/ alone
#
# The comparisons (each script also runs alone; see its header):
#   federate              /federate time per request and requests/s, promfed vs Prometheus 2.42
#   remote_write_receive  Remote-Write samples per CPU-second, promfed vs Prometheus and VictoriaMetrics
#   scrape_cost           CPU per scraped sample, promfed vs vmagent        (when present)
#   memory                promfed's RSS holding 1M merged series            (when present)
#   failover              longest gap seen downstream when a primary dies   (when present)
#   query                 query_range through promfed over an HA pair vs one replica directly
# Every script gets the same RESULTS file (JSON lines, one per measured row), RUNS, PROMFED and
# DEADLINE (its time budget, printed before it starts); a script that fails or hits its deadline
# is reported and the others still run. Numbers are medians over RUNS runs; all processes run on
# this machine, so anything else running on it (the load average is printed) makes them noisy.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RUNS_ENV=${RUNS:-} # given: overrides every comparison's own RUNS
. "$HERE/lib.sh"

QUICK=${QUICK:-0}
ONLY=${ONLY:-"federate remote_write_receive scrape_cost memory failover query"}
WRITE_DOCS=${WRITE_DOCS:-1}
DOC=${DOC:-$ROOT/docs/benchmarks.md}

# Per comparison: the time budget in seconds (DEADLINE) and its settings, for the default run
# (~30 minutes in all on 2 cores) and for QUICK=1. RUNS from the environment overrides these.
if [ "$QUICK" = 1 ]; then
    declare -A BUDGET=([federate]=300 [remote_write_receive]=180 [scrape_cost]=300 [memory]=240 [failover]=240 [query]=300)
    declare -A SETTINGS=(
        [federate]="SIZES=100000 RUNS=1 WRK_SECONDS=3 PROM_WRK_SECONDS=10"
        [remote_write_receive]="SERIES=10000 RUNS=1 RUN_SECONDS=5 SETTLE_SECONDS=2"
        [scrape_cost]="SERIES=100000 INTERVAL=5 SCRAPES=3 RUNS=1"
        [memory]="SERIES=100000 INTERVAL=5 RUNS=1 ARENA_EXPERIMENT=0"
        [failover]="SERIES=2000 RUNS=1 PRE=20 POST=20"
        [query]="SERIES=2000 HISTOGRAMS=200 RUNS=1"
    )
else
    declare -A BUDGET=([federate]=1200 [remote_write_receive]=400 [scrape_cost]=420 [memory]=360 [failover]=300 [query]=900)
    declare -A SETTINGS=(
        [federate]="SIZES='100000 1000000' RUNS=3"
        [remote_write_receive]="SERIES=100000 RUNS=3 RUN_SECONDS=10 SETTLE_SECONDS=5"
        [scrape_cost]="RUNS=1"
        [memory]="RUNS=1 ARENA_EXPERIMENT=0"
        [failover]="RUNS=1"
        [query]="RUNS=3"
    )
fi

peers_init peers-run
RESULTS_FILE=$TMP/results.jsonl
: >"$RESULTS_FILE"

selected=()
for c in $ONLY; do
    [ -n "${BUDGET[$c]:-}" ] || die "unknown comparison $c (federate remote_write_receive scrape_cost memory failover query)"
    if [ -f "$HERE/$c.sh" ]; then selected+=("$c"); else log "$c: no $c.sh in this checkout, skipped"; fi
done
[ "${#selected[@]}" -gt 0 ] || die "no comparison to run"

install_peers prometheus victoria-metrics wrk
build_promfed
export PROMFED
if [[ " ${selected[*]} " == *" remote_write_receive "* ]]; then
    build_rw_load
    export RW_LOAD
fi

total=0
for c in "${selected[@]}"; do total=$((total + BUDGET[$c])); done
log "budget: $(for c in "${selected[@]}"; do printf '%s %ss, ' "$c" "${BUDGET[$c]}"; done)total at most ${total}s ($((total / 60)) min)"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
declare -A TOOK STATUS LOAD_BEFORE LOAD_AFTER
for c in "${selected[@]}"; do
    log "== $c: budget ${BUDGET[$c]}s, ${SETTINGS[$c]}${RUNS_ENV:+ RUNS=$RUNS_ENV}; load average $(loadavg)"
    LOAD_BEFORE[$c]=$(loadavg)
    start=$SECONDS
    rc=0
    # The script's own settings (a constant of this file), then RUNS from the environment.
    eval "settings=(${SETTINGS[$c]})"
    env "${settings[@]}" ${RUNS_ENV:+RUNS=$RUNS_ENV} \
        RESULTS="$RESULTS_FILE" PROMFED="$PROMFED" RW_LOAD="${RW_LOAD:-}" DEADLINE="${BUDGET[$c]}" \
        bash "$HERE/$c.sh" >"$TMP/$c.out" 2>"$TMP/$c.err" </dev/null || rc=$?
    TOOK[$c]=$((SECONDS - start))
    LOAD_AFTER[$c]=$(loadavg)
    case $rc in
        0) STATUS[$c]=ok ;;
        124) STATUS[$c]="stopped at its deadline" ;;
        *) STATUS[$c]="failed (exit $rc)" ;;
    esac
    cat "$TMP/$c.out"
    [ "$rc" = 0 ] || tail -20 "$TMP/$c.err" >&2
    log "== $c: ${STATUS[$c]} in ${TOOK[$c]}s; load average $(loadavg)"
done

# The summary, and what it was measured on.
version() { { "$@" 2>&1 || true; } | head -1 | sed 's/[[:space:]]*$//' || true; }
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo " (uncommitted changes)" || true)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
# Peer versions as Debian packaged them (VictoriaMetrics' binary prints no version here).
pkgs=$(dpkg-query -W -f '${Package} ${Version}, ' prometheus victoria-metrics wrk 2>/dev/null | sed 's/, $//' || true)
[ -n "$pkgs" ] || pkgs="Prometheus $(version "$PROMETHEUS" --version | awk '{ print $3 }')"
header="Peer comparisons (\`benches/peers/run.sh\`$([ "$QUICK" = 1 ] && echo ", QUICK=1")): $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($cpu), promfed $commit$dirty; peers: $pkgs."
runs_line="| comparison | status | wall s | budget s | settings | load average before → after |"$'\n'"|---|---|---:|---:|---|---|"
for c in "${selected[@]}"; do
    runs_line+=$'\n'"| $c | ${STATUS[$c]} | ${TOOK[$c]} | ${BUDGET[$c]} | \`${SETTINGS[$c]}${RUNS_ENV:+ RUNS=$RUNS_ENV}\` | ${LOAD_BEFORE[$c]} → ${LOAD_AFTER[$c]} |"
done
{
    python3 "$HERE/results.py" summary "$RESULTS_FILE" "$header"
    echo
    echo "$runs_line"
    echo
    echo "Ratio = promfed / peer of the medians; met: the goal of issue 7 holds for this row. Every process ran on the same $(nproc) cores (peers, promfed, load generators), shared with whatever else the load average shows."
} >"$TMP/summary.md"
echo
cat "$TMP/summary.md"

complete=1
for c in "${selected[@]}"; do [ "${STATUS[$c]}" = ok ] || complete=0; done
if [ "$WRITE_DOCS" = 1 ]; then
    python3 - "$DOC" "$TMP/summary.md" <<'EOF'
import sys
doc, summary = sys.argv[1], open(sys.argv[2]).read().strip()
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
text = open(doc).read()
block = f"{BEGIN}\n{summary}\n{END}"
if BEGIN in text and END in text:
    head, rest = text.split(BEGIN, 1)
    text = head + block + rest.split(END, 1)[1]
else:
    # At the top, under the title.
    title, _, rest = text.partition("\n")
    text = f"{title}\n\n{block}\n\n{rest.lstrip(chr(10))}"
open(doc, "w").write(text)
EOF
    log "summary written to $DOC between the peers markers"
fi
[ "$complete" = 1 ] || { log "not every comparison completed (see the status column)"; exit 1; }
log "done"
