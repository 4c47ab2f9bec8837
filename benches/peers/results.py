#!/usr/bin/env python3
"""Results of the peer comparisons (issue 7): one JSON object per measured row, and tables.

  results.py emit LOCAL_FILE SHARED_FILE COMPARISON CASE METRIC UNIT PROMFED PEER_NAME PEER GOAL RUNS [NOTE]
      appends the row to LOCAL_FILE and, when not empty, SHARED_FILE (called by lib.sh's
      emit_result). PROMFED and PEER are medians; "" or "nan" is null. ratio = promfed/peer;
      GOAL ("<= 0.05", ">= 20", or on promfed itself when there is no peer, "<= 250 MB") gives
      met true/false (null without a goal or a number to compare).
  results.py table FILE [COMPARISON]
      a markdown table of the rows (of one comparison).
  results.py summary FILE HEADER_LINE
      the summary table of every comparison, under HEADER_LINE (benches/peers/run.sh).
"""

import json
import math
import sys


def number(s):
    try:
        x = float(s)
    except ValueError:
        return None
    return None if math.isnan(x) else x


def met(goal, value):
    """True/false when `value` meets a goal like "<= 0.05" or ">= 20 x"; None when unknown."""
    if not goal or value is None:
        return None
    op, _, rest = goal.partition(" ")
    bound = number(rest.split()[0]) if rest.split() else None
    if bound is None or op not in ("<=", ">=", "<", ">"):
        return None
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}[op]


def emit(local, shared, comparison, case, metric, unit, promfed, peer_name, peer, goal, runs, note=""):
    p, q = number(promfed), number(peer)
    ratio = None
    if p is not None and q is not None:
        if q != 0:
            ratio = p / q
        elif p > 0:
            ratio = math.inf  # e.g. requests/s against a peer that completed none
    row = {
        "comparison": comparison,
        "case": case,
        "metric": metric,
        "unit": unit,
        "promfed": p,
        "peer_name": peer_name or None,
        "peer": q,
        "ratio": None if ratio is None or math.isinf(ratio) else round(ratio, 6),
        "goal": goal or None,
        "met": met(goal, ratio if peer_name else p),
        "runs": int(runs),
    }
    if ratio is not None and math.isinf(ratio):
        row["note"] = "peer completed none: ratio unbounded"
    if note:
        row["note"] = (row.get("note", "") + "; " + note).lstrip("; ")
    line = json.dumps(row)
    for path in (local, shared):
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")


def fmt(x):
    if x is None:
        return "–"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def fmt_ratio(row):
    r = row["ratio"]
    if r is None:
        return "∞" if "unbounded" in row.get("note", "") else "–"
    if 0 < r < 1:
        return f"{r:.3g} (1/{1 / r:.0f})"
    return f"{r:.3g}"


def fmt_met(m):
    return {True: "yes", False: "**no**", None: "–"}[m]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def table(path, comparison=None, with_comparison=False):
    rows = [r for r in load(path) if comparison is None or r["comparison"] == comparison]
    out = []
    head = ["case", "metric", "promfed", "peer", "peer value", "ratio promfed/peer", "goal", "met", "runs", "note"]
    if with_comparison:
        head.insert(0, "comparison")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---:" if h in ("promfed", "peer value", "runs") else "---" for h in head) + "|")
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        cells = [
            r["case"],
            r["metric"],
            fmt(r["promfed"]) + unit if r["promfed"] is not None else "–",
            r["peer_name"] or "–",
            fmt(r["peer"]) + unit if r["peer"] is not None else "–",
            fmt_ratio(r),
            r["goal"] or "–",
            fmt_met(r["met"]),
            str(r["runs"]),
            r.get("note", ""),
        ]
        if with_comparison:
            cells.insert(0, r["comparison"])
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "emit":
        emit(*args)
    elif cmd == "table":
        print(table(args[0], args[1] if len(args) > 1 else None))
    elif cmd == "summary":
        print(args[1] + "\n")
        print(table(args[0], with_comparison=True))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
