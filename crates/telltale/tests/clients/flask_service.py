"""One of two small Flask services instrumented with OpenTelemetry (Flask and requests
instrumentations, OTLP/HTTP protobuf exporter), run by flask_load.py.

usage: flask_service.py front|back TELLTALE_URL [BACK_URL]

`back` serves `GET /work/<i>`: waits i % 20 ms, answers 500 when `?fail=1`, else 200.
`front` serves `GET /order/<i>`: calls back's `/work/<i>` with requests (passing `fail` on),
logs one line per request through the OpenTelemetry logging handler (OTLP logs, with the
trace context), and answers back's status with `{"trace_id": ...}`.
Binds an ephemeral port on 127.0.0.1 and prints it as the first stdout line; on SIGTERM it
stops serving, flushes its spans and log records, and exits 0."""
import logging
import signal
import sys
import threading
import time

import requests
from flask import Flask, jsonify, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import format_trace_id
from werkzeug.serving import make_server

role, telltale = sys.argv[1], sys.argv[2]
resource = Resource.create({"service.name": role, "service.instance.id": f"{role}-1"})
provider = TracerProvider(resource=resource)
provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{telltale}/v1/traces", timeout=10), schedule_delay_millis=200)
)
trace.set_tracer_provider(provider)
app = Flask(role)
FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
flush = [provider]

if role == "back":

    @app.route("/work/<int:i>")
    def work(i):
        time.sleep((i % 20) / 1000)
        if request.args.get("fail") == "1":
            return "back failed on purpose", 500
        return "done"

else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    back = sys.argv[3]
    RequestsInstrumentor().instrument(tracer_provider=provider)
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{telltale}/v1/logs", timeout=10), schedule_delay_millis=200)
    )
    flush.append(logs)
    log = logging.getLogger("front")
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logs))
    session = requests.Session()

    @app.route("/order/<int:i>")
    def order(i):
        res = session.get(f"{back}/work/{i}", params={"fail": request.args.get("fail", "0")}, timeout=30)
        trace_id = format_trace_id(trace.get_current_span().get_span_context().trace_id)
        log.info("order %d handled status=%d", i, res.status_code)
        return jsonify({"trace_id": trace_id}), res.status_code


logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.port, flush=True)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
for p in flush:
    p.force_flush()
    p.shutdown()
