// Traces (/traces): search by service, operation, attributes, duration and status with a TraceQL
// box (completing scopes, attribute names and values), a result list with durations and error
// marks; and the trace view (/traces/<id>): a waterfall with span details, events, links, the
// critical path, and the trace's logs inline. Everything through Tempo's and Loki's APIs.
import { h, clear } from '../lib/dom.js';
import { traces, loki } from '../lib/api.js';
import { fmtTime } from '../lib/format.js';
import { picker, resolve } from '../lib/time.js';

export const title = 'Traces';

// A duration in nanoseconds, short.
export function fmtNs(ns) {
  const n = Number(ns);
  if (n >= 1e9) return (n / 1e9).toFixed(n >= 1e10 ? 1 : 2) + ' s';
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 1 : 2) + ' ms';
  if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 1 : 2) + ' µs';
  return n + ' ns';
}

// The TraceQL a form means.
export function buildQuery({ service, operation, minDuration, errors, extra }) {
  const c = [];
  if (service) c.push(`resource.service.name = ${JSON.stringify(service)}`);
  if (operation) c.push(`name = ${JSON.stringify(operation)}`);
  if (minDuration) c.push(`duration >= ${minDuration}`);
  if (errors) c.push('status = error');
  const base = `{ ${c.join(' && ')} }`.replace('{  }', '{}');
  return extra ? (c.length ? `${base} && ${extra}` : extra) : base;
}

const INTRINSICS = ['name', 'status', 'kind', 'duration', 'statusMessage', 'rootName', 'rootServiceName', 'traceDuration'];
const SCOPES = ['span.', 'resource.', '.'];

// Completions for the TraceQL box at `pos`: scopes and intrinsics after `{`, `&&` or `||`;
// attribute names after a scope; values after `name =`.
export function completeAt(text, pos, tags) {
  const before = text.slice(0, pos);
  const val = /((?:\b(?:span|resource))?\.[\w.]+|\bname|\bstatus|\bkind)\s*(=|!=)\s*"?([^"]*)$/.exec(before);
  if (val) return { kind: 'value', attr: val[1], prefix: val[3] };
  const attr = /(\b(?:span|resource)|)\.([\w.]*)$/.exec(before);
  if (attr) {
    const scope = attr[1] || 'span';
    const names = [...new Set((tags.find((s) => s.name === scope) || { tags: [] }).tags.concat(attr[1] ? [] : (tags.find((s) => s.name === 'resource') || { tags: [] }).tags))];
    return { kind: 'name', items: names.filter((n) => n.startsWith(attr[2])).sort(), prefix: attr[2] };
  }
  const word = /([\w:]*)$/.exec(before)[1];
  if (/(^|[{(&|]\s*)[\w:]*$/.test(before)) return { kind: 'start', items: [...SCOPES, ...INTRINSICS].filter((x) => x.startsWith(word)), prefix: word };
  return { kind: 'none', items: [], prefix: '' };
}

function queryBox(value, onRun) {
  const ta = h('textarea', { class: 'mono', rows: 2, spellcheck: 'false', 'aria-label': 'TraceQL', placeholder: '{ resource.service.name = "api" && status = error }', style: { width: '100%' } });
  ta.value = value;
  const list = h('div', { class: 'complete', hidden: true, role: 'listbox' });
  let tags = [];
  traces.tags().then((t) => { tags = t; }).catch(() => {});
  const insert = (text, prefix) => {
    const pos = ta.selectionStart;
    ta.value = ta.value.slice(0, pos - prefix.length) + text + ta.value.slice(pos);
    ta.selectionStart = ta.selectionEnd = pos - prefix.length + text.length;
    list.hidden = true;
    ta.focus();
  };
  const show = (items, prefix, quote) => {
    clear(list, items.slice(0, 50).map((x) => h('div', { class: 'opt', role: 'option', onmousedown: (e) => { e.preventDefault(); insert(quote ? `"${x}"` : x, prefix); } }, x)));
    list.hidden = items.length === 0;
  };
  ta.addEventListener('input', async () => {
    const c = completeAt(ta.value, ta.selectionStart, tags);
    if (c.kind === 'value') {
      const vals = await traces.tagValues(c.attr.replace(/^\./, '')).catch(() => []);
      const before = ta.value.slice(0, ta.selectionStart);
      show(vals.filter((v) => v.startsWith(c.prefix)), before.endsWith('"' + c.prefix) ? '"' + c.prefix : c.prefix, true);
    } else show(c.items, c.prefix, false);
  });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey || !e.shiftKey)) { e.preventDefault(); list.hidden = true; onRun(ta.value.trim()); }
    if (e.key === 'Escape') list.hidden = true;
  });
  ta.addEventListener('blur', () => { list.hidden = true; });
  return { el: h('div', { class: 'editor' }, ta, list), get value() { return ta.value; }, set value(v) { ta.value = v; } };
}

