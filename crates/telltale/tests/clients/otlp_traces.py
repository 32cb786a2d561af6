"""Sends traces with the OpenTelemetry Python SDK's OTLP exporter (HTTP protobuf or gRPC, gzip
or not), then reads each trace back from Tempo's protobuf trace-by-id API
(`GET /api/traces/<id>`, `Accept: application/protobuf`) and compares every span, byte for
byte, with what the SDK's own encoder (`trace_encoder.encode_spans`) makes of the same
finished spans. Resources and scopes are compared too.

usage: otlp_traces.py URL N http|grpc gzip|none [GRPC_HOST:PORT]

Each trace i has a SERVER root with attributes of every type and an event, a CLIENT child with
a link to the previous trace's root, an INTERNAL grandchild that records an exception and is an
error when i % 3 == 0, and a PRODUCER and a CONSUMER span. Prints one JSON line:
{"service", "traces": [hex ids], "spans", "compared", "mismatches": [text], "exports": [results]}.
Exits non-zero only when the script itself fails (an export failed, a read was not 200)."""
import json
import sys

import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, format_trace_id

url, n, protocol, compression = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
gzip = compression == "gzip"
service = f"py-traces-{protocol}-{compression}"

if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces",
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        timeout=10,
    )
elif protocol == "grpc":
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(
        endpoint=sys.argv[5],
        insecure=True,
        compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
        timeout=10,
    )
else:
    sys.exit(f"unknown protocol {protocol}")


class Recording(SpanExporter):
    """Passes spans on and keeps every export's result: the batch processor only logs them."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append((len(spans), result))
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


resource = Resource.create(
    {
        "service.name": service,
        "service.version": "2.0.1",
        "deployment.environment": "test",
        "host.cpu.count": 2,
        "process.load": 0.25,
        "process.tags": ["a", "b"],
    },
    schema_url="https://opentelemetry.io/schemas/1.21.0",
)
provider = TracerProvider(resource=resource)
kept = InMemorySpanExporter()
sent = Recording(exporter)
provider.add_span_processor(SimpleSpanProcessor(kept))
provider.add_span_processor(BatchSpanProcessor(sent, max_export_batch_size=64, schedule_delay_millis=100))
tracer = provider.get_tracer(
    "checkout", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.21.0", attributes={"scope.kind": "test"}
)


def fail_validation(i):
    raise ValueError(f"card {i} declined ✗")


trace_ids = []
previous = None
for i in range(n):
    with tracer.start_as_current_span(
        f"GET /checkout/{i % 4}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 500 if i % 3 == 0 else 200,
            "order.id": i,
            "order.total": 12.5 + i,
            "order.gift": i % 2 == 0,
            "order.note": "ünïcode ✓ \"quoted\"",
            "order.items": ["apple", "pear"],
            "order.counts": [1, 2, 3],
            "order.weights": [0.5, 1.25],
            "order.flags": [True, False],
            "order.empty": "",
        },
    ) as root:
        trace_ids.append(format_trace_id(root.get_span_context().trace_id))
        root.add_event("cache miss", {"cache.key": f"cart:{i}", "cache.size": 3})
        links = [] if previous is None else [Link(previous, {"link.why": "retry of previous", "link.n": i})]
        with tracer.start_as_current_span("charge-card", kind=SpanKind.CLIENT, links=links) as client:
            client.set_attribute("peer.service", "payments")
            client.set_attribute("server.port", 8443)
            with tracer.start_as_current_span("validate", kind=SpanKind.INTERNAL) as internal:
                if i % 3 == 0:
                    try:
                        fail_validation(i)
                    except ValueError as e:
                        internal.record_exception(e, attributes={"validation.rule": "luhn"})
                        internal.set_status(Status(StatusCode.ERROR, "card declined"))
                else:
                    internal.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("publish receipt", kind=SpanKind.PRODUCER) as producer:
            producer.set_attribute("messaging.destination.name", "receipts")
        with tracer.start_as_current_span("consume receipt", kind=SpanKind.CONSUMER):
            pass
        if i % 3 == 0:
            root.set_status(Status(StatusCode.ERROR, "checkout failed"))
        previous = root.get_span_context()

provider.force_flush()
provider.shutdown()
failed = [(count, str(r)) for count, r in sent.results if r != SpanExportResult.SUCCESS]
if failed:
    sys.exit(f"exports failed: {failed}")


def canonical(message):
    return message.SerializeToString(deterministic=True)


def by_span_id(request):
    """{span_id: (resource bytes, resource schema_url, scope bytes, scope schema_url, span bytes, span)}

    The one normalization: the SDK writes an empty `status {}` for an unset status, which a
    store that keeps the status as a value (not as "a message was present") reads back as no
    status field. Both mean the default status, so an empty status is cleared on both sides."""
    out = {}
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                if span.HasField("status") and span.status.ByteSize() == 0:
                    span.ClearField("status")
                out[span.span_id.hex()] = (
                    canonical(rs.resource),
                    rs.schema_url,
                    canonical(ss.scope),
                    ss.schema_url,
                    canonical(span),
                    span,
                )
    return out


want = by_span_id(encode_spans(kept.get_finished_spans()))
mismatches = []
compared = 0
for trace_id in trace_ids:
    res = requests.get(f"{url}/api/traces/{trace_id}", headers={"Accept": "application/protobuf"}, timeout=30)
    if res.status_code != 200:
        sys.exit(f"GET /api/traces/{trace_id}: {res.status_code} {res.text}")
    got_req = ExportTraceServiceRequest()
    got_req.ParseFromString(res.content)
    got = by_span_id(got_req)
    expected = {k: v for k, v in want.items() if v[5].trace_id.hex() == trace_id}
    if set(got) != set(expected):
        mismatches.append(f"trace {trace_id}: span ids {sorted(got)} != sent {sorted(expected)}")
        continue
    for span_id, w in expected.items():
        g = got[span_id]
        compared += 1
        for what, index in (("resource", 0), ("resource schema_url", 1), ("scope", 2), ("scope schema_url", 3)):
            if g[index] != w[index]:
                mismatches.append(f"span {span_id} {what}: got {g[index]!r} want {w[index]!r}")
        if g[4] != w[4]:
            mismatches.append(f"span {span_id} ({w[5].name}): got\n{g[5]}\nwant\n{w[5]}")

print(
    json.dumps(
        {
            "service": service,
            "traces": trace_ids,
            "spans": len(want),
            "compared": compared,
            "mismatches": mismatches[:10],
            "mismatch_count": len(mismatches),
            "exports": len(sent.results),
        }
    )
)
