// Exports the same instruments as make_fixtures.py with the JavaScript OpenTelemetry SDK, whose
// OTLP/HTTP exporters speak JSON (exporter-metrics-otlp-http) and protobuf (exporter-metrics-otlp-proto).
// Run by make_fixtures.py: node make_fixtures_js.cjs URL json|proto (NODE_PATH points at node_modules).
const { MeterProvider, PeriodicExportingMetricReader } = require("@opentelemetry/sdk-metrics");
const { resourceFromAttributes } = require("@opentelemetry/resources");

async function main() {
  const [url, protocol] = process.argv.slice(2);
  const pkg = protocol === "json" ? "@opentelemetry/exporter-metrics-otlp-http" : "@opentelemetry/exporter-metrics-otlp-proto";
  const { OTLPMetricExporter } = require(pkg);
  const exporter = new OTLPMetricExporter({ url });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const resource = resourceFromAttributes({
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pod-1",
    "deployment.environment.name": "test",
    "host.name": "node-a",
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter("checkout.http", "1.2.3");

  const requests = meter.createCounter("http.server.requests", { unit: "{request}", description: "Requests served." });
  requests.add(3, { "http.request.method": "GET", "http.response.status_code": 200 });
  requests.add(2, { "http.request.method": "POST", "http.response.status_code": 500 });
  requests.add(1, { "http.request.method": "GET", "http.response.status_code": 200 });

  const sent = meter.createCounter("network.io", { unit: "By", description: "Bytes sent." });
  sent.add(1536.5, { direction: "transmit" });

  const queue = meter.createUpDownCounter("queue.items", { unit: "{item}", description: "Items waiting." });
  queue.add(5, { queue: "orders" });
  queue.add(-2, { queue: "orders" });

  const util = meter.createGauge("system.memory.utilization", { unit: "1", description: "Memory in use." });
  util.record(0.42, { state: "used" });

  const duration = meter.createHistogram("http.server.request.duration", {
    unit: "s",
    description: "Request latency.",
    advice: { explicitBucketBoundaries: [0.01, 0.1, 1.0, 5.0] },
  });
  for (const v of [0.005, 0.02, 0.3, 0.7, 7.0]) duration.record(v, { "http.route": "/cart" });

  const weird = provider.getMeter("odd-scope").createCounter("odd.name-with/slash", { unit: "ms" });
  weird.add(7, { "0key": "zero", "a.b": "dot", a_b: "under", flag: true, ratio: 0.5 });

  await provider.shutdown(); // flushes: exactly one export
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
