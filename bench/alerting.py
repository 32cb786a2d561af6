#!/usr/bin/env python3
"""Helpers for bench/alerting.sh (standard library only).

  alerting.py rules FILE [--groups 1000] [--hosts 234] [--flapping 20]
      writes a rule file: GROUPS groups x 10 rules over the tsbench node data set, each group
      on one host; the first FLAPPING groups also hold an alert that fires for 60 s and
      resolves for 60 s (phases spread), so notification latency is measured many times.
  alerting.py sink PORT LOG
      a webhook receiver on 127.0.0.1:PORT appending "recv_unix_ms<TAB>body" lines to LOG.
  alerting.py report LOG METRICS_BEFORE METRICS_AFTER CPU_BEFORE CPU_AFTER WALL_S INTERVAL_S GROUP_WAIT_S
      prints the markdown figures: evaluation time per round, CPU share, notification latency.
"""
import datetime
import http.server
import json
import sys
import time

RULES = [
    # (suffix, expr template, for) -- the kinds of rules a node-exporter rule pack has
    ("Load", 'node_load15{{instance="{i}"}} > 4', "5m"),
    ("MemLow", 'node_memory_MemAvailable_bytes{{instance="{i}"}} / node_memory_MemTotal_bytes{{instance="{i}"}} < 0.05', "5m"),
    ("FsFull", '100 * (1 - node_filesystem_avail_bytes{{instance="{i}"}} / node_filesystem_size_bytes{{instance="{i}"}}) > 99', "5m"),
    ("FsFilling", 'predict_linear(node_filesystem_avail_bytes{{instance="{i}"}}[30m], 4 * 3600) < 0', "10m"),
    ("CpuBusy", '1 - avg by (instance) (rate(node_cpu_seconds_total{{instance="{i}",mode="idle"}}[5m])) > 0.98', "10m"),
    ("DiskIO", 'rate(node_disk_io_time_seconds_total{{instance="{i}"}}[5m]) > 0.99', "10m"),
    ("CtxSwitch", 'rate(node_context_switches_total{{instance="{i}"}}[5m]) > 1e9', "5m"),
    ("Latency", 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{instance="{i}"}}[5m]))) > 100', "5m"),
    ("Down", 'up{{instance="{i}"}} == 0', "2m"),
]


def cmd_rules(path, groups=1000, hosts=234, flapping=20):
    out = ["groups:"]
    for g in range(groups):
        inst = f"host-{g % hosts:05d}:9100"
        out.append(f"  - name: bench-{g:04d}")
        out.append("    interval: 15s")
        out.append("    rules:")
        for suffix, expr, for_ in RULES:
            out.append(f"      - alert: Bench{suffix}")
            out.append(f"        expr: '{expr.format(i=inst)}'")
            out.append(f"        for: {for_}")
            out.append("        annotations: {summary: '{{ $labels.instance }} at {{ $value | humanize }}'}")
        if g < flapping:
            # Fires for 60 s out of every 120 s; phases spread over the cycle.
            out.append(f"      - alert: BenchFlap{g:02d}")
            out.append(f"        expr: 'vector(1) and on() (vector(time() + {g * 6}) % 120 < 60)'")
        else:
            out.append(f"      - record: bench:load15:g{g:04d}")
            out.append(f"        expr: 'node_load15{{instance=\"{inst}\"}}'")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def cmd_sink(port, log):
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            t = time.time()
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            with open(log, "a") as f:
                f.write(f"{int(t * 1000)}\t{body.decode().strip()}\n")

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H).serve_forever()


def parse_metrics(path):
    """Sum over the bench groups of the last evaluation's duration, and evaluations so far
    (Telltale's telltale_rule_* or Prometheus's prometheus_rule_* families)."""
    last, evals = 0.0, 0.0
    for line in open(path):
        if "bench-" not in line:
            continue
        if line.startswith(("telltale_rule_group_last_duration_seconds{", "prometheus_rule_group_last_duration_seconds{")):
            last += float(line.rsplit(" ", 1)[1])
        if line.startswith(("telltale_rule_evaluations_total{", "prometheus_rule_evaluations_total{")):
            evals += float(line.rsplit(" ", 1)[1])
    return last, evals


def ms_of(ts):
    return int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def cmd_report(log, m0, m1, cpu0, cpu1, wall, interval, group_wait):
    round_s, _ = parse_metrics(m1)
    _, e0 = parse_metrics(m0)
    _, e1 = parse_metrics(m1)
    cpu = float(cpu1) - float(cpu0)
    wall = float(wall)
    lat = []
    seen = set()
    for line in open(log):
        if "\t" not in line:
            continue
        t, body = line.split("\t", 1)
        msg = json.loads(body)
        for a in msg["alerts"]:
            if a["status"] != "firing":
                continue
            key = (a["fingerprint"], a["startsAt"])
            if key in seen:
                continue
            seen.add(key)
            lat.append((int(t) - ms_of(a["startsAt"])) / 1000.0)
    rounds = (e1 - e0) / 10_000 if e1 > e0 else 0
    print(f"- rule evaluations in the window: {int(e1 - e0)} ({rounds:.1f} rounds of 10,000 rules) over {wall:.0f} s")
    print(f"- evaluation time of one round (sum of every group's last evaluation): **{round_s:.2f} s** of a {interval} s interval")
    print(f"- CPU used by the server: {cpu:.1f} s over {wall:.0f} s = **{100 * cpu / wall:.0f} % of one core** ({100 * cpu / wall / 2:.0f} % of the 2-core machine)")
    if lat:
        print(f"- notification latency, firing evaluation to webhook received ({len(lat)} notifications, group_wait {group_wait} s): "
              f"p50 **{pct(lat, 50):.2f} s**, p90 {pct(lat, 90):.2f} s, max **{max(lat):.2f} s** (target < {float(group_wait) + 1:.0f} s)")
    else:
        print("- no notification received")


if __name__ == "__main__":
    c, *a = sys.argv[1:]
    if c == "rules":
        cmd_rules(a[0], *(int(x) for x in a[1:]))
    elif c == "sink":
        cmd_sink(*a)
    elif c == "report":
        cmd_report(*a)
    else:
        sys.exit(__doc__)