async function searchPage(root, ctx) {
  const p = ctx.params;
  const st = { q: p.get('q') || '{}', from: p.get('from') || 'now-1h', to: p.get('to') || 'now', limit: p.get('limit') || '20' };
  const url = () => `/traces?${new URLSearchParams({ q: st.q, from: st.from, to: st.to })}`;
  const results = h('div', null, h('div', { class: 'panel-msg' }, 'Loading…'));
  const serviceSel = h('select', { 'aria-label': 'Service' }, h('option', { value: '' }, 'any service'));
  const opSel = h('select', { 'aria-label': 'Operation' }, h('option', { value: '' }, 'any operation'));
  const minDur = h('input', { type: 'text', placeholder: 'min duration, e.g. 100ms', size: 14, 'aria-label': 'Minimum duration' });
  const errors = h('input', { type: 'checkbox', 'aria-label': 'Errors only' });
  const box = queryBox(st.q, (q) => { st.q = q || '{}'; ctx.nav(url(), false, true); run(); });
  const fromForm = () => {
    box.value = buildQuery({ service: serviceSel.value, operation: opSel.value, minDuration: minDur.value.trim(), errors: errors.checked });
    st.q = box.value;
    ctx.nav(url(), false, true);
    run();
  };
  serviceSel.onchange = async () => {
    clear(opSel, h('option', { value: '' }, 'any operation'));
    if (serviceSel.value) for (const o of await traces.operations(serviceSel.value).catch(() => [])) opSel.append(h('option', { value: o.name }, `${o.name} (${o.spanKind})`));
    fromForm();
  };
  opSel.onchange = fromForm;
  errors.onchange = fromForm;
  minDur.onchange = fromForm;
  const toolbar = h('div', { class: 'toolbar' });
  const renderPicker = () => clear(toolbar, picker(st, (n) => { Object.assign(st, n); ctx.nav(url(), false, true); renderPicker(); run(); }, { refresh: false }));
  renderPicker();
  clear(root, h('div', { class: 'head' }, h('h1', null, 'Traces'), h('a', { href: '/services', 'data-nav': '' }, 'Services →'), h('span', { class: 'spacer' }), toolbar),
    h('div', { class: 'card card-body', style: { marginBottom: '12px' } },
      h('div', { class: 'toolbar' }, serviceSel, opSel, minDur, h('label', null, errors, ' errors only')),
      h('div', { class: 'query-row', style: { marginTop: '8px' } }, box.el,
        h('button', { type: 'button', class: 'primary', onclick: () => { st.q = box.value.trim() || '{}'; ctx.nav(url(), false, true); run(); } }, 'Search'))),
    h('div', { class: 'card card-body' }, results));
  traces.services().then((ss) => ss.forEach((s) => serviceSel.append(h('option', { value: s }, s)))).catch(() => {});

  let abort = null;
  async function run() {
    if (abort) abort.abort();
    abort = new AbortController();
    clear(results, h('div', { class: 'panel-msg' }, 'Searching…'));
    let r;
    try {
      r = await traces.search(st.q, resolve(st.from), resolve(st.to), st.limit, abort.signal);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(results, h('div', { class: 'panel-msg error' }, e.missing ? 'No trace API on this server.' : e.message));
      return;
    }
    const list = r.traces || [];
    if (!list.length) { clear(results, h('div', { class: 'empty' }, h('b', null, 'No traces match'), 'Widen the time range or the query. Traces arrive at /v1/traces (OTLP), port 4317 (OTLP/gRPC) and /api/v2/spans (Zipkin).')); return; }
    const longest = Math.max(...list.map((t) => t.durationMs || 0), 1);
    clear(results, h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl traces' },
      h('thead', null, h('tr', null, ['Trace', 'Root', 'Start', 'Duration', 'Spans', ''].map((x) => h('th', null, x)))),
      h('tbody', null, list.map((t) => {
        const stats = Object.values(t.serviceStats || {});
        const errs = stats.reduce((a, s) => a + (s.errorCount || 0), 0);
        const spans = stats.reduce((a, s) => a + (s.spanCount || 0), 0);
        return h('tr', null,
          h('td', { class: 'mono' }, h('a', { href: `/traces/${t.traceID}`, 'data-nav': '' }, t.traceID)),
          h('td', null, h('b', null, t.rootServiceName), ' ', t.rootTraceName, errs ? h('span', { class: 'badge err', title: `${errs} spans with errors` }, `${errs} errors`) : null),
          h('td', null, fmtTime(Number(BigInt(t.startTimeUnixNano) / 1000000n))),
          h('td', { class: 'num' }, fmtNs((t.durationMs || 0) * 1e6)),
          h('td', { class: 'num' }, spans || ''),
          h('td', { style: { width: '25%' } }, h('div', { class: 'track' }, h('div', { class: 'fill' + (errs ? ' err' : ''), style: { width: `${Math.max(1, 100 * (t.durationMs || 0) / longest)}%` } }))));
      })))));
  }
  run();
  return { unmount: () => abort && abort.abort() };
}

