#!/usr/bin/env python3
"""Regenerates the OTLP/HTTP metrics fixtures in this folder from REAL OpenTelemetry SDKs.

The bodies are what the SDK exporters POST to `/v1/metrics`, captured by a tiny HTTP server on
127.0.0.1 that this script runs. Nothing here is hand-written protobuf or JSON.

  python_cumulative.pb  Python SDK, OTLP/HTTP protobuf exporter, default (cumulative) temporality
  python_delta.pb       Python SDK, same instruments, delta temporality for counters and histograms
  js_cumulative.json    JavaScript SDK, OTLP/HTTP JSON exporter (the Python SDK has no JSON exporter)
  js_cumulative.pb      JavaScript SDK, OTLP/HTTP protobuf exporter, same data as the JSON one

Setup (versions used for the committed files are printed into versions.txt):

  python3 -m venv /tmp/otelvenv
  /tmp/otelvenv/bin/pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
  (cd /tmp/oteljs && npm init -y && npm install @opentelemetry/api @opentelemetry/sdk-metrics \
      @opentelemetry/resources @opentelemetry/exporter-metrics-otlp-http @opentelemetry/exporter-metrics-otlp-proto)
  /tmp/otelvenv/bin/python make_fixtures.py [--js-dir /tmp/oteljs]

Every *.pb / *.json body in this folder is checked against its <name>.snap by the test
`every_fixture_matches_its_snapshot`: adding a captured body plus its snapshot adds a case.
After regenerating, refresh the snapshots with
  UPDATE_SNAPSHOTS=1 cargo test -p telltale-ingest --test otlp
and review the diff of the `*.snap` files by hand.
"""

import argparse
import gzip
import http.server
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


class Capture(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Capture.bodies.append((self.path, self.headers.get("Content-Type"), body))
        # An empty ExportMetricsServiceResponse in the request's own encoding.
        if "json" in (self.headers.get("Content-Type") or ""):
            reply, ctype = b"{}", "application/json"
        else:
            reply, ctype = b"", "application/x-protobuf"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def serve():
    server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def take_one(path_suffix="/v1/metrics"):
    assert len(Capture.bodies) == 1, f"expected one export, got {len(Capture.bodies)}"
    path, ctype, body = Capture.bodies.pop()
    assert path.endswith(path_suffix), path
    return ctype, body


def python_export(port, delta):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    temporality = {}
    if delta:
        temporality = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    exporter = OTLPMetricExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/metrics",
        compression=Compression.NoCompression,
        preferred_temporality=temporality,
    )
    # A huge interval: the only export is the one force_flush triggers.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.instance.id": "pod-1",
            "deployment.environment.name": "test",
            "host.name": "node-a",
        }
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("checkout.http", version="1.2.3")

    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served.")
    requests.add(3, {"http.request.method": "GET", "http.response.status_code": 200})
    requests.add(2, {"http.request.method": "POST", "http.response.status_code": 500})
    requests.add(1, {"http.request.method": "GET", "http.response.status_code": 200})

    sent = meter.create_counter("network.io", unit="By", description="Bytes sent.")
    sent.add(1536.5, {"direction": "transmit"})

    queue = meter.create_up_down_counter("queue.items", unit="{item}", description="Items waiting.")
    queue.add(5, {"queue": "orders"})
    queue.add(-2, {"queue": "orders"})

    util = meter.create_gauge("system.memory.utilization", unit="1", description="Memory in use.")
    util.set(0.42, {"state": "used"})

    duration = meter.create_histogram(
        "http.server.request.duration",
        unit="s",
        description="Request latency.",
        explicit_bucket_boundaries_advisory=[0.01, 0.1, 1.0, 5.0],
    )
    for v in (0.005, 0.02, 0.3, 0.7, 7.0):
        duration.record(v, {"http.route": "/cart"})

    # Names and keys Prometheus cannot hold as they are: sanitised, prefixed, and two keys
    # that collide after sanitising ("a.b" and "a_b" both become "a_b": values joined by ";").
    odd = provider.get_meter("odd-scope")
    weird = odd.create_counter("odd.name-with/slash", unit="ms")
    weird.add(7, {"0key": "zero", "a.b": "dot", "a_b": "under", "flag": True, "ratio": 0.5})

    provider.force_flush()
    ctype, body = take_one()
    assert ctype == "application/x-protobuf", ctype
    provider.shutdown()
    Capture.bodies.clear()
    return body


def js_export(port, js_dir, protocol):
    script = os.path.join(HERE, "make_fixtures_js.cjs")
    env = dict(os.environ, NODE_PATH=os.path.join(js_dir, "node_modules"))
    subprocess.run(
        ["node", script, f"http://127.0.0.1:{port}/v1/metrics", protocol],
        check=True,
        cwd=js_dir,
        env=env,
    )
    ctype, body = take_one()
    return ctype, body


def versions(js_dir):
    from importlib.metadata import version

    lines = [f"python opentelemetry-sdk {version('opentelemetry-sdk')}"]
    lines.append(f"python opentelemetry-exporter-otlp-proto-http {version('opentelemetry-exporter-otlp-proto-http')}")
    if js_dir:
        import json

        for pkg in ("sdk-metrics", "exporter-metrics-otlp-http", "exporter-metrics-otlp-proto"):
            with open(os.path.join(js_dir, "node_modules", "@opentelemetry", pkg, "package.json")) as f:
                lines.append(f"js @opentelemetry/{pkg} {json.load(f)['version']}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--js-dir", default="/tmp/oteljs", help="folder with the JS SDK's node_modules; '' to skip")
    args = ap.parse_args()
    server = serve()
    port = server.server_address[1]

    def write(name, data):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print(f"wrote {name} ({len(data)} bytes)")

    write("python_cumulative.pb", python_export(port, delta=False))
    write("python_delta.pb", python_export(port, delta=True))
    if args.js_dir:
        ctype, body = js_export(port, args.js_dir, "json")
        assert ctype.startswith("application/json"), ctype
        write("js_cumulative.json", body)
        ctype, body = js_export(port, args.js_dir, "proto")
        assert ctype == "application/x-protobuf", ctype
        write("js_cumulative.pb", body)
    write("versions.txt", versions(args.js_dir).encode())
    server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
