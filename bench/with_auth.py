#!/usr/bin/env python3
"""Runs a ../shared/bench script (tsbench.py, logbench.py) with `Authorization: $BENCH_AUTHORIZATION`
added to every HTTP request it sends, so the same client measures a server with authentication on.
Standard library only.

    BENCH_AUTHORIZATION="Bearer tt_..." bench/with_auth.py ../shared/bench/tsbench.py ingest ...
"""
import http.client
import os
import runpy
import sys

AUTH = os.environ["BENCH_AUTHORIZATION"]
_request = http.client.HTTPConnection.request


def request(self, method, url, body=None, headers=None, **kw):
    headers = dict(headers or {})
    headers.setdefault("Authorization", AUTH)
    return _request(self, method, url, body=body, headers=headers, **kw)


http.client.HTTPConnection.request = request
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
