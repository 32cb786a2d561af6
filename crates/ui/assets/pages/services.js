// Services (/services): per service its request rate, error share and p50/p95/p99, with a
// sparkline of the rate; per endpoint and per instance of one service (/services?service=x);
// sortable; a warning for services whose span names overflowed the series cap; and the service
// map drawn from the service-graph metrics (exact call counts since each edge appeared:
// increase() over a short history extrapolates, which reads as wrong counts on a map). Rates and errors come from PromQL over
// traces_spanmetrics_calls_total, percentiles from /api/v1/services/latency.
import { h, clear, svg } from '../lib/dom.js';
import { prom, traces } from '../lib/api.js';
import { fmtNs } from './traces.js';

export const title = 'Services';

const SERVER = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"';
const WINDOW = '5m';

const byLabel = (result, label) => new Map((result || []).map((r) => [r.metric[label] || '', Number(r.value[1])]));

function sparkline(values, w = 120, hgt = 24) {
  if (!values.length) return h('span', { class: 'sub' }, '–');
  const max = Math.max(...values, 1e-9);
  const pts = values.map((v, i) => `${(i * w / Math.max(values.length - 1, 1)).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(' ');
  return svg('svg', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, class: 'spark', role: 'img', 'aria-label': 'rate over the last hour' },
    svg('polyline', { points: pts, fill: 'none', stroke: 'var(--accent)', 'stroke-width': 1.5 }));
}

// Rows of one grouping: rate, error %, percentiles, sparkline.
export function mergeRows(label, rates, errors, latency, sparks) {
  const keys = new Set([...rates.keys(), ...latency.map((g) => g[label] || '')]);
  return [...keys].map((k) => {
    const lat = latency.find((g) => (g[label] || '') === k) || {};
    const rate = rates.get(k) || 0;
    const err = errors.get(k) || 0;
    return { key: k, rate, errPct: rate > 0 ? (100 * err) / rate : 0, p50: lat.p50, p95: lat.p95, p99: lat.p99, count: lat.count || 0, spark: sparks.get(k) || [] };
  });
}

async function table(label, matcher, group, service) {
  const end = Date.now(), start = end - 3600e3;
  const sel = `{${SERVER}${matcher}}`;
  const err = `{${SERVER},status_code="STATUS_CODE_ERROR"${matcher}}`;
  const [rates, errors, latency, spark] = await Promise.all([
    prom.query(`sum by (${label}) (rate(traces_spanmetrics_calls_total${sel}[${WINDOW}]))`),
    prom.query(`sum by (${label}) (rate(traces_spanmetrics_calls_total${err}[${WINDOW}]))`),
    traces.latency(group, service),
    prom.queryRange(`sum by (${label}) (rate(traces_spanmetrics_calls_total${sel}[${WINDOW}]))`, start, end, 60e3),
  ]);
  const sparks = new Map((spark.result || []).map((r) => [r.metric[label] || '', r.values.map((v) => Number(v[1]))]));
  return { rows: mergeRows(label, byLabel(rates.result, label), byLabel(errors.result, label), latency.groups || [], sparks), overflow: latency.overflow || [] };
}

function sortable(rows, columns, onRow) {
  let key = 'rate', desc = true;
  const tbody = h('tbody');
  const draw = () => {
    const sorted = [...rows].sort((a, b) => { const x = a[key] ?? -1, y = b[key] ?? -1; return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); });
    clear(tbody, sorted.map((r) => h('tr', null, columns.map(([k, , render]) => h('td', { class: k === 'key' || k === 'spark' ? '' : 'num' }, render(r, onRow))))));
  };
  const head = h('tr', null, columns.map(([k, name]) => h('th', { class: 'sortable', onclick: () => { desc = key === k ? !desc : true; key = k; draw(); } }, name)));
  draw();
  return h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl services' }, h('thead', null, head), tbody));
}

const secs = (v) => (v == null ? '–' : fmtNs(v * 1e9));
const COLS = (first) => [
  ['key', first, (r, link) => (link ? link(r.key) : r.key || '(none)')],
  ['rate', 'req/s', (r) => r.rate.toFixed(r.rate < 10 ? 2 : 0)],
  ['errPct', 'errors', (r) => h('span', { class: r.errPct >= 5 ? 'badge err' : '' }, r.errPct.toFixed(1) + ' %')],
  ['p50', 'p50', (r) => secs(r.p50)],
  ['p95', 'p95', (r) => secs(r.p95)],
  ['p99', 'p99', (r) => secs(r.p99)],
  ['spark', 'last hour', (r) => sparkline(r.spark)],
];

// The service map: nodes in columns by their depth from callers, edges with request counts.
export function layout(edges) {
  const nodes = [...new Set(edges.flatMap((e) => [e.client, e.server]))];
  const depth = new Map(nodes.map((n) => [n, 0]));
  for (let i = 0; i < nodes.length; i++) for (const e of edges) if (depth.get(e.server) < depth.get(e.client) + 1 && e.client !== e.server) depth.set(e.server, Math.min(depth.get(e.client) + 1, nodes.length));
  const cols = new Map();
  for (const n of nodes) { const d = depth.get(n); if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
  const pos = new Map();
  for (const [d, ns] of cols) ns.sort().forEach((n, i) => pos.set(n, { x: 20 + d * 200, y: 20 + i * 70 }));
  return { nodes, pos };
}

async function serviceMap() {
  const [calls, failed] = await Promise.all([
    prom.query('sum by (client, server) (traces_service_graph_request_total)'),
    prom.query('sum by (client, server) (traces_service_graph_request_failed_total)'),
  ]);
  const fails = new Map((failed.result || []).map((r) => [`${r.metric.client}→${r.metric.server}`, Number(r.value[1])]));
  const edges = (calls.result || []).map((r) => ({ client: r.metric.client, server: r.metric.server, n: Number(r.value[1]), failed: fails.get(`${r.metric.client}→${r.metric.server}`) || 0 }));
  if (!edges.length) return h('div', { class: 'sub' }, 'No calls between services yet: the map appears once client and server spans of two services meet.');
  const { nodes, pos } = layout(edges);
  const W = Math.max(...[...pos.values()].map((p) => p.x)) + 180, H = Math.max(...[...pos.values()].map((p) => p.y)) + 50;
  return svg('svg', { class: 'svcmap', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'service map' },
    ...edges.map((e) => {
      const a = pos.get(e.client), b = pos.get(e.server);
      return svg('g', null, svg('path', { class: 'edge' + (e.failed > 0 ? ' err' : ''), d: `M${a.x + 140},${a.y + 15} C${a.x + 170},${a.y + 15} ${b.x - 30},${b.y + 15} ${b.x},${b.y + 15}`, 'stroke-width': 1.5 }),
        svg('text', { x: (a.x + 140 + b.x) / 2, y: (a.y + b.y) / 2 + 10 }, `${Math.round(e.n)}${e.failed ? ` (${Math.round(e.failed)} failed)` : ''}`));
    }),
    ...nodes.map((n) => {
      const p = pos.get(n);
      return svg('g', null, svg('rect', { class: 'node', x: p.x, y: p.y, width: 140, height: 30, rx: 6 }), svg('text', { x: p.x + 8, y: p.y + 19 }, n.length > 20 ? n.slice(0, 19) + '…' : n));
    }));
}

export async function mount(root, ctx) {
  const service = ctx.params.get('service') || '';
  const body = h('div', null, h('div', { class: 'panel-msg' }, 'Loading…'));
  const map = h('div', { class: 'tbl-wrap' }, h('div', { class: 'sub' }, 'Loading…'));
  const warn = h('div');
  clear(root, h('div', { class: 'head' }, h('h1', null, service ? `Service ${service}` : 'Services'),
    service ? h('a', { href: '/services', 'data-nav': '' }, '← All services') : null, h('span', { class: 'spacer' }),
    h('a', { href: service ? `/traces?${new URLSearchParams({ q: `{ resource.service.name = ${JSON.stringify(service)} }` })}` : '/traces', 'data-nav': '' }, 'Traces →')),
  warn, h('div', { class: 'card card-body' }, body),
  service ? null : h('div', { class: 'card card-body', style: { marginTop: '12px' } }, h('h2', null, 'Service map'), h('div', { class: 'sub' }, 'Calls between services since each edge was first seen (failed calls in red).'), map));
  try {
    if (!service) {
      const t = await table('service', '', 'service', '');
      if (t.overflow.length) clear(warn, h('div', { class: 'alert-line' }, h('span', { class: 'badge warn' }, 'cardinality'), `Span names of ${t.overflow.map((o) => `${o.service} (${o.spans} spans)`).join(', ')} passed the per-service series cap; those spans are counted under span_name="__overflow__". Put ids in attributes, not span names.`));
      clear(body, t.rows.length ? sortable(t.rows, COLS('Service'), (k) => h('a', { href: `/services?service=${encodeURIComponent(k)}`, 'data-nav': '' }, k))
        : h('div', { class: 'empty' }, h('b', null, 'No services yet'), 'Send traces (OTLP to /v1/traces or port 4317, Zipkin to /api/v2/spans); each service shows here with its rate, errors and latency.'));
      clear(map, await serviceMap());
    } else {
      const m = `,service=${JSON.stringify(service)}`;
      const [ep, inst] = await Promise.all([table('span_name', m, 'span_name', service), table('instance', m, 'instance', service)]);
      clear(body, h('h2', null, 'Endpoints'), sortable(ep.rows, COLS('Endpoint'), (k) => h('a', { href: `/traces?${new URLSearchParams({ q: `{ resource.service.name = ${JSON.stringify(service)} && name = ${JSON.stringify(k)} }` })}`, 'data-nav': '' }, k)),
        h('h2', { style: { marginTop: '16px' } }, 'Instances'), sortable(inst.rows, COLS('Instance')));
    }
  } catch (e) {
    clear(body, h('div', { class: 'panel-msg error' }, e.message));
  }
  return null;
}
