#!/usr/bin/env python3
"""A synthetic scrape target for the scripts in benches/peers/.

Serves SERIES series on 127.0.0.1:PORT, built once at start (the same series as
benches/common: ten names, half of them recording rules with ':', six labels, ~135-byte
canonical keys) so that serving them costs little more than a socket write:

- /metrics: the text exposition format, no timestamps; values alternate between two rounds
  from one request to the next, so that stored samples change.
- /federate: the same series as a Prometheus replica's /federate answers them: every series
  with the external label `replica="REPLICA"` (when --replica is given) and a timestamp in
  milliseconds. The timestamp is the request's time (--interval 0, the default: every scrape
  sees new samples), or the last tick of a simulated scrape every INTERVAL seconds shifted by
  PHASE (as a Prometheus replica that scrapes its targets every INTERVAL would answer);
  values alternate between two rounds as on /metrics. The body is a template: one
  bytes.replace of a fixed-width timestamp placeholder per request (~0.1 s at 1M series).

Usage: gen_target.py PORT [SERIES] [--replica NAME] [--interval SECONDS] [--phase SECONDS]

Start-up at 1M series: about 2 s for /metrics, 4 s more for /federate; resident memory about
330 MB for the two /metrics bodies and 370 MB for the two /federate templates, plus one
body per request being served.
"""

import argparse
import http.server
import time

NAMES = [
    "cluster:container_memory_working_set_bytes:sum",
    "container_memory_working_set_bytes",
    "http_requests_total",
    "instance:node_cpu_seconds:rate1m",
    "instance_mode:node_cpu_seconds:rate5m",
    "job:http_requests_total:rate5m",
    "namespace_pod:http_request_duration_seconds_bucket:rate1m",
    "node_network_receive_bytes_total",
    "process_resident_memory_bytes",
    "up",
]
JOBS = ["node", "api", "prometheus"]
MODES = ["idle", "user", "system", "iowait", "steal"]
# Thirteen characters, the width of a millisecond timestamp until the year 2286.
TS_PLACEHOLDER = b"@@@@@@@@@@@@@"


def body(series, round_, replica=None, timestamps=False):
    lines = []
    per_name = -(-series // len(NAMES))
    written = 0
    extra = f',replica="{replica}"' if replica is not None else ""
    ts = " " + TS_PLACEHOLDER.decode() if timestamps else ""
    for name in NAMES:
        lines.append(f"# TYPE {name} untyped")
        for i in range(min(per_name, series - written)):
            labels = (
                f'cluster="eu-west-1",cpu="{i % 16}",'
                f'instance="10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:9100",'
                f'job="{JOBS[i % 3]}",mode="{MODES[i % 5]}",'
                f'pod="node-exporter-{(i * 7919) & 0xFFFFF:05x}"{extra}'
            )
            value = i * 10 + round_ * 3 if name.endswith("_total") else ((i * 31 + round_) % 1000) / 8
            lines.append(f"{name}{{{labels}}} {value}{ts}")
            written += 1
    return ("\n".join(lines) + "\n").encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("series", type=int, nargs="?", default=100_000)
    ap.add_argument("--replica", help="external label replica=NAME on /federate")
    ap.add_argument("--interval", type=float, default=0.0, help="simulated scrape interval (0: request time)")
    ap.add_argument("--phase", type=float, default=0.0, help="offset of the simulated scrapes, seconds")
    args = ap.parse_args()

    bodies = [body(args.series, r) for r in range(2)]
    templates = [body(args.series, r, args.replica, timestamps=True) for r in range(2)]
    served = [0, 0]

    def federate_body():
        now = time.time()
        if args.interval > 0:
            tick = (now - args.phase) // args.interval
            ts, round_ = tick * args.interval + args.phase, int(tick)
        else:
            ts, round_ = now, served[1]
        served[1] += 1
        stamp = b"%013d" % int(ts * 1000)
        return templates[round_ % 2].replace(TS_PLACEHOLDER, stamp)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                data = bodies[served[0] % 2]
                served[0] += 1
            elif path == "/federate":
                data = federate_body()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(
        f"gen_target: {args.series} series, {len(bodies[0])} bytes (/metrics), "
        f"{len(templates[0])} bytes (/federate), on 127.0.0.1:{args.port}",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
