#!/usr/bin/env python3
"""Captures real remote write 1.0 bodies from Debian's Prometheus (/usr/bin/prometheus).

Prometheus scrapes itself every second and remote-writes to a tiny listener on loopback;
the first sample-carrying body and the first metadata body are saved next to this script
as `prometheus-<version>-samples.snappy` and `prometheus-<version>-metadata.snappy`, with the
request headers in a `.headers` file. Prometheus's own /metrics is saved in both text formats
under ../exposition/ as `.prom` (0.0.4 text). Everything is bounded: 60 s at most, then both
processes are stopped.

Run: python3 crates/ingest/testdata/prom_remote_write/capture.py
"""
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROM = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


bodies = []  # (headers, body)
got = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        bodies.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()
        if len(bodies) >= 40:
            got.set()

    def log_message(self, *a):
        pass



def uvarint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def snappy_decompress(b):
    """Snappy block format: https://github.com/google/snappy/blob/main/format_description.txt"""
    n, i = uvarint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n
    return bytes(out)


def top_fields(msg):
    """Field numbers present at the top level of a protobuf message."""
    seen, i = set(), 0
    while i < len(msg):
        key, i = uvarint(msg, i)
        seen.add(key >> 3)
        wt = key & 7
        if wt == 0:
            _, i = uvarint(msg, i)
        elif wt == 1:
            i += 8
        elif wt == 2:
            ln, i = uvarint(msg, i)
            i += ln
        elif wt == 5:
            i += 4
    return seen


def main():
    version = subprocess.run([PROM, "--version"], capture_output=True, text=True).stdout.split()[2]
    rw_port, prom_port = free_port(), free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", rw_port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="telltale-capture-")
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
remote_write:
  - url: http://127.0.0.1:{rw_port}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send_interval: 2s
""")
    proc = subprocess.Popen(
        [PROM, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got.wait(timeout=60)
        # Prometheus's own /metrics in both text formats, for the exposition tests.
        import urllib.request
        # (Prometheus 2.42 serves its own /metrics only as 0.0.4 text.)
        for accept, ext in (("text/plain;version=0.0.4", "prom"),):
            req = urllib.request.Request(f"http://127.0.0.1:{prom_port}/metrics", headers={"Accept": accept})
            with urllib.request.urlopen(req, timeout=10) as r:
                out = os.path.join(HERE, "..", "exposition", f"prometheus-{version.split('+')[0]}.{ext}")
                with open(out, "wb") as f:
                    f.write(r.read())
                print(f"wrote {os.path.normpath(out)} ({r.headers.get('Content-Type')})")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    if not bodies:
        sys.exit("no remote write body captured")
    # Samples and metadata travel in separate requests (metadata every send_interval).
    picks = {}
    for headers, body in bodies:
        fields = top_fields(snappy_decompress(body))
        kind = "metadata" if fields == {3} else "samples" if 1 in fields else None
        if kind and kind not in picks:
            picks[kind] = (headers, body)
    for kind, (headers, body) in sorted(picks.items()):
        base = os.path.join(HERE, f"prometheus-{version.split('+')[0]}-{kind}")
        with open(base + ".snappy", "wb") as f:
            f.write(body)
        with open(base + ".headers", "w") as f:
            for k in ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version", "User-Agent"):
                f.write(f"{k}: {headers.get(k, '')}\n")
        print(f"wrote {base}.snappy ({len(body)} bytes)")
    print(f"captured {len(bodies)} bodies, sizes {[len(b) for _, b in bodies]}")


if __name__ == "__main__":
    main()
