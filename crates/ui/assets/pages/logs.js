// Logs (/logs): a LogQL box with label completion, a histogram of matching lines, the
// lines with their labels and parsed fields, context around a line, and live tail (Loki's
// /loki/api/v1/tail websocket). State in the URL: q, from, to.
import { h, clear, labelChips, toast } from '../lib/dom.js';
import { loki } from '../lib/api.js';
import { editor } from '../lib/promql.js';
import { Chart, fromMatrix } from '../lib/chart.js';
import { fmtTime } from '../lib/format.js';
import { picker, resolve, stepFor } from '../lib/time.js';

export const title = 'Logs';

// Fields of a line: JSON object keys, else logfmt pairs.
export function parseFields(line) {
  const t = line.trim();
  if (t.startsWith('{')) { try { const o = JSON.parse(t); if (o && typeof o === 'object') return Object.entries(o).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]); } catch { /* not JSON */ } }
  const out = [];
  const re = /([a-zA-Z_][\w.-]*)=("((?:\\.|[^"\\])*)"|\S*)/g;
  let m;
  while ((m = re.exec(t))) out.push([m[1], m[3] != null ? m[3].replace(/\\"/g, '"') : m[2]]);
  return out.length >= 2 ? out : [];
}

const levelOf = (labels, line) => {
  const l = (labels.level || labels.detected_level || labels.severity || '').toLowerCase();
  if (l) return l;
  const m = /\b(error|err|warn|warning|info|debug|fatal|crit)\b/i.exec(line.slice(0, 120));
  return m ? m[1].toLowerCase().replace(/^err$/, 'error') : '';
};

// The trace a line belongs to: its trace_id (or traceId) label, metadata or field.
export function traceOf(l, fields) {
  const all = { ...l.labels, ...(l.parsed || {}), ...Object.fromEntries(fields) };
  const id = all.trace_id || all.traceId || all.traceID || '';
  return /^[0-9a-fA-F]{16,32}$/.test(id) ? id.toLowerCase() : '';
}

const isMetricQuery = (q) => !/^\s*\{/.test(q);
const selectorOf = (labels) => '{' + Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ') + '}';

export async function mount(root, ctx) {
  const p = ctx.params;
  const st = { q: p.get('q') || '', from: p.get('from') || 'now-1h', to: p.get('to') || 'now', refresh: '' };
  const url = () => {
    const u = new URLSearchParams();
    if (st.q) u.set('q', st.q);
    if (st.from !== 'now-1h') u.set('from', st.from);
    if (st.to !== 'now') u.set('to', st.to);
    return '/logs' + (u.toString() ? '?' + u : '');
  };
  const hist = h('div', { class: 'hist' });
  const lines = h('div', { class: 'loglines' });
  const info = h('div', { class: 'sub' });
  const toolbar = h('div', { class: 'toolbar' });
  let chart = null, ws = null, abort = null;
  const ed = editor({ value: st.q, lang: 'logql', onRun: (v) => { st.q = v.trim(); ctx.nav(url(), false, true); run(); }, range: () => [resolve(st.from), resolve(st.to)] });
  const tailBtn = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => (ws ? stopTail() : startTail()) }, '▶ Live');
  const renderPicker = () => clear(toolbar, picker(st, (n) => { Object.assign(st, n); ctx.nav(url(), false, true); renderPicker(); run(); }, { refresh: false }), tailBtn);
  renderPicker();
  clear(root, h('div', { class: 'head' }, h('h1', null, 'Logs'), toolbar),
    h('div', { class: 'card card-body', style: { marginBottom: '12px' } }, h('div', { class: 'query-row' }, ed.el,
      h('button', { type: 'button', class: 'primary', onclick: () => { st.q = ed.value.trim(); ctx.nav(url(), false, true); run(); } }, 'Run'))),
    h('div', { class: 'card card-body' }, h('div', { class: 'toolbar' }, h('h2', { style: { margin: 0 } }, 'Matching lines'), h('span', { class: 'spacer' }), info), hist, lines));

  try { await loki.labels(resolve(st.from), resolve(st.to)); } catch (e) {
    clear(lines, h('div', { class: 'empty' }, h('b', null, e.missing ? 'Logs are not available on this server yet' : 'Cannot reach the logs API'), e.missing ? 'No Loki API (/loki/api/v1) here.' : e.message));
    hist.remove();
    return null;
  }

  function lineEl(l, cls = '') {
    const row = h('div', { class: 'logline ' + cls });
    const head = h('div', { class: 'l', onclick: () => {
      const open = row.querySelector('.detail');
      if (open) { open.remove(); return; }
      // The server's parsed labels and metadata when it sent them apart, else the line's own fields.
      const fields = l.parsed && Object.keys(l.parsed).length ? Object.entries(l.parsed) : parseFields(l.line);
      row.append(h('div', { class: 'detail' }, h('div', null, h('h3', null, 'Labels'), labelChips(l.labels)),
        fields.length ? h('div', null, h('h3', null, 'Parsed fields'), h('dl', { class: 'kv' }, fields.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]))) : null,
        h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'small', onclick: (e) => { e.stopPropagation(); context(l, row); } }, 'Show context'),
          traceOf(l, fields) ? h('a', { class: 'small', href: `/traces/${traceOf(l, fields)}`, 'data-nav': '', onclick: (e) => e.stopPropagation() }, 'View trace') : null,
          h('button', { type: 'button', class: 'small', onclick: (e) => { e.stopPropagation(); navigator.clipboard && navigator.clipboard.writeText(l.line).then(() => toast('Copied')); } }, 'Copy line'))));
    } }, h('span', { class: 'lvl ' + levelOf({ ...l.labels, ...(l.parsed || {}) }, l.line) }), h('span', { class: 'ts' }, fmtTime(l.ms)), h('span', { class: 'msg' }, l.line));
    row.append(head);
    return row;
  }

  const flatten = (data) => {
    const out = [];
    for (const s of data.result || []) {
      for (const [ts, line, extra] of s.values || []) {
        const parsed = extra ? { ...(extra.structuredMetadata || {}), ...(extra.parsed || {}) } : null;
        out.push({ ns: ts, ms: Number(ts.slice(0, -6)), line, labels: s.stream || {}, parsed });
      }
    }
    return out;
  };

  // Ten lines before and after, from the same stream.
  async function context(l, row) {
    const sel = selectorOf(l.labels);
    try {
      const [before, after] = await Promise.all([
        loki.queryRange(sel, l.ms - 3600e3, l.ms, { limit: 11, direction: 'backward' }),
        loki.queryRange(sel, l.ms, l.ms + 3600e3, { limit: 11, direction: 'forward' })]);
      const b = flatten(before).filter((x) => x.ns !== l.ns).sort((x, y) => y.ms - x.ms).slice(0, 10);
      const a = flatten(after).filter((x) => x.ns !== l.ns).sort((x, y) => x.ms - y.ms).slice(0, 10);
      const box = h('div', { class: 'ctx' }, a.reverse().map((x) => lineEl(x, 'context')), lineEl(l, 'anchor'), b.map((x) => lineEl(x, 'context')));
      row.replaceWith(box);
    } catch (e) { toast(e.message, true); }
  }

  async function run() {
    stopTail();
    if (abort) abort.abort();
    const q = st.q.trim();
    if (!q) { clear(lines, h('div', { class: 'empty' }, h('b', null, 'Type a LogQL query'), 'For example {job="varlogs"} |= "error". Labels and values complete as you type.')); info.textContent = ''; return; }
    abort = new AbortController();
    const start = resolve(st.from), end = resolve(st.to);
    const step = stepFor(end - start, 600, 1000);
    try {
      if (isMetricQuery(q)) {
        const data = await loki.queryRange(q, start, end, { step, signal: abort.signal });
        drawHist(data, start, end, step);
        clear(lines);
        info.textContent = `${(data.result || []).length} series`;
        return;
      }
      const stepS = Math.max(1, Math.round(step / 1000)) + 's';
      const [data, counts] = await Promise.all([
        loki.queryRange(q, start, end, { limit: 500, signal: abort.signal, categorize: true }),
        loki.queryRange(`sum(count_over_time(${q} [${stepS}]))`, start, end, { step, signal: abort.signal }).catch(() => null)]);
      ed.showError('');
      if (counts) drawHist(counts, start, end, step);
      const all = flatten(data).sort((a, b) => b.ms - a.ms);
      info.textContent = `${all.length}${all.length >= 500 ? '+' : ''} lines`;
      clear(lines, all.length ? all.map((l) => lineEl(l)) : h('div', { class: 'empty' }, 'No lines match in this range.'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      ed.showError(e.message);
      clear(lines);
    }
  }

  function drawHist(data, start, end, step) {
    const series = fromMatrix(data.result || [], () => 'lines');
    if (!chart) chart = new Chart(hist, { height: 90, legend: false, fill: true, unit: 'short', onZoom: (a, b) => { st.from = String(a); st.to = String(b); ctx.nav(url(), false, true); renderPicker(); run(); } });
    chart.setData(series, start, end, step);
  }

  function startTail() {
    const q = ed.value.trim();
    if (!q || isMetricQuery(q)) { toast('Live tail needs a log query such as {job="app"}', true); return; }
    clear(lines);
    ws = new WebSocket(loki.tailUrl(q, Date.now() - 60e3));
    tailBtn.setAttribute('aria-pressed', 'true');
    tailBtn.textContent = '■ Stop';
    info.textContent = 'live';
    ws.onmessage = (ev) => {
      let msg; try { msg = JSON.parse(ev.data); } catch { return; }
      const got = [];
      for (const s of msg.streams || []) for (const [ts, line] of s.values || []) got.push({ ns: ts, ms: Number(ts.slice(0, -6)), line, labels: s.stream || {} });
      got.sort((a, b) => b.ms - a.ms);
      lines.prepend(...got.map((l) => lineEl(l)));
      while (lines.children.length > 1000) lines.lastChild.remove();
    };
    ws.onclose = () => stopTail();
  }

  function stopTail() {
    if (!ws) return;
    const w = ws; ws = null;
    w.onclose = null;
    w.close();
    tailBtn.setAttribute('aria-pressed', 'false');
    tailBtn.textContent = '▶ Live';
    info.textContent = '';
  }

  run();
  return { unmount: () => { stopTail(); if (abort) abort.abort(); if (chart) chart.destroy(); } };
}
