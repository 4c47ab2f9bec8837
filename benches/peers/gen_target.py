#!/usr/bin/env python3
"""A synthetic scrape target for the peer comparisons in benches/peers/ (federate.sh, ...).

Serves SERIES series in the text exposition format at /metrics on 127.0.0.1:PORT. The body is
built once at start (the same series as benches/common: ten names, half of them recording
rules with ':', six labels, ~135-byte canonical keys) so that serving it costs nothing but a
socket write; values move a little between requests so that stored samples change.

Usage: gen_target.py PORT [SERIES]
"""

import http.server
import sys

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


def body(series, round_):
    lines = []
    per_name = -(-series // len(NAMES))
    written = 0
    for name in NAMES:
        lines.append(f"# TYPE {name} untyped")
        for i in range(min(per_name, series - written)):
            labels = (
                f'cluster="eu-west-1",cpu="{i % 16}",'
                f'instance="10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:9100",'
                f'job="{JOBS[i % 3]}",mode="{MODES[i % 5]}",'
                f'pod="node-exporter-{(i * 7919) & 0xFFFFF:05x}"'
            )
            value = i * 10 + round_ * 3 if name.endswith("_total") else ((i * 31 + round_) % 1000) / 8
            lines.append(f"{name}{{{labels}}} {value}")
            written += 1
    return ("\n".join(lines) + "\n").encode()


def main():
    port = int(sys.argv[1])
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    bodies = [body(series, r) for r in range(2)]
    served = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            data = bodies[served[0] % 2]
            served[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"gen_target: {series} series, {len(bodies[0])} bytes, on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
