# shellcheck shell=bash
# Shared helpers of the benches/peers/ comparison scripts; sourced, never run.
#
# --- helper "cost": the functions scrape_cost.sh, memory.sh and failover.sh need ---
# Each is defined only when an earlier part of this file has not defined it already, so that
# this block can sit at the end of the shared lib.sh unchanged. Names follow the results
# contract of issue 7. A script that sources this file sets TMP (a temporary directory) and
# HERE/ROOT first, then calls `lib_init DEADLINE`.

if ! declare -F log >/dev/null; then
    log() { printf '[%5ss] %s\n' "$SECONDS" "$*" >&2; }
fi

if ! declare -F cleanup >/dev/null; then
    PIDS=()
    # Kill every process started by spawn (and the watchdog), wait for them, remove $TMP.
    cleanup() {
        local pid
        for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
        for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
        [ -n "${TMP:-}" ] && rm -rf "$TMP"
        return 0
    }
fi

if ! declare -F spawn >/dev/null; then
    # spawn LOGFILE COMMAND...: run in the background, output to LOGFILE, killed by cleanup.
    # The PID is in $SPAWNED.
    spawn() {
        local out=$1
        shift
        "$@" >"$out" 2>&1 &
        SPAWNED=$!
        PIDS+=("$SPAWNED")
    }
fi

if ! declare -F lib_init >/dev/null; then
    # lib_init DEADLINE: cleanup on exit, and a watchdog that stops the script after DEADLINE
    # seconds (its own sleep is killed with it, so nothing holds the script's output open).
    lib_init() {
        local deadline=$1
        trap cleanup EXIT
        (
            trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
            sleep "$deadline" >/dev/null 2>&1 &
            sleeper=$!
            wait "$sleeper"
            echo "deadline of ${deadline}s reached, stopping" >&2
            kill -TERM $$
        ) &
        PIDS+=($!)
        trap 'exit 124' TERM INT
    }
fi

if ! declare -F wait_for >/dev/null; then
    wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
        local until=$((SECONDS + $1)) what=$2
        shift 2
        until "$@" >/dev/null 2>&1; do
            [ "$SECONDS" -lt "$until" ] || { log "timed out waiting for $what"; return 1; }
            sleep 0.2
        done
    }
fi

if ! declare -F free_port >/dev/null; then
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fi

if ! declare -F cpu_seconds >/dev/null; then
    cpu_seconds() { # utime+stime of a process, seconds
        awk -v tck="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' "/proc/$1/stat"
    }
fi

if ! declare -F rss_mb >/dev/null; then
    rss_mb() { awk '/^VmRSS:/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
fi

if ! declare -F hwm_mb >/dev/null; then
    hwm_mb() { awk '/^VmHWM:/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
fi

if ! declare -F median >/dev/null; then
    median() { # median NUMBER... (empty when none)
        [ $# -gt 0 ] || return 0
        printf '%s\n' "$@" | python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.stdin.read().split()))'
    }
fi

if ! declare -F metric_sum >/dev/null; then
    # Sum of a metric's series in a text exposition at URL (0 when absent).
    metric_sum() { # metric_sum URL NAME [LABEL_FILTER_REGEX]
        curl -sf "$1" | awk -v name="$2" -v filter="${3:-}" '
            $1 ~ ("^" name "({|$)") && (filter == "" || $0 ~ filter) { s += $NF }
            END { printf "%.0f\n", s }'
    }
fi

if ! declare -F emit_result >/dev/null; then
    # emit_result COMPARISON CASE METRIC UNIT PROMFED PEER_NAME PEER GOAL RUNS
    # Appends one JSON line to $RESULTS when it is set. PEER_NAME and PEER empty: no peer (ratio
    # null, GOAL compares PROMFED). GOAL like "<= 0.2" or "<= 250 MB"; empty: no goal (met null).
    emit_result() {
        [ -n "${RESULTS:-}" ] || return 0
        python3 - "$@" >>"$RESULTS" <<'EOF'
import json, operator, re, sys
comparison, case, metric, unit, promfed, peer_name, peer, goal, runs = sys.argv[1:10]
num = lambda s: float(s) if s not in ("", "null", "nan") else None
promfed, peer = num(promfed), num(peer)
ratio = promfed / peer if promfed is not None and peer else None
met = None
m = re.match(r"\s*(<=|>=|<|>)\s*([0-9.eE+-]+)", goal)
if m:
    ops = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
    x = ratio if peer_name else promfed
    met = None if x is None else ops[m.group(1)](x, float(m.group(2)))
print(json.dumps({
    "comparison": comparison, "case": case, "metric": metric, "unit": unit,
    "promfed": promfed, "peer_name": peer_name or None, "peer": peer,
    "ratio": None if ratio is None else round(ratio, 4), "goal": goal or None, "met": met,
    "runs": int(runs),
}))
EOF
    }
fi

if ! declare -F build_promfed >/dev/null; then
    # Sets PROMFED: $PROMFED when given, else the release binary built here (incrementally,
    # under the shared build lock, without the ec2 feature, which only costs build minutes).
    build_promfed() {
        if [ -n "${PROMFED:-}" ]; then
            [ -x "$PROMFED" ] || { echo "PROMFED=$PROMFED is not executable" >&2; exit 2; }
            return 0
        fi
        local target_dir=${CARGO_TARGET_DIR:-$ROOT/target} lock=${BUILD_LOCK:-/tmp/promfed-build.lock}
        log "building promfed (release, without the ec2 feature)"
        if command -v flock >/dev/null; then
            (cd "$ROOT" && flock "$lock" cargo build --release --no-default-features --bin promfed)
        else
            (cd "$ROOT" && cargo build --release --no-default-features --bin promfed)
        fi
        PROMFED=$target_dir/release/promfed
    }
fi

if ! declare -F install_peers >/dev/null; then
    # install_peers BINARY:PACKAGE...: apt-get install the packages whose binary is missing.
    install_peers() {
        local want=() pair
        for pair in "$@"; do
            [ -x "${pair%%:*}" ] || want+=("${pair#*:}")
        done
        [ ${#want[@]} -eq 0 ] && return 0
        log "installing ${want[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${want[@]}" >&2
    }
fi
