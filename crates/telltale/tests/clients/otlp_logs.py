"""Sends log records with the OpenTelemetry Python SDK's OTLP/HTTP exporter.
With TELLTALE_TOKEN set, it sends `Authorization: Bearer` (OTEL_EXPORTER_OTLP_HEADERS's way)."""
import logging
import os
import sys

from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

url, n = sys.argv[1], int(sys.argv[2])
provider = LoggerProvider(resource=Resource.create({"service.name": "py-otel", "host.name": "box-1"}))
set_logger_provider(provider)
token = os.environ.get("TELLTALE_TOKEN")
headers = {"authorization": f"Bearer {token}"} if token else None
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers)))
log = logging.getLogger("otel-test")
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
for i in range(n):
    log.warning("otlp line %d ✓", i, extra={"order.id": i})
provider.force_flush()
provider.shutdown()
print("otlp ok")
