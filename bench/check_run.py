#!/usr/bin/env python3
"""Fails (exit 1) unless Telltale's part of a run_baseline.sh run succeeded: every sample of its
ingest accepted, and its landing check (`tsbench.py check`) passed. run_baseline.sh itself carries
on past failures, as it also runs peers that may fail a check.

    bench/check_run.py OUTDIR TELLTALE_PORT
"""
import json
import sys

out, port = sys.argv[1], sys.argv[2]
ing = json.load(open(f"{out}/telltale.ingest.json"))
if ing["errors"] or ing["samples_accepted"] != ing["samples_sent"]:
    sys.exit(f"telltale ingest: {ing['samples_accepted']}/{ing['samples_sent']} samples accepted, "
             f"errors {ing['errors_by_status']}")
# run.log holds each command after "+ " and its output after it.
steps = open(f"{out}/run.log").read().split("] + ")
checks = [s for s in steps if "tsbench.py check" in s.split("\n")[0]
          and f"127.0.0.1:{port}" in s.split("\n")[0]]
if not checks or "CHECK PASSED" not in checks[-1]:
    sys.exit("telltale's landing check did not pass (see run.log)")
print("telltale: every sample accepted, landing check passed")
