"""Logs through python-logging-loki's handler (Loki push, JSON), as a Python app would.
With TELLTALE_TOKEN set, it authenticates with Basic, the token as the password."""
import logging
import os
import sys

import logging_loki

url, n = sys.argv[1], int(sys.argv[2])
token = os.environ.get("TELLTALE_TOKEN")
handler = logging_loki.LokiHandler(url=f"{url}/loki/api/v1/push", tags={"app": "py-loki"}, version="1",
                                   auth=("promtail", token) if token else None)
log = logging.getLogger("loki-test")
log.setLevel(logging.INFO)
log.addHandler(handler)
for i in range(n):
    log.error("loki line %d ✓", i, extra={"tags": {"kind": "test"}})
print("loki ok")
