// Explore (/explore): one PromQL query, as a graph or a table, over a range or at an instant.
// Everything on screen is in the URL: q, mode, view, from, to, unit, stacked.
import { h, clear, labelChips } from '../lib/dom.js';
import { prom } from '../lib/api.js';
import { editor } from '../lib/promql.js';
import { Chart, fromMatrix, lastValue } from '../lib/chart.js';
import { fmt, legendOf, UNITS } from '../lib/format.js';
import { picker, resolve, stepFor } from '../lib/time.js';
import { Panel, interpolate } from '../lib/panel.js';

export const title = 'Explore';

export async function mount(root, ctx) {
  const p = ctx.params;
  const st = {
    q: p.get('q') || '', mode: p.get('mode') === 'instant' ? 'instant' : 'range', view: p.get('view') === 'table' ? 'table' : 'graph',
    from: p.get('from') || 'now-1h', to: p.get('to') || 'now', refresh: p.get('refresh') || '', unit: p.get('unit') || '', stacked: p.get('stacked') === '1',
  };
  const url = () => {
    const u = new URLSearchParams();
    if (st.q) u.set('q', st.q);
    if (st.mode !== 'range') u.set('mode', st.mode);
    if (st.view !== 'graph') u.set('view', st.view);
    if (st.from !== 'now-1h') u.set('from', st.from);
    if (st.to !== 'now') u.set('to', st.to);
    if (st.unit) u.set('unit', st.unit);
    if (st.stacked) u.set('stacked', '1');
    const s = u.toString();
    return '/explore' + (s ? '?' + s : '');
  };
  const push = (replace = false) => ctx.nav(url(), replace, true);

  let chart = null, abort = null, timer = 0;
  const result = h('div', { class: 'card card-body', style: { minHeight: '200px' } });
  const info = h('div', { class: 'sub' });
  const ed = editor({ value: st.q, lang: 'promql', onRun: (v) => { st.q = v.trim(); push(); run(); }, range: () => [resolve(st.from), resolve(st.to)] });
  const seg = (key, options) => h('div', { class: 'seg', role: 'group' }, options.map(([v, label]) => h('button', { type: 'button', 'aria-pressed': String(st[key] === v),
    onclick: (e) => { st[key] = v; for (const b of e.target.parentNode.children) b.setAttribute('aria-pressed', String(b === e.target)); push(); run(); } }, label)));
  const unitSel = h('select', { 'aria-label': 'Unit', onchange: () => { st.unit = unitSel.value; push(true); run(); } },
    UNITS.map(([v, l]) => h('option', { value: v, selected: st.unit === v }, v ? l : 'Unit: none')));
  const stacked = h('input', { type: 'checkbox', checked: st.stacked, onchange: () => { st.stacked = stacked.checked; push(true); run(); } });
  const toolbar = h('div', { class: 'toolbar' });
  const renderPicker = () => clear(toolbar, picker(st, (n) => { Object.assign(st, n); push(); renderPicker(); run(); setTimer(); }));
  const setTimer = () => {
    clearInterval(timer);
    const ms = { '5s': 5e3, '10s': 1e4, '30s': 3e4, '1m': 6e4, '5m': 3e5, '15m': 9e5 }[st.refresh];
    if (ms) timer = setInterval(() => { if (!document.hidden) run(); }, ms);
  };
  renderPicker();
  setTimer();
  const format = h('button', { type: 'button', title: 'Pretty-print the query with the server\'s formatter', onclick: async () => {
    try { ed.value = await prom.formatQuery(ed.value); } catch (e) { ed.showError(e.message); }
  } }, 'Format');
  clear(root,
    h('div', { class: 'head' }, h('h1', null, 'Explore'), toolbar),
    h('div', { class: 'card card-body', style: { marginBottom: '12px' } },
      h('div', { class: 'query-row' }, ed.el, h('button', { type: 'button', class: 'primary', onclick: () => { st.q = ed.value.trim(); push(); run(); } }, 'Run')),
      h('div', { class: 'toolbar', style: { marginTop: '10px' } }, seg('mode', [['range', 'Range'], ['instant', 'Instant']]), seg('view', [['graph', 'Graph'], ['table', 'Table']]),
        unitSel, h('label', { class: 'check' }, stacked, 'Stacked'), format, h('span', { class: 'spacer' }), info)),
    result);

  async function run() {
    if (abort) abort.abort();
    const q = st.q.trim();
    if (!q) {
      if (chart) { chart.destroy(); chart = null; }
      clear(result, h('div', { class: 'empty' }, h('b', null, 'Type a query and press Enter'), 'Metric names, functions, labels and their values complete as you type.'));
      info.textContent = '';
      return;
    }
    abort = new AbortController();
    const start = resolve(st.from), end = resolve(st.to);
    const width = result.clientWidth || 1000;
    const step = stepFor(end - start, width);
    const expr = interpolate(q, {}, step, end - start);
    const t0 = performance.now();
    try {
      const data = st.mode === 'range' ? await prom.queryRange(expr, start, end, step, abort.signal) : await prom.query(expr, end, abort.signal);
      const took = Math.round(performance.now() - t0);
      ed.showError('');
      show(data, start, end, step, took);
    } catch (e) {
      if (e.name === 'AbortError') return;
      ed.showError(e.message);
      if (chart) { chart.destroy(); chart = null; }
      clear(result, h('div', { class: 'panel-msg error' }, e.message));
      info.textContent = '';
    }
  }

  function show(data, start, end, step, took) {
    const rt = data.resultType;
    let n = 0, points = 0;
    if (rt === 'matrix') { n = data.result.length; points = data.result.reduce((a, r) => a + r.values.length, 0); }
    else if (rt === 'vector') { n = data.result.length; points = n; }
    else { n = 1; points = 1; }
    info.textContent = `${n} series · ${points} points${st.mode === 'range' ? ` · step ${step / 1000}s` : ''} · ${took} ms`;
    if (rt === 'scalar' || rt === 'string') {
      if (chart) { chart.destroy(); chart = null; }
      clear(result, h('div', { class: 'stat' }, h('div', { class: 'big' }, rt === 'scalar' ? fmt(parseFloat(data.result[1]), st.unit) : data.result[1]), h('div', { class: 'lbl' }, rt)));
      return;
    }
    if (!data.result.length) {
      if (chart) { chart.destroy(); chart = null; }
      clear(result, h('div', { class: 'empty' }, h('b', null, 'Empty result'), 'No series match this query in the chosen range.'));
      return;
    }
    if (rt === 'matrix' && st.view === 'graph') {
      const series = fromMatrix(data.result, (m) => legendOf(m));
      if (!chart) {
        clear(result);
        chart = new Chart(result, { height: 380, unit: st.unit, stacked: st.stacked, fill: false,
          onZoom: (a, b) => { st.from = String(a); st.to = String(b); push(); renderPicker(); run(); } });
      } else chart.setOptions({ unit: st.unit, stacked: st.stacked });
      chart.setData(series, start, end, step);
      return;
    }
    if (chart) { chart.destroy(); chart = null; }
    if (rt === 'vector' && st.view === 'graph') {
      const panel = new Panel({ type: 'bar', unit: st.unit, height: Math.min(600, 40 + data.result.length * 20) }, {});
      panel.drawBars(data.result.map((r) => ({ name: legendOf(r.metric), metric: r.metric, v: parseFloat(r.value[1]) })));
      clear(result, panel.body);
      return;
    }
    // tables
    const rows = rt === 'matrix'
      ? fromMatrix(data.result, (m) => legendOf(m)).map((s) => {
        const vals = Array.from(s.vs).filter((v) => !Number.isNaN(v));
        return { metric: s.metric, cells: [lastValue(s.vs), Math.min(...vals), Math.max(...vals), vals.reduce((a, b) => a + b, 0) / vals.length, vals.length] };
      })
      : data.result.map((r) => ({ metric: r.metric, cells: [parseFloat(r.value[1])] }));
    const heads = rt === 'matrix' ? ['Last', 'Min', 'Max', 'Mean', 'Points'] : ['Value'];
    clear(result, h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl' },
      h('thead', null, h('tr', null, h('th', null, 'Series'), heads.map((x) => h('th', { class: 'num' }, x)))),
      h('tbody', null, rows.slice(0, 1000).map((r) => h('tr', null,
        h('td', null, h('span', { class: 'mono' }, r.metric.__name__ || ''), ' ', labelChips(r.metric, ['__name__'])),
        r.cells.map((c, i) => h('td', { class: 'num' }, heads[i] === 'Points' ? c : fmt(c, st.unit)))))))),
    rows.length > 1000 ? h('div', { class: 'sub' }, `showing 1000 of ${rows.length} series`) : null);
  }

  run();
  if (!st.q) ed.focus();
  return { unmount: () => { clearInterval(timer); if (abort) abort.abort(); if (chart) chart.destroy(); } };
}