// The spans of an OTLP JSON trace, flat, with their service.
export function flatten(resourceSpans) {
  const out = [];
  for (const rs of resourceSpans || []) {
    const res = Object.fromEntries((rs.resource?.attributes || []).map((a) => [a.key, anyValue(a.value)]));
    for (const ss of rs.scopeSpans || []) for (const s of ss.spans || []) {
      out.push({ id: s.spanId, parent: s.parentSpanId || '', name: s.name, kind: s.kind || 0, service: res['service.name'] || 'unknown_service',
        start: BigInt(s.startTimeUnixNano || 0), end: BigInt(s.endTimeUnixNano || 0), status: s.status?.code || 0, message: s.status?.message || '',
        attrs: s.attributes || [], events: s.events || [], links: s.links || [], resource: rs.resource?.attributes || [], scope: ss.scope?.name || '' });
    }
  }
  return out;
}

export function anyValue(v) {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('arrayValue' in v) return '[' + (v.arrayValue.values || []).map(anyValue).join(', ') + ']';
  if ('kvlistValue' in v) return '{' + (v.kvlistValue.values || []).map((kv) => `${kv.key}: ${anyValue(kv.value)}`).join(', ') + '}';
  if ('bytesValue' in v) return v.bytesValue;
  return '';
}

// Depth-first order with depths; orphans (parent not in the trace) become roots.
export function treeOrder(spans) {
  const byId = new Map(spans.map((s) => [s.id, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent && byId.has(s.parent)) { if (!kids.has(s.parent)) kids.set(s.parent, []); kids.get(s.parent).push(s); } else roots.push(s);
  }
  const cmp = (a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
  const out = [];
  const walk = (s, depth) => { out.push({ span: s, depth }); for (const k of (kids.get(s.id) || []).sort(cmp)) walk(k, depth + 1); };
  for (const r of roots.sort(cmp)) walk(r, 0);
  return { order: out, kids };
}

// The critical path: from each root, the child that ended last, down to a leaf.
export function criticalPath(spans, kids) {
  const on = new Set();
  const byId = new Map(spans.map((s) => [s.id, s]));
  for (const s of spans.filter((x) => !x.parent || !byId.has(x.parent))) {
    let cur = s;
    while (cur) {
      on.add(cur.id);
      const ks = kids.get(cur.id) || [];
      cur = ks.reduce((best, k) => (!best || k.end > best.end ? k : best), null);
    }
  }
  return on;
}

const KINDS = ['', 'internal', 'server', 'client', 'producer', 'consumer'];
const MAX_ROWS = 1500;

async function traceView(root, ctx, id) {
  clear(root, h('div', { class: 'panel-msg' }, 'Loading trace…'));
  let r;
  try { r = await traces.trace(id); } catch (e) {
    clear(root, h('div', { class: 'card empty' }, h('b', null, e.missing ? 'Trace not found' : 'Cannot load the trace'), e.message, h('a', { href: '/traces', 'data-nav': '' }, 'Search traces')));
    return null;
  }
  const spans = flatten(r.trace?.resourceSpans);
  const t0 = spans.reduce((m, s) => (s.start < m ? s.start : m), spans[0].start);
  const t1 = spans.reduce((m, s) => (s.end > m ? s.end : m), spans[0].end);
  const total = Number(t1 - t0) || 1;
  const { order, kids } = treeOrder(spans);
  const critical = criticalPath(spans, kids);
  const services = [...new Set(spans.map((s) => s.service))];
  const errs = spans.filter((s) => s.status === 2).length;
  const collapsed = new Set();
  const detail = h('div', { class: 'card card-body span-detail' }, h('div', { class: 'sub' }, 'Click a span for its details.'));
  const rows = h('div', { class: 'waterfall', role: 'tree' });
  let showAll = false;
  const pct = (v) => `${(100 * Number(v - t0) / total).toFixed(3)}%`;

  const showDetail = (s) => {
    const kv = (list) => h('dl', { class: 'kv' }, list.map((a) => [h('dt', null, a.key), h('dd', null, anyValue(a.value))]));
    clear(detail, h('h2', null, s.name), h('div', { class: 'sub' }, `${s.service} · ${KINDS[s.kind] || 'unspecified'} · ${fmtNs(s.end - s.start)} · span ${s.id}`),
      s.status === 2 ? h('div', { class: 'badge err' }, 'error', s.message ? ': ' + s.message : '') : null,
      h('h3', null, 'Attributes'), kv(s.attrs),
      s.events.length ? [h('h3', null, 'Events'), s.events.map((e) => h('div', { class: 'event' }, h('b', null, e.name), ' +', fmtNs(BigInt(e.timeUnixNano || 0) - s.start), kv(e.attributes || [])))] : null,
      s.links.length ? [h('h3', null, 'Links'), s.links.map((l) => h('div', null, h('a', { href: `/traces/${l.traceId}`, 'data-nav': '' }, `${l.traceId} / ${l.spanId}`)))] : null,
      h('h3', null, 'Resource'), kv(s.resource), s.scope ? h('div', { class: 'sub' }, 'Scope: ' + s.scope) : null);
  };

  const hidden = (depthRows) => {
    const out = [];
    let skipDepth = -1;
    for (const row of depthRows) {
      if (skipDepth >= 0 && row.depth > skipDepth) continue;
      skipDepth = collapsed.has(row.span.id) ? row.depth : -1;
      out.push(row);
    }
    return out;
  };
  const draw = () => {
    const visible = hidden(order);
    const shown = showAll ? visible : visible.slice(0, MAX_ROWS);
    clear(rows, shown.map(({ span: s, depth }) => {
      const hasKids = (kids.get(s.id) || []).length > 0;
      return h('div', { class: 'wf-row' + (critical.has(s.id) ? ' critical' : ''), role: 'treeitem', onclick: () => showDetail(s) },
        h('div', { class: 'wf-name', style: { paddingLeft: `${depth * 14}px` } },
          hasKids ? h('button', { class: 'caret small', type: 'button', 'aria-label': 'Collapse', onclick: (e) => { e.stopPropagation(); if (collapsed.has(s.id)) collapsed.delete(s.id); else collapsed.add(s.id); draw(); } }, collapsed.has(s.id) ? '▸' : '▾') : h('span', { class: 'caret' }),
          h('b', null, s.service), ' ', s.name, s.status === 2 ? h('span', { class: 'badge err' }, '!') : null),
        h('div', { class: 'wf-track' }, h('div', { class: 'wf-bar' + (s.status === 2 ? ' err' : ''), style: { left: pct(s.start), width: `max(2px, ${(100 * Number(s.end - s.start) / total).toFixed(3)}%)` }, title: fmtNs(s.end - s.start) }),
          h('span', { class: 'wf-dur' }, fmtNs(s.end - s.start))));
    }), visible.length > shown.length ? h('button', { type: 'button', onclick: () => { showAll = true; draw(); } }, `Show all ${visible.length} spans`) : null);
  };

  const logs = h('div', { class: 'loglines' }, h('div', { class: 'sub' }, 'Loading logs…'));
  clear(root, h('div', { class: 'head' }, h('h1', null, spans.find((s) => !s.parent)?.name || 'Trace'), h('span', { class: 'mono sub' }, id),
    h('span', { class: 'spacer' }), h('a', { href: '/traces', 'data-nav': '' }, '← Search')),
  h('div', { class: 'sub', style: { marginBottom: '10px' } }, `${spans.length} spans · ${services.length} services · ${fmtNs(total)} · started ${fmtTime(Number(t0 / 1000000n))}`,
    errs ? h('span', { class: 'badge err' }, `${errs} errors`) : null, r.status === 'PARTIAL' ? h('span', { class: 'badge warn' }, 'partial: ' + (r.message || '')) : null,
    ' · critical path highlighted'),
  h('div', { class: 'trace-layout' }, h('div', { class: 'card card-body' }, rows), detail),
  h('div', { class: 'card card-body', style: { marginTop: '12px' } }, h('h2', null, 'Logs of this trace'), logs));
  draw();

  // The trace's logs: lines of its services carrying its trace_id, around its time.
  const sel = `{service_name=~${JSON.stringify(services.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'))}} | trace_id=${JSON.stringify(id)}`;
  const startMs = Number(t0 / 1000000n) - 3600e3, endMs = Number(t1 / 1000000n) + 3600e3;
  loki.queryRange(sel, startMs, endMs, { limit: 200, direction: 'forward' }).then((d) => {
    const lines = (d.result || []).flatMap((st) => st.values.map(([ts, line]) => ({ ms: Number(BigInt(ts) / 1000000n), line, labels: st.stream })));
    lines.sort((a, b) => a.ms - b.ms);
    clear(logs, lines.length ? lines.map((l) => h('div', { class: 'logline' }, h('div', { class: 'l' }, h('span', { class: 'ts' }, fmtTime(l.ms)), h('span', { class: 'msg' }, l.line))))
      : h('div', { class: 'sub' }, 'No log lines carry this trace id. ', h('a', { href: `/logs?${new URLSearchParams({ q: sel })}`, 'data-nav': '' }, 'Open in Logs')));
  }).catch((e) => clear(logs, h('div', { class: 'sub' }, 'Logs unavailable: ' + e.message)));
  return null;
}

export async function mount(root, ctx) {
  const m = /^\/traces\/([0-9a-fA-F]{1,32})$/.exec(ctx.path);
  if (m) return traceView(root, ctx, m[1].toLowerCase());
  return searchPage(root, ctx);
}

