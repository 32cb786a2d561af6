#!/usr/bin/env python3
"""Writes exposition fixtures with the official Python client (pip install prometheus_client).

Both text formats from one registry: `python_client.prom` (0.0.4) and `python_client.om.txt`
(OpenMetrics 1.0, with `_created` samples and an exemplar). Values and created timestamps are
fixed so the output is stable. Run: python3 crates/ingest/testdata/exposition/generate.py
"""
import os
import time
from unittest import mock

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

HERE = os.path.dirname(os.path.abspath(__file__))

with mock.patch.object(time, "time", return_value=1700000000.25):
    reg = CollectorRegistry()
    c = Counter("http_requests", "Requests served.", ["method", "path"], registry=reg)
    c.labels("GET", "/api/v1").inc(1027)
    c.labels("POST", 'C:\\dir\\"quoted"\nnewline').inc(3)
    c.labels("PUT", "/x").inc(2, exemplar={"trace_id": "abc123"})
    g = Gauge("queue_depth_bytes", "Bytes queued.\nSecond help line with \\ backslash.", unit="bytes",
              registry=reg)
    g.set(float("nan"))
    Gauge("temperature_celsius", "Room temperature.", registry=reg).set(float("-inf"))
    h = Histogram("request_duration_seconds", "Request latency.", buckets=(0.1, 1.0), registry=reg)
    for v in (0.05, 0.5, 5):
        h.observe(v)
    s = Summary("payload_size_bytes", "Payload sizes.", registry=reg)
    s.observe(512)
    Info("build", "Build information.", registry=reg).info({"version": "1.2.3", "revision": "deadbeef"})
    Enum("task_state", "Task state.", states=["starting", "running"], registry=reg).state("running")

    with open(os.path.join(HERE, "python_client.prom"), "wb") as f:
        f.write(generate_latest(reg))
    with open(os.path.join(HERE, "python_client.om.txt"), "wb") as f:
        f.write(generate_openmetrics(reg))
print("wrote python_client.prom and python_client.om.txt")
