// One dashboard panel: its card, its one request, and its drawing (time series, stat,
// gauge, bar, table, logs).
//
// One round trip per panel: a panel with several PromQL targets sends them as one query,
// `label_replace(A, "__tt_q", "0", "", "") or label_replace(B, "__tt_q", "1", "", "")`, and
// splits the answer by that label; each target keeps its own legend.
import { h, svg, icon, labelChips } from './dom.js';
import { prom, loki } from './api.js';
import { Chart, fromMatrix, lastValue, PALETTE } from './chart.js';
import { fmt, legendOf, fmtTime } from './format.js';
import { stepFor, fmtDurationShort } from './time.js';

export const TYPES = [['timeseries', 'Time series'], ['stat', 'Stat'], ['gauge', 'Gauge'], ['bar', 'Bar gauge'], ['table', 'Table'], ['logs', 'Logs']];
const HEIGHTS = { timeseries: 250, stat: 130, gauge: 170, bar: 220, table: 260, logs: 320 };

// $var, ${var}, $__interval, $__rate_interval and $__range in a query.
export function interpolate(expr, vars, step, rangeMs) {
  const rate = Math.max(4 * 15000, step + 15000);
  const builtins = { __interval: fmtDurationShort(step), __rate_interval: fmtDurationShort(Math.ceil(rate / 1000) * 1000),
    __range: fmtDurationShort(Math.max(1000, Math.round(rangeMs / 1000) * 1000)) };
  return expr.replace(/\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z0-9_]+)/g, (m, a, b) => {
    const k = a || b;
    if (k in builtins) return builtins[k];
    if (vars && k in vars) return vars[k];
    return m;
  });
}

// Several PromQL targets as one query (see the module comment).
export function combine(exprs) {
  if (exprs.length === 1) return exprs[0];
  return exprs.map((e, i) => `label_replace((${e}), "__tt_q", "${i}", "", "")`).join(' or ');
}

export function thresholdColor(v, thresholds, fallback) {
  let c = fallback;
  for (const t of [...(thresholds || [])].sort((a, b) => a.value - b.value)) if (v >= t.value) c = t.color;
  return cssColor(c);
}
export function cssColor(c) {
  const map = { red: '--crit', orange: '--warn', yellow: '--warn', green: '--ok', blue: '--info' };
  if (!map[c]) return c;
  return getComputedStyle(document.documentElement).getPropertyValue(map[c]).trim();
}

export class Panel {
  // def: the panel's JSON; opts: {onZoom, onEdit, onExplore, editable}
  constructor(def, opts = {}) {
    this.def = def;
    this.opts = opts;
    const width = def.width || 12;
    this.el = h('section', { class: 'card panel', style: { gridColumn: `span ${width}` }, dataset: { panel: def.id ?? '' } });
    const actions = h('div', { class: 'actions' },
      opts.onExplore && h('button', { class: 'icon', type: 'button', title: 'Open in Explore', 'aria-label': 'Open in Explore', onclick: () => opts.onExplore(this) }, icon('explore')),
      opts.onEdit && h('button', { class: 'icon', type: 'button', title: 'Edit panel', 'aria-label': 'Edit panel', onclick: () => opts.onEdit(this) }, icon('edit')),
      opts.onRemove && h('button', { class: 'icon', type: 'button', title: 'Remove panel', 'aria-label': 'Remove panel', onclick: () => opts.onRemove(this) }, icon('trash')));
    this.titleEl = h('h3', { title: def.description || def.title || '' }, def.title || '');
    this.body = h('div', { class: 'panel-body', style: { height: (def.height || HEIGHTS[def.type] || 240) + 'px' } });
    this.el.append(h('div', { class: 'panel-head' }, this.titleEl, actions), this.body);
    this.chart = null;
    this.abort = null;
  }

  destroy() {
    if (this.abort) this.abort.abort();
    if (this.chart) this.chart.destroy();
  }

  message(text, error = false) {
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    this.body.replaceChildren(h('div', { class: 'panel-msg' + (error ? ' error' : '') }, text));
  }

