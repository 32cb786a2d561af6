"""Sends Zipkin v2 JSON spans with py-zipkin to `POST /api/v2/spans`.

usage: zipkin_spans.py URL N

Each trace: service `web` serves `GET /orders` (SERVER) and calls `inventory` (CLIENT); the
`inventory` service joins the trace from the B3 headers the client made (SERVER, in another
thread as a real callee would be) and runs `db select` under it. Even traces use 128-bit ids.
Prints one JSON line: {"spans": [{"traceId", "id", "parentId", "name", "service", "kind"}]},
every span as py-zipkin encoded and sent it; exits non-zero when a POST was not answered 202."""
import json
import sys
import threading

import requests
from py_zipkin import Encoding, Kind
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import ZipkinAttrs, create_http_headers_for_new_span, zipkin_span

url, n = sys.argv[1], int(sys.argv[2])
sent = []
errors = []
lock = threading.Lock()


class Transport(BaseTransportHandler):
    def get_max_payload_bytes(self):
        return None

    def send(self, payload):
        res = requests.post(
            f"{url}/api/v2/spans", data=payload, headers={"Content-Type": "application/json"}, timeout=30
        )
        with lock:
            if res.status_code != 202:
                errors.append(f"{res.status_code} {res.text}")
            for s in json.loads(payload):
                sent.append(
                    {
                        "traceId": s["traceId"],
                        "id": s["id"],
                        "parentId": s.get("parentId"),
                        "name": s["name"],
                        "service": s["localEndpoint"]["serviceName"],
                        "kind": s.get("kind"),
                    }
                )


transport = Transport()


def inventory(headers, i):
    attrs = ZipkinAttrs(
        trace_id=headers["X-B3-TraceId"],
        span_id=headers["X-B3-SpanId"],
        parent_span_id=headers["X-B3-ParentSpanId"],
        flags=headers["X-B3-Flags"],
        is_sampled=headers["X-B3-Sampled"] == "1",
    )
    with zipkin_span(
        service_name="inventory",
        span_name="GET /stock",
        zipkin_attrs=attrs,
        transport_handler=transport,
        kind=Kind.SERVER,
        encoding=Encoding.V2_JSON,
        host="127.0.0.2",
        port=9090,
    ):
        with zipkin_span(
            service_name="inventory", span_name="db select", binary_annotations={"db.statement": f"select {i}"}
        ):
            pass


for i in range(n):
    with zipkin_span(
        service_name="web",
        span_name="GET /orders",
        transport_handler=transport,
        sample_rate=100.0,
        kind=Kind.SERVER,
        encoding=Encoding.V2_JSON,
        use_128bit_trace_id=i % 2 == 0,
        binary_annotations={"http.path": "/orders", "order.n": str(i)},
        host="127.0.0.1",
        port=8080,
    ) as root:
        root.add_annotation("order validated")
        with zipkin_span(service_name="web", span_name="call inventory", kind=Kind.CLIENT):
            callee = threading.Thread(target=inventory, args=(create_http_headers_for_new_span(), i))
            callee.start()
            callee.join()

if errors:
    sys.exit(f"POST /api/v2/spans failed: {errors[:3]}")
print(json.dumps({"spans": sent}))
