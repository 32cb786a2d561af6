"""Ships documents with the official Elasticsearch client's helpers.bulk, as an app would.
With TELLTALE_TOKEN set, it authenticates with a bearer token."""
import os
import sys

from elasticsearch import Elasticsearch, helpers

url, n = sys.argv[1], int(sys.argv[2])
token = os.environ.get("TELLTALE_TOKEN")
es = Elasticsearch(url, request_timeout=30, bearer_auth=token) if token else Elasticsearch(url, request_timeout=30)
info = es.info()
assert info["version"]["number"].startswith("8."), info
docs = (
    {
        "_index": "py-app",
        "_source": {
            "@timestamp": f"2025-11-22T06:00:{i:02d}.123456Z",
            "message": f"es line {i} \"quoted\" ✓",
            "level": "warn" if i % 2 else "info",
            "http": {"status": 200 + i},
        },
    }
    for i in range(n)
)
ok, errors = helpers.bulk(es, docs)
assert ok == n and not errors, (ok, errors)
print(f"bulk ok {ok}")
