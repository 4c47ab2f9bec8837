# Shared helpers of the peer comparison scripts in benches/peers/ (sourced, not run):
#
#   HERE=$(cd "$(dirname "$0")" && pwd)
#   . "$HERE/lib.sh"
#   peers_init federate            # temporary dir $TMP, PID tracking, traps
#   build_promfed                  # sets PROMFED (skipped when PROMFED is set)
#   start_deadline "$DEADLINE"     # stop everything after DEADLINE seconds
#   spawn "$TMP/x.log" cmd args... # background process, killed on exit; its pid in $LAST_PID
#
# Results contract (issue 7): each script can run alone and prints its own markdown table; when
# RESULTS names a file, emit_result also appends one JSON object per measured row to it (see
# results.py). Everything runs on 127.0.0.1; every process started through spawn (or added to
# PIDS) is killed on exit, and the temporary directory is removed.
#
# The comparison scripts share: RUNS (runs per measurement, medians; default 3), PROMFED (a
# promfed binary to use instead of building one), DEADLINE (seconds after which the script
# stops), RESULTS (the JSON lines file). Helper "cost" may add functions at the END of this file.

PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PEERS_DIR/../.." && pwd)
# Outside the checkout, like tests/run-all.sh (release builds kept apart from its debug ones).
TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/promfed/target-bench}
export CARGO_TARGET_DIR=$TARGET_DIR
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
VM=${VM:-/usr/bin/victoria-metrics}
# Builds of other worktrees share the machine: take the same lock as they do, when there is one.
BUILD_LOCK=${BUILD_LOCK:-/tmp/promfed-build.lock}
RUNS=${RUNS:-3}
PIDS=()
LAST_PID=

log() { printf '[%5ss] %s\n' "$SECONDS" "$*" >&2; }
die() { echo "$*" >&2; exit 2; }
locked() { if command -v flock >/dev/null; then flock "$BUILD_LOCK" "$@"; else "$@"; fi; }

# Kills every tracked process (TERM, then waits for it) and removes the temporary directory.
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -z "${TMP:-}" ] || rm -rf "$TMP"
}

# peers_init NAME: a temporary directory $TMP (removed on exit) and the traps. A TERM (the
# deadline) or an INT exits 124 through the EXIT trap.
peers_init() {
    TMP=$(mktemp -d "/tmp/promfed-$1.XXXXXX")
    LOCAL_RESULTS="$TMP/results.jsonl"
    : >"$LOCAL_RESULTS"
    trap cleanup EXIT
    trap 'exit 124' TERM INT
}

# spawn LOGFILE COMMAND...: runs COMMAND in the background, output to LOGFILE; its pid is tracked
# (killed on exit) and left in LAST_PID (and SPAWNED, the name helper "cost"'s scripts use).
spawn() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    LAST_PID=$!
    SPAWNED=$LAST_PID
    PIDS+=("$LAST_PID")
}

# stop PID: TERM and wait (a stopped process stays in PIDS; killing it again is harmless).
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# stop_within PID SECONDS: TERM, then KILL when it has not exited after SECONDS.
stop_within() {
    kill "$1" 2>/dev/null || return 0
    local until=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$until" ] && grep -q '^State:[[:space:]]*[^Z]' "/proc/$1/status" 2>/dev/null; do sleep 0.2; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# start_deadline SECONDS: whatever happens, the script is stopped after SECONDS (the EXIT trap
# kills everything). Call it after the builds (a build may wait for the lock). The watchdog's
# own sleep is killed with it, so that nothing holds the script's output open.
start_deadline() {
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "$1" >/dev/null 2>&1 &
        sleeper=$!
        wait "$sleeper"
        echo "deadline of ${1}s reached, stopping" >&2
        kill -TERM $$
    ) &
    PIDS+=($!)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local until=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$until" ] || { log "timed out waiting for $what"; return 1; }
        sleep 0.2
    done
}

# Sum of a metric's series (all label sets) in a Prometheus text exposition (0 when absent).
metric_sum() { # metric_sum URL NAME [LABEL_FILTER_REGEX]
    curl -sf "$1" | awk -v name="$2" -v filter="${3:-}" '
        $1 ~ ("^" name "({|$)") && (filter == "" || $1 ~ filter) { s += $NF }
        END { printf "%.0f\n", s }'
}

