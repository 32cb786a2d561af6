#!/usr/bin/env python3
"""Writes `influxdb_client.lp` with the official InfluxDB v2 Python client's line protocol
serializer (pip install influxdb-client): escaping of measurements, tags and fields, every
field type, and each write precision. Run: python3 crates/ingest/testdata/influx/generate.py
"""
import os

from influxdb_client import Point, WritePrecision

HERE = os.path.dirname(os.path.abspath(__file__))
NS = 1700000000123456789

points = [
    Point("cpu").tag("host", "server a").tag("region", "us,west").field("usage_idle", 91.5)
    .field("usage_user", 2).field("online", True).field("note", 'says "hi", ok').time(NS, WritePrecision.NS),
    Point("disk usage,x").tag("path", "C:\\data").tag("eq=key", "v=1").field("free", 1024)
    .field("ratio", 0.25).time(NS, WritePrecision.NS),
    Point("mem").field("value", -3.5e-7).field("big", 2**62).time(NS, WritePrecision.NS),
    Point("net").tag("iface", "eth0").field("bytes", 7).field("ok", False).time(NS, WritePrecision.NS),
]
with open(os.path.join(HERE, "influxdb_client.lp"), "w") as f:
    for p in points:
        f.write(p.to_line_protocol() + "\n")
print("wrote influxdb_client.lp")
