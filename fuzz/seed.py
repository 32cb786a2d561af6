#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/ with seeds from crates/ingest/testdata (the corpus itself is
not committed: libFuzzer grows it). Run from anywhere: python3 fuzz/seed.py"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "..", "crates", "ingest", "testdata")
sys.path.insert(0, os.path.join(TESTDATA, "prom_remote_write"))
from capture import snappy_decompress  # noqa: E402


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


for path in glob.glob(os.path.join(TESTDATA, "prom_remote_write", "*.snappy")):
    body = open(path, "rb").read()
    name = os.path.basename(path)
    put("prom_remote_write", name, body)
    put("prom_remote_write", name + ".raw", snappy_decompress(body))

# A small remote write 2.0 request: symbols, one series with two samples and metadata.
symbols = ["", "__name__", "up", "job", "node", "Whether the target is up."]
sample = b"\x09" + bytes(8) + b"\x10" + varint(1700000000000)
ts = field(1, bytes([1, 2, 3, 4])) + field(2, sample) + field(2, sample) + field(5, b"\x08\x02\x18\x05")
v2 = b"".join(field(4, s.encode()) for s in symbols) + field(5, ts)
put("prom_remote_write_v2", "small.raw", v2)

for path in glob.glob(os.path.join(TESTDATA, "exposition", "*")):
    if path.endswith((".prom", ".om.txt")):
        put("exposition", os.path.basename(path), (b"\x01" if path.endswith(".om.txt") else b"\x00") + open(path, "rb").read())
for path in glob.glob(os.path.join(TESTDATA, "influx", "*.lp")):
    put("influx", os.path.basename(path), b"\x00" + open(path, "rb").read())
for path in glob.glob(os.path.join(TESTDATA, "otlp", "*.pb")):
    put("otlp_metrics_proto", os.path.basename(path), open(path, "rb").read())
for path in glob.glob(os.path.join(TESTDATA, "otlp", "*.json")):
    put("otlp_metrics_json", os.path.basename(path), open(path, "rb").read())
print("seeded", os.path.join(HERE, "corpus"))