# utime+stime of a process, in seconds.
cpu_seconds() {
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / tck }' "/proc/$1/stat"
}
rss_mb() { awk '/^VmRSS/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
now() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
calc() { python3 -c "print($1)"; }

# wait_idle PID SECONDS: until the process uses less than a quarter of a core over a second
# (e.g. a server still working on requests its clients gave up on), at most SECONDS; 1 when it
# is still busy then.
wait_idle() {
    local until=$((SECONDS + $2)) a b
    while [ "$SECONDS" -lt "$until" ]; do
        a=$(cpu_seconds "$1") || return 0
        sleep 1
        b=$(cpu_seconds "$1") || return 0
        python3 -c "import sys; sys.exit(0 if $b - $a < 0.25 else 1)" && return 0
    done
    return 1
}

# median NUMBER...: the median ("nan" for none).
median() {
    printf '%s\n' "$@" | grep -v '^$' | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.10g\n", a[(NR + 1) / 2];
              else printf "%.10g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# emit_result COMPARISON CASE METRIC UNIT PROMFED PEER_NAME PEER GOAL RUNS [NOTE]: one measured
# row (PROMFED and PEER are medians over RUNS runs; PEER_NAME and PEER empty when there is no
# peer; GOAL like "<= 0.05" on the ratio promfed/peer, or on promfed itself without a peer, e.g.
# "<= 250 MB"; empty: no goal). Appended to $LOCAL_RESULTS (this script's table, when
# peers_init made one) and to $RESULTS when set.
emit_result() {
    python3 "$PEERS_DIR/results.py" emit "${LOCAL_RESULTS:-}" "${RESULTS:-}" "$@"
}
# results_table [COMPARISON]: this script's rows as a markdown table, on stdout.
results_table() { python3 "$PEERS_DIR/results.py" table "$LOCAL_RESULTS" "$@"; }

# build_promfed: a release promfed without the ec2 feature (not needed here, minutes to build),
# built incrementally under the build lock so that a stale binary is never measured; skipped
# when PROMFED names a binary already. Sets PROMFED.
build_promfed() {
    if [ -z "${PROMFED:-}" ]; then
        log "building promfed (release, without the ec2 feature)"
        (cd "$ROOT" && locked cargo build --release --no-default-features --bin promfed) >&2
        PROMFED=$TARGET_DIR/release/promfed
    fi
    [ -x "$PROMFED" ] || die "no promfed binary at $PROMFED"
}

# build_rw_load: the Remote-Write load generator (benches/rw_load.rs); skipped when RW_LOAD is
# set. Sets RW_LOAD.
build_rw_load() {
    if [ -z "${RW_LOAD:-}" ]; then
        log "building the load generator (cargo bench --bench rw_load --no-run)"
        RW_LOAD=$(cd "$ROOT" && locked cargo bench --no-default-features --bench rw_load --no-run --message-format=json |
            python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "rw_load" and m.get("executable"):
        print(m["executable"])')
    fi
    [ -x "$RW_LOAD" ] || die "no load generator binary ($RW_LOAD)"
}

# install_peers PACKAGE... (or BINARY:PACKAGE...): apt-get install the Debian packages whose
# program is missing (prometheus, victoria-metrics (also ships vmagent), wrk, hyperfine).
install_peers() {
    local pkg bin missing=()
    for pkg in "$@"; do
        case $pkg in
            *:*) bin=${pkg%%:*} pkg=${pkg#*:} ;;
            prometheus) bin=$PROMETHEUS ;;
            victoria-metrics) bin=$VM ;;
            *) bin=/usr/bin/$pkg ;;
        esac
        [ -x "$bin" ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]} (apt-get)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
        die "could not install ${missing[*]}"
    # The packages' services would scrape and listen on their default ports: not wanted here.
    for pkg in "${missing[@]}"; do
        if command -v systemctl >/dev/null; then systemctl disable --now "$pkg" >/dev/null 2>&1 || true; fi
    done
}

# need_peer PATH PACKAGE: exit 2 naming the package when the program is missing.
need_peer() { [ -x "$1" ] || die "needs $1 (apt-get install $2, or benches/peers/run.sh installs it)"; }

# start_prometheus NAME PORT [FLAG...]: Prometheus with $TMP/NAME.yml, its TSDB in $TMP/NAME,
# its log in $TMP/NAME.log; pid in LAST_PID.
start_prometheus() {
    local name=$1 port=$2
    shift 2
    mkdir -p "$TMP/$name"
    spawn "$TMP/$name.log" "$PROMETHEUS" --config.file="$TMP/$name.yml" --storage.tsdb.path="$TMP/$name" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn "$@"
}

# start_promfed NAME: promfed serving $TMP/NAME.yml, its log in $TMP/NAME.log; pid in LAST_PID.
start_promfed() { spawn "$TMP/$1.log" env RUST_LOG="${PROMFED_LOG:-warn}" "$PROMFED" serve --config "$TMP/$1.yml"; }

# start_target PORT SERIES [FLAG...]: benches/peers/gen_target.py, waited for; pid in LAST_PID.
start_target() {
    local port=$1 series=$2
    shift 2
    log "target: $series series on :$port"
    spawn "$TMP/target-$port.log" python3 "$PEERS_DIR/gen_target.py" "$port" "$series" "$@"
    local pid=$LAST_PID
    wait_for 120 "the target" curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" || { cat "$TMP/target-$port.log" >&2; exit 1; }
    LAST_PID=$pid
}
