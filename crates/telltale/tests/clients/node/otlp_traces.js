// Sends traces with the OpenTelemetry JS SDK (sdk-trace-base) and its OTLP/HTTP exporter, which
// posts OTLP/JSON to /v1/traces.
//
// usage: node otlp_traces.js URL N
//
// Each trace: a SERVER root `GET /cart/<i % 3>` with string, integer, double, boolean and array
// attributes and an event, a CLIENT child `SELECT carts` (an error when i % 4 == 0) and an
// INTERNAL grandchild `render`. Prints one JSON line: {"service", "traces": [{"trace_id",
// "spans": [{"span_id", "parent_span_id", "name", "kind", "attributes"}]}]}, every span as sent;
// exits non-zero when an export failed.
'use strict';

const { context, trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

const [url, n] = [process.argv[2], Number(process.argv[3])];
const service = 'node-shop';
const inner = new OTLPTraceExporter({ url: `${url}/v1/traces`, timeoutMillis: 10000 });
const results = [];
// Passes spans on and keeps each export's result: the batch processor only logs failures.
const exporter = {
  export(spans, done) {
    inner.export(spans, (result) => {
      results.push(result);
      done(result);
    });
  },
  shutdown: () => inner.shutdown(),
  forceFlush: () => inner.forceFlush(),
};
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': service, 'service.version': '3.4.5', 'host.name': 'node-box' }),
  spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 32, scheduledDelayMillis: 100 })],
});
const tracer = provider.getTracer('node-shop-tracer', '0.1.0');
const kinds = { [SpanKind.SERVER]: 'SPAN_KIND_SERVER', [SpanKind.CLIENT]: 'SPAN_KIND_CLIENT', [SpanKind.INTERNAL]: 'SPAN_KIND_INTERNAL' };

function sent(span, kind, attributes) {
  return {
    span_id: span.spanContext().spanId,
    parent_span_id: span.parentSpanContext ? span.parentSpanContext.spanId : '',
    name: span.name,
    kind: kinds[kind],
    attributes,
  };
}

async function main() {
  const traces = [];
  for (let i = 0; i < n; i++) {
    const rootAttrs = {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'cart.items': i,
      'cart.total': 9.75 + i,
      'cart.member': i % 2 === 1,
      'cart.skus': ['sku-1', 'sku-2'],
      'cart.note': 'ünïcode ✓',
    };
    const root = tracer.startSpan(`GET /cart/${i % 3}`, { kind: SpanKind.SERVER, attributes: rootAttrs });
    root.addEvent('cart loaded', { 'cart.size': i });
    const rootCtx = trace.setSpan(context.active(), root);
    const dbAttrs = { 'db.system.name': 'postgresql', 'db.query.text': `select * from carts where id = ${i}` };
    const db = tracer.startSpan('SELECT carts', { kind: SpanKind.CLIENT, attributes: dbAttrs }, rootCtx);
    const render = tracer.startSpan('render', { kind: SpanKind.INTERNAL, attributes: { 'template.name': 'cart.html' } }, trace.setSpan(rootCtx, db));
    render.end();
    if (i % 4 === 0) {
      db.setStatus({ code: SpanStatusCode.ERROR, message: 'connection reset' });
    }
    db.end();
    root.end();
    traces.push({
      trace_id: root.spanContext().traceId,
      spans: [
        sent(root, SpanKind.SERVER, rootAttrs),
        sent(db, SpanKind.CLIENT, dbAttrs),
        sent(render, SpanKind.INTERNAL, { 'template.name': 'cart.html' }),
      ],
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
  const failed = results.filter((r) => r.code !== 0);
  if (failed.length > 0 || results.length === 0) {
    console.error(`exports failed: ${JSON.stringify(failed.map((r) => String(r.error)))} of ${results.length}`);
    process.exit(1);
  }
  console.log(JSON.stringify({ service, exports: results.length, traces }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