  // Fetches and draws for [start, end] with `vars`; resolves when drawn.
  async load(start, end, vars = {}) {
    if (this.abort) this.abort.abort();
    const ac = new AbortController();
    this.abort = ac;
    const def = this.def;
    const targets = (def.targets || []).filter((t) => t.expr && t.expr.trim() && !t.hide);
    if (!targets.length) { this.message('No query yet: edit the panel to add one'); return; }
    const width = this.body.clientWidth || 600;
    const step = stepFor(end - start, width);
    const exprs = targets.map((t) => interpolate(t.expr, vars, step, end - start));
    const lang = targets[0].lang || (def.type === 'logs' ? 'logql' : 'promql');
    const spin = h('div', { class: 'loading', title: 'Loading' });
    this.body.append(spin);
    try {
      if (lang === 'logql') {
        if (def.type === 'logs') {
          const data = await loki.queryRange(exprs[0], start, end, { limit: def.limit || 200, signal: ac.signal });
          if (ac.signal.aborted) return;
          this.drawLogs(data);
        } else {
          const data = await loki.queryRange(exprs[0], start, end, { step, signal: ac.signal });
          if (ac.signal.aborted) return;
          this.draw(data, targets, start, end, step);
        }
        return;
      }
      const q = combine(exprs);
      const instant = def.type === 'gauge' || def.type === 'bar' || def.type === 'table';
      const data = instant ? await prom.query(q, end, ac.signal) : await prom.queryRange(q, start, end, step, ac.signal);
      if (ac.signal.aborted) return;
      this.draw(data, targets, start, end, step);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.message(e.missing && lang === 'logql' ? 'Logs are not available on this server yet' : e.message, true);
    } finally {
      spin.remove();
    }
  }

  // Splits a combined answer back into targets and names each series by its legend.
  seriesOf(data, targets) {
    const result = data.resultType === 'scalar' ? [{ metric: {}, value: data.result }] : data.result || [];
    const target = (m) => targets[Number(m.__tt_q ?? 0)] || targets[0];
    const clean = (m) => { const c = { ...m }; delete c.__tt_q; return c; };
    if (data.resultType === 'matrix') {
      return fromMatrix(result, (m) => legendOf(clean(m), target(m).legend)).map((s) => ({ ...s, metric: clean(s.metric) }));
    }
    return result.map((r) => {
      const m = clean(r.metric);
      const v = parseFloat(r.value[1]);
      return { name: legendOf(m, target(r.metric).legend), metric: m, ts: new Float64Array([r.value[0] * 1000]), vs: new Float64Array([v]) };
    });
  }

  draw(data, targets, start, end, step) {
    const def = this.def;
    const series = this.seriesOf(data, targets);
    if (!series.length) { this.message('No data'); return; }
    if (def.type === 'timeseries' || !def.type) return this.drawChart(series, start, end, step);
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    const vals = series.map((s) => ({ name: s.name, metric: s.metric, v: lastValue(s.vs) }));
    if (def.type === 'stat') return this.drawStat(vals);
    if (def.type === 'gauge') return this.drawGauge(vals);
    if (def.type === 'bar') return this.drawBars(vals);
    if (def.type === 'table') return this.drawTable(vals);
    this.message(`Cannot draw panel type ${def.type}`, true);
  }

  drawChart(series, start, end, step) {
    const def = this.def;
    if (!this.chart) {
      this.body.replaceChildren();
      const legendRoom = series.length > 1 ? 40 : 0;
      const height = (def.height || HEIGHTS.timeseries) - 16 - legendRoom;
      this.chart = new Chart(this.body, { height: Math.max(80, height), unit: def.unit, stacked: !!def.stacked, fill: def.fill !== false,
        thresholds: def.thresholds, min: def.min, max: def.max, onZoom: this.opts.onZoom });
    } else {
      this.chart.setOptions({ unit: def.unit, stacked: !!def.stacked, thresholds: def.thresholds, min: def.min, max: def.max });
    }
    this.chart.setData(series, start, end, step);
  }

  drawStat(vals) {
    const def = this.def;
    const shown = vals.slice(0, 12);
    const color = (v) => thresholdColor(v, def.thresholds, def.thresholds && def.thresholds.length ? 'green' : 'var(--fg)');
    this.body.replaceChildren(h('div', { class: 'stats' }, shown.map((s) => h('div', { class: 'stat' },
      h('div', { class: 'big', style: { color: color(s.v) } }, fmt(s.v, def.unit, def.decimals)),
      vals.length > 1 ? h('div', { class: 'lbl' }, s.name) : null))));
  }

