#!/usr/bin/env python3
"""Fails (exit 1) when a promcompare.py result file holds a difference that
bench/known-differences.txt does not list with its reason, or an error on one side only.

    bench/check_compare.py RESULTS.json [RESULTS.json ...]
"""
import json
import os
import sys

known_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known-differences.txt")
known = {l.strip() for l in open(known_path) if l.strip() and not l.startswith("#")}
bad = set()
for path in sys.argv[1:]:
    for r in json.load(open(path)):
        if not r.get("ok") and r["query"] not in known:
            bad.add(f"{r['mode']} {r['query']}: {r.get('reason') or r.get('error')}")
for b in sorted(bad):
    print(f"unexpected difference: {b}")
sys.exit(1 if bad else 0)
