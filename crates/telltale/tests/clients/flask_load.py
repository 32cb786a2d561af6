"""Runs the two instrumented Flask services of flask_service.py (`front` calling `back`) as
subprocesses on ephemeral ports and sends N requests to `front`, every tenth failing
(`back` answers 500 for request i when i % 10 == 3, and so does `front`); then stops both with
SIGTERM, which flushes their spans and logs to Telltale.

usage: flask_load.py TELLTALE_URL N
Prints one JSON line: {"sent", "errors", "requests": [{"i", "status", "trace_id"}]}."""
import json
import os
import subprocess
import sys

import requests

url, n = sys.argv[1], int(sys.argv[2])
here = os.path.dirname(os.path.abspath(__file__))
service = os.path.join(here, "flask_service.py")


def start(*args):
    p = subprocess.Popen([sys.executable, service, *args], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.strip():
        p.kill()
        sys.exit(f"{args[0]} did not start")
    return p, f"http://127.0.0.1:{int(line)}"


back, back_url = start("back", url)
front, front_url = start("front", url, back_url)
done = []
try:
    session = requests.Session()
    for i in range(n):
        fail = i % 10 == 3
        res = session.get(f"{front_url}/order/{i}", params={"fail": "1" if fail else "0"}, timeout=30)
        want = 500 if fail else 200
        if res.status_code != want:
            sys.exit(f"request {i}: {res.status_code} (want {want}) {res.text}")
        done.append({"i": i, "status": res.status_code, "trace_id": res.json()["trace_id"]})
finally:
    for p in (front, back):
        p.terminate()
    codes = [p.wait(timeout=60) for p in (front, back)]
if codes != [0, 0]:
    sys.exit(f"services exited with {codes}")
print(json.dumps({"sent": len(done), "errors": sum(d["status"] == 500 for d in done), "requests": done}))