  drawGauge(vals) {
    const def = this.def;
    const max = def.max ?? (def.unit === 'percent' ? 100 : def.unit === 'percentunit' ? 1 : Math.max(...vals.map((v) => v.v), ...(def.thresholds || []).map((t) => t.value), 1));
    const min = def.min ?? 0;
    const arc = (frac) => {
      const a = Math.PI * (1 - Math.max(0, Math.min(1, frac)));
      return [60 + 48 * Math.cos(a), 62 - 48 * Math.sin(a)];
    };
    const track = getComputedStyle(document.documentElement).getPropertyValue('--surface-2').trim();
    const items = vals.slice(0, 8).map((s) => {
      const frac = (s.v - min) / (max - min || 1);
      const [x, y] = arc(frac);
      const col = thresholdColor(s.v, def.thresholds, 'green');
      return h('div', { class: 'gauge' }, svg('svg', { viewBox: '0 0 120 76' },
        svg('path', { d: 'M12 62 A48 48 0 0 1 108 62', fill: 'none', stroke: track, 'stroke-width': '10', 'stroke-linecap': 'round' }),
        Number.isNaN(frac) ? null : svg('path', { d: `M12 62 A48 48 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}`, fill: 'none', stroke: col, 'stroke-width': '10', 'stroke-linecap': 'round' }),
        svg('text', { x: '60', y: '54', 'text-anchor': 'middle', 'font-size': '17', 'font-weight': '600', fill: 'currentColor' }, fmt(s.v, def.unit, def.decimals))),
      h('div', { class: 'lbl', title: s.name }, vals.length > 1 ? s.name : ''));
    });
    this.body.replaceChildren(h('div', { class: 'gauges' }, items));
  }

  drawBars(vals) {
    const def = this.def;
    const sorted = [...vals].sort((a, b) => (b.v || 0) - (a.v || 0));
    const max = def.max ?? (def.unit === 'percent' ? 100 : def.unit === 'percentunit' ? 1 : Math.max(...sorted.map((s) => s.v || 0), 1e-12));
    this.body.replaceChildren(h('div', { class: 'bars' }, sorted.map((s, i) => h('div', { class: 'bar-row' },
      h('span', { class: 'n', title: s.name }, s.name),
      h('span', { class: 'track' }, h('span', { class: 'fill', style: { display: 'block', width: Math.max(0, Math.min(100, (s.v / max) * 100)).toFixed(1) + '%',
        background: def.thresholds && def.thresholds.length ? thresholdColor(s.v, def.thresholds, 'green') : PALETTE[i % PALETTE.length] } })),
      h('span', { class: 'v' }, fmt(s.v, def.unit, def.decimals))))));
  }

  drawTable(vals) {
    const def = this.def;
    const cols = [...new Set(vals.flatMap((s) => Object.keys(s.metric)))].filter((c) => !(def.hideColumns || []).includes(c));
    cols.sort((a, b) => (a === '__name__' ? -1 : b === '__name__' ? 1 : a.localeCompare(b)));
    let sortCol = def.sortBy || 'Value', desc = def.sortDesc ?? true;
    const tbody = h('tbody');
    const fill = () => {
      const rows = [...vals].sort((a, b) => {
        const x = sortCol === 'Value' ? a.v : a.metric[sortCol] ?? '', y = sortCol === 'Value' ? b.v : b.metric[sortCol] ?? '';
        const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
        return desc ? -c : c;
      }).slice(0, def.limit || 500);
      tbody.replaceChildren(...rows.map((r) => h('tr', null, cols.map((c) => h('td', null, r.metric[c] ?? '')),
        h('td', { class: 'num', style: def.thresholds && def.thresholds.length ? { color: thresholdColor(r.v, def.thresholds, 'var(--fg)') } : null }, fmt(r.v, def.unit, def.decimals)))));
    };
    const head = h('tr', null, [...cols, 'Value'].map((c) => h('th', { class: 'sortable' + (c === 'Value' ? ' num' : ''), onclick: () => {
      if (sortCol === c) desc = !desc; else { sortCol = c; desc = c === 'Value'; }
      fill();
    } }, (def.columnNames && def.columnNames[c]) || c)));
    fill();
    this.body.replaceChildren(h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl' }, h('thead', null, head), tbody)));
  }

  drawLogs(data) {
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    const lines = [];
    for (const s of data.result || []) for (const [ts, line] of s.values || []) lines.push({ ts: Number(ts.slice(0, -6)), line, labels: s.stream });
    lines.sort((a, b) => b.ts - a.ts);
    if (!lines.length) { this.message('No log lines'); return; }
    this.body.replaceChildren(h('div', { class: 'tbl-wrap loglines' }, lines.slice(0, this.def.limit || 200).map((l) => h('div', { class: 'logline' },
      h('div', { class: 'l', title: Object.entries(l.labels || {}).map(([k, v]) => `${k}="${v}"`).join(' ') },
        h('span', { class: 'lvl ' + (l.labels && (l.labels.level || l.labels.detected_level) || '') }), h('span', { class: 'ts' }, fmtTime(l.ts)), h('span', { class: 'msg' }, l.line))))));
  }
}

export { labelChips };
