#!/usr/bin/env python3
"""Server-side range-query latency, keep-alive: every range query of queries.txt sent REPS times
to each server, alternating, over one persistent connection per server, as a form POST like
promcompare.py's. A new connection per request (promcompare.py, urllib) adds about 0.5-1 ms of
client and TCP setup to both sides, which hides the servers' own differences on millisecond
queries; this measures what is left. The first run of each query is reported on its own (cold:
the first time the server sees that text, with whatever caches it builds), beside the median of
the other REPS - 1 (warm). Standard library only.

    bench/latency.py --a URL --b URL --manifest M --queries Q [--reps 30] [--step 60s] > out.md
"""
import argparse
import http.client
import json
import statistics
import time
import urllib.parse


def queries(path):
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("instant:"):
            continue
        yield line[len("range:"):].strip() if line.startswith("range:") else line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--name-a", default="prometheus")
    ap.add_argument("--name-b", default="telltale")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--reps", type=int, default=30, help="runs per query and server (at least 2)")
    ap.add_argument("--step", default="60s")
    args = ap.parse_args()
    m = json.load(open(args.manifest))
    start, end = m["first_ts_ms"] / 1000, m["last_ts_ms"] / 1000
    conns = []
    for url in (args.a, args.b):
        u = urllib.parse.urlparse(url)
        conns.append(http.client.HTTPConnection(u.hostname, u.port, timeout=60))

    def once(c, q):
        body = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": args.step})
        t0 = time.perf_counter()
        c.request("POST", "/api/v1/query_range", body, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        return time.perf_counter() - t0, r.status

    print(f"Range queries over the data set ({args.step} step) on one keep-alive connection per server, "
          f"alternating: the first run of each query (cold) and the median of the next {args.reps - 1} (warm), "
          f"milliseconds.\n")
    print(f"| query | {args.name_a} cold | {args.name_b} cold | cold ratio | {args.name_a} warm | "
          f"{args.name_b} warm | warm ratio |\n|---|---:|---:|---:|---:|---:|---:|")
    cold, warm = [], []
    for q in queries(args.queries):
        times = ([], [])
        for _ in range(args.reps):
            for i, c in enumerate(conns):
                t, status = once(c, q)
                if status != 200:
                    raise SystemExit(f"{q}: HTTP {status} from {(args.a, args.b)[i]}")
                times[i].append(t)
        (ca, *ra), (cb, *rb) = times
        wa, wb = statistics.median(ra), statistics.median(rb)
        cold.append(cb / ca)
        warm.append(wb / wa)
        print(f"| `{q}` | {ca * 1000:.2f} | {cb * 1000:.2f} | {cb / ca:.2f} | {wa * 1000:.2f} | {wb * 1000:.2f} | "
              f"{wb / wa:.2f} |")
    for what, ratios in (("cold", cold), ("warm", warm)):
        print(f"\n{what.capitalize()}: median of the per-query ratios {statistics.median(ratios):.2f}; worst: "
              f"{max(ratios):.2f}; queries where {args.name_b} is slower: {sum(r > 1 for r in ratios)} of {len(ratios)}.")


if __name__ == "__main__":
    main()
