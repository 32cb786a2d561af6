// The time-series chart: canvas, time axis with round local-time ticks, a y axis in the
// panel's unit, a hover tooltip with every visible series' value, a legend that toggles
// series, drag to zoom, stacking, thresholds, both themes.
//
// Speed: the plot is drawn once per data/size/theme change on one canvas; hover and drag
// draw only on a second canvas above it. A series with more points than pixels is reduced
// to min/max per pixel column while drawing, so 100 series x 1,000 points (or x 10,000)
// stay a few milliseconds per redraw.
import { h } from './dom.js';
import { fmt, ticks } from './format.js';
import { timeTicks } from './time.js';

export const PALETTE = ['#3b82f6', '#22c55e', '#f59e0b', '#ef4444', '#a855f7', '#06b6d4', '#ec4899', '#84cc16',
  '#f97316', '#14b8a6', '#6366f1', '#eab308', '#8b5cf6', '#10b981', '#e11d48', '#0ea5e9', '#d946ef', '#65a30d',
  '#fb7185', '#2dd4bf'];

const THRESHOLD_COLORS = { red: '--crit', orange: '--warn', yellow: '--warn', green: '--ok', blue: '--info' };
const ZERO_BASED = new Set(['percent', 'percentunit', 'bytes', 'decbytes', 'bytes/s', 'bits/s', 'ops/s', 'reqps']);

let tooltipEl;
let firstChartMarked = false;
function tooltip() {
  if (!tooltipEl) { tooltipEl = h('div', { class: 'tooltip', role: 'tooltip' }); document.body.append(tooltipEl); }
  return tooltipEl;
}

function cssVars() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return { grid: v('--grid'), axis: v('--axis'), fg: v('--fg'), select: v('--select'), surface: v('--surface'),
    font: `11px ${v('--sans') || 'sans-serif'}`, color: (c) => (THRESHOLD_COLORS[c] ? v(THRESHOLD_COLORS[c]) : c) };
}

// First index with ts[i] >= t.
function lowerBound(ts, t) {
  let lo = 0, hi = ts.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (ts[m] < t) lo = m + 1; else hi = m; }
  return lo;
}

export class Chart {
  // opts: {height, unit, stacked, fill, thresholds: [{value, color}], min, max, legend, onZoom(start, end)}
  constructor(container, opts = {}) {
    this.opts = { height: 220, legend: true, ...opts };
    this.series = [];
    this.hidden = new Set();
    this.start = 0; this.end = 1;
    this.root = h('div', { class: 'chart', style: { height: this.opts.height + 'px' } });
    this.base = h('canvas');
    this.over = h('canvas', { class: 'overlay' });
    this.root.append(this.base, this.over);
    this.legendEl = h('div', { class: 'legend' });
    container.append(this.root);
    if (this.opts.legend) container.append(this.legendEl);
    this.bindPointer();
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(this.root);
    this.themeObs = new MutationObserver(() => this.schedule());
    this.themeObs.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  }

  destroy() {
    this.ro.disconnect();
    this.themeObs.disconnect();
    if (tooltipEl) tooltipEl.style.display = 'none';
  }

  // series: [{name, key, ts: Float64Array (ms), vs: Float64Array, color?}]; step in ms (for
  // stacking and gap detection).
  setData(series, start, end, step) {
    this.series = series.map((s, i) => ({ ...s, color: s.color || PALETTE[i % PALETTE.length], key: s.key || s.name }));
    this.start = start; this.end = end; this.step = step || 0;
    const keys = new Set(this.series.map((s) => s.key));
    for (const k of [...this.hidden]) if (!keys.has(k)) this.hidden.delete(k);
    this.renderLegend();
    return this.draw();
  }

  setOptions(o) { Object.assign(this.opts, o); this.schedule(); }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  visible() { return this.series.filter((s) => !this.hidden.has(s.key)); }

  // The y values drawn: the series' own, or running sums when stacked (series share the
  // query's step grid, so points on the same step add up). Cached until the data, the
  // hidden set or the stacking changes, so hovering never recomputes it.
  drawnValues(vis) {
    const key = vis.length + ':' + !!this.opts.stacked;
    if (this.cache && this.cache.key === key && this.cache.series === this.series && this.cache.hidden === this.hiddenVersion) return this.cache.drawn;
    let drawn;
    if (!this.opts.stacked) drawn = vis.map((s) => ({ s, top: s.vs, bottom: null }));
    else {
      let base = Infinity, last = -Infinity;
      for (const s of vis) if (s.ts.length) { base = Math.min(base, s.ts[0]); last = Math.max(last, s.ts[s.ts.length - 1]); }
      const step = this.step || 0;
      const grid = step > 0 && Number.isFinite(base) && (last - base) / step < 1e6;
      const acc = grid ? new Float64Array(Math.round((last - base) / step) + 1) : null;
      const map = grid ? null : new Map();
      drawn = vis.map((s) => {
        const n = s.vs.length, top = new Float64Array(n), bottom = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const v = s.vs[i];
          const k = grid ? Math.round((s.ts[i] - base) / step) : s.ts[i];
          const below = grid ? acc[k] : (map.get(k) || 0);
          bottom[i] = below;
          if (Number.isNaN(v)) { top[i] = NaN; continue; }
          top[i] = below + v;
          if (grid) acc[k] = below + v; else map.set(k, below + v);
        }
        return { s, top, bottom };
      });
    }
    this.cache = { key, series: this.series, hidden: this.hiddenVersion, drawn };
    return drawn;
  }

  layout() {
    const w = this.root.clientWidth || 600, hgt = this.opts.height;
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.base, this.over]) {
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
        c.width = Math.round(w * dpr); c.height = Math.round(hgt * dpr);
        c.style.width = w + 'px'; c.style.height = hgt + 'px';
      }
    }
    return { w, hgt, dpr };
  }

  // Redraws the plot; returns the milliseconds it took.
  draw() {
    const t0 = performance.now();
    const { w, hgt, dpr } = this.layout();
    const ctx = this.base.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const c = cssVars();
    this.colors = c;
    const vis = this.visible();
    const drawn = this.drawnValues(vis);
    const { start, end } = this;

    // y range over what is inside the time range
    let lo = Infinity, hi = -Infinity;
    for (const d of drawn) {
      const a = lowerBound(d.s.ts, start), b = lowerBound(d.s.ts, end + 1);
      for (let i = a; i < b; i++) { const v = d.top[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      if (d.bottom) for (let i = a; i < b; i++) { const v = d.bottom[i]; if (v < lo) lo = v; }
    }
    for (const t of this.opts.thresholds || []) { if (t.value > hi && hi > -Infinity) hi = Math.max(hi, t.value); }
    if (lo === Infinity) { lo = 0; hi = 1; }
    if ((ZERO_BASED.has(this.opts.unit) || this.opts.stacked) && lo > 0) lo = 0;
    if (this.opts.min != null) lo = this.opts.min;
    if (this.opts.max != null) hi = this.opts.max;
    if (hi === lo) { hi = lo + (Math.abs(lo) || 1); if (lo > 0 && !ZERO_BASED.has(this.opts.unit)) lo = 0; }
    const plotH = hgt - 26;
    let yt = ticks(lo, hi, Math.max(2, Math.floor(plotH / 42)), this.opts.unit);
    if (this.opts.min == null && yt.length && yt[0].v > lo) lo = yt[0].v;
    if (this.opts.max == null && yt.length && yt[yt.length - 1].v < hi) {
      const stepV = yt.length > 1 ? yt[1].v - yt[0].v : hi - lo;
      hi = yt[yt.length - 1].v + stepV;
      yt = ticks(lo, hi, Math.max(2, Math.floor(plotH / 42)), this.opts.unit);
    }
    if (yt.length) { lo = Math.min(lo, yt[0].v); hi = Math.max(hi, yt[yt.length - 1].v); }
    ctx.font = c.font;
    const axisW = Math.ceil(Math.max(24, ...yt.map((t) => ctx.measureText(t.label).width))) + 10;
    const P = { x0: axisW, x1: w - 10, y0: 8, y1: 8 + plotH - 8 };
    this.plot = P; this.lo = lo; this.hi = hi;
    const X = (t) => P.x0 + (t - start) / (end - start) * (P.x1 - P.x0);
    const Y = (v) => P.y1 - (v - lo) / (hi - lo) * (P.y1 - P.y0);
    this.X = X; this.Y = Y;

    // grid and axes
    ctx.strokeStyle = c.grid; ctx.lineWidth = 1; ctx.fillStyle = c.axis;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (const t of yt) {
      const y = Math.round(Y(t.v)) + 0.5;
      ctx.moveTo(P.x0, y); ctx.lineTo(P.x1, y);
      ctx.fillText(t.label, P.x0 - 6, y);
    }
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of timeTicks(start, end, P.x1 - P.x0)) {
      const x = Math.round(X(t.t)) + 0.5;
      ctx.moveTo(x, P.y0); ctx.lineTo(x, P.y1);
      ctx.fillText(t.label, x, P.y1 + 6);
    }
    ctx.stroke();

    // series
    ctx.save();
    ctx.beginPath(); ctx.rect(P.x0, P.y0 - 1, P.x1 - P.x0, P.y1 - P.y0 + 2); ctx.clip();
    const gap = this.step ? this.step * 2.5 : Infinity;
    const fill = this.opts.stacked || this.opts.fill;
    ctx.lineWidth = vis.length > 30 ? 1 : 1.5;
    ctx.lineJoin = 'round';
    for (const d of drawn) {
      const { ts } = d.s;
      const a = Math.max(0, lowerBound(ts, start) - 1), b = Math.min(ts.length, lowerBound(ts, end + 1) + 1);
      if (fill) this.fillArea(ctx, d, a, b, X, Y, gap);
      ctx.strokeStyle = d.s.color;
      ctx.beginPath();
      const lone = this.tracePath(ctx, ts, d.top, a, b, X, Y, gap);
      ctx.stroke();
      if (lone.length) {
        ctx.fillStyle = d.s.color;
        ctx.beginPath();
        for (const [x, y] of lone) { ctx.moveTo(x + 2.5, y); ctx.arc(x, y, 2.5, 0, Math.PI * 2); }
        ctx.fill();
      }
    }
    // thresholds
    for (const t of this.opts.thresholds || []) {
      if (t.value < lo || t.value > hi) continue;
      const y = Math.round(Y(t.value)) + 0.5;
      ctx.strokeStyle = c.color(t.color || 'red'); ctx.setLineDash([4, 4]); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(P.x0, y); ctx.lineTo(P.x1, y); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();
    if (!vis.length) {
      ctx.fillStyle = c.axis; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.fillText(this.series.length ? 'All series hidden' : 'No data', (P.x0 + P.x1) / 2, (P.y0 + P.y1) / 2);
    }
    this.lastDrawMs = performance.now() - t0;
    // The benchmark's "time to first chart": the first draw with data on this page load.
    if (!firstChartMarked && drawn.some((d) => d.s.ts.length)) { firstChartMarked = true; performance.mark('telltale:first-chart'); }
    return this.lastDrawMs;
  }

  // Adds the series' line to the current path: breaks at NaN and at gaps longer than 2.5
  // steps; with more points than pixels, keeps each pixel column's first, min, max and last.
  // Returns the points that have no neighbour to join (drawn as dots).
  tracePath(ctx, ts, vs, a, b, X, Y, gap) {
    let pen = false, prevT = -Infinity, run = 0, runX = 0, runY = 0;
    const lone = [];
    const endRun = () => { if (run === 1) lone.push([runX, runY]); run = 0; };
    const dense = (b - a) > (this.plot.x1 - this.plot.x0) * 2;
    let col = NaN, cmin = 0, cmax = 0, clast = 0;
    const flush = () => {
      if (Number.isNaN(col)) return;
      ctx.lineTo(col, Y(cmin)); ctx.lineTo(col, Y(cmax)); ctx.lineTo(col, Y(clast));
    };
    for (let i = a; i < b; i++) {
      const v = vs[i], t = ts[i];
      if (Number.isNaN(v) || !Number.isFinite(v)) { if (dense) flush(); col = NaN; pen = false; endRun(); continue; }
      if (t - prevT > gap) { if (dense) flush(); col = NaN; pen = false; endRun(); }
      prevT = t;
      const x = X(t);
      run++;
      if (!pen) { ctx.moveTo(x, Y(v)); runX = x; runY = Y(v); pen = true; if (dense) { col = Math.round(x); cmin = cmax = clast = v; } continue; }
      if (dense) {
        const cx = Math.round(x);
        if (cx === col) { if (v < cmin) cmin = v; if (v > cmax) cmax = v; clast = v; continue; }
        flush();
        col = cx; cmin = cmax = clast = v;
        ctx.lineTo(x, Y(v));
      } else {
        ctx.lineTo(x, Y(v));
      }
    }
    if (dense) flush();
    endRun();
    return lone;
  }

  fillArea(ctx, d, a, b, X, Y, gap) {
    const { ts } = d.s;
    ctx.fillStyle = d.s.color;
    ctx.globalAlpha = this.opts.stacked ? 0.35 : 0.12;
    let segStart = -1, prevT = -Infinity;
    const close = (end) => {
      if (segStart < 0) return;
      ctx.beginPath();
      ctx.moveTo(X(ts[segStart]), Y(d.top[segStart]));
      for (let i = segStart + 1; i < end; i++) ctx.lineTo(X(ts[i]), Y(d.top[i]));
      for (let i = end - 1; i >= segStart; i--) ctx.lineTo(X(ts[i]), Y(d.bottom ? d.bottom[i] : Math.max(this.lo, 0)));
      ctx.closePath(); ctx.fill();
      segStart = -1;
    };
    for (let i = a; i < b; i++) {
      const v = d.top[i];
      if (Number.isNaN(v) || ts[i] - prevT > gap) close(i);
      prevT = ts[i];
      if (!Number.isNaN(v) && segStart < 0) segStart = i;
    }
    close(b);
    ctx.globalAlpha = 1;
  }

  renderLegend() {
    if (!this.opts.legend) return;
    const el = this.legendEl;
    el.replaceChildren();
    if (this.series.length <= 1 && !this.series.some((s) => s.name)) return;
    for (const s of this.series) {
      const last = lastValue(s.vs);
      const b = h('button', { type: 'button', class: this.hidden.has(s.key) ? 'off' : '', title: s.name + '\nclick: show/hide · ctrl-click: only this',
        onclick: (e) => this.toggle(s.key, e.ctrlKey || e.metaKey) },
      h('span', { class: 'sw', style: { background: s.color } }), h('span', { class: 'name' }, s.name || 'value'),
      Number.isNaN(last) ? null : h('span', { class: 'val' }, fmt(last, this.opts.unit)));
      el.append(b);
    }
  }

  // Click: hide or show one series; ctrl-click: show only it (again: show all).
  toggle(key, only) {
    if (only) {
      const alone = this.series.every((s) => s.key === key || this.hidden.has(s.key)) && !this.hidden.has(key);
      this.hidden = new Set(alone ? [] : this.series.map((s) => s.key).filter((k) => k !== key));
    } else if (this.hidden.has(key)) this.hidden.delete(key);
    else this.hidden.add(key);
    this.hiddenVersion = (this.hiddenVersion || 0) + 1;
    this.renderLegend();
    this.draw();
  }

  bindPointer() {
    const o = this.over;
    let drag = null;
    o.addEventListener('mousemove', (e) => {
      const x = e.offsetX;
      if (drag) { drag.x1 = x; this.drawOverlay(null, drag); return; }
      this.hover(x, e);
    });
    o.addEventListener('mouseleave', () => { if (!drag) this.clearOverlay(); });
    o.addEventListener('mousedown', (e) => { if (e.button === 0) drag = { x0: e.offsetX, x1: e.offsetX }; });
    window.addEventListener('mouseup', () => {
      if (!drag) return;
      const d = drag; drag = null;
      this.clearOverlay();
      if (Math.abs(d.x1 - d.x0) < 5 || !this.opts.onZoom || !this.plot) return;
      const t = (x) => this.start + (Math.min(Math.max(x, this.plot.x0), this.plot.x1) - this.plot.x0) / (this.plot.x1 - this.plot.x0) * (this.end - this.start);
      const a = t(Math.min(d.x0, d.x1)), b = t(Math.max(d.x0, d.x1));
      if (b - a >= 1000) this.opts.onZoom(Math.round(a), Math.round(b));
    });
  }

  clearOverlay() {
    const ctx = this.over.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.over.width, this.over.height);
    tooltip().style.display = 'none';
  }

  drawOverlay(x, sel) {
    const P = this.plot; if (!P) return;
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.over.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.over.width, this.over.height);
    if (sel) {
      ctx.fillStyle = this.colors.select;
      const a = Math.max(P.x0, Math.min(sel.x0, sel.x1)), b = Math.min(P.x1, Math.max(sel.x0, sel.x1));
      ctx.fillRect(a, P.y0, b - a, P.y1 - P.y0);
      tooltip().style.display = 'none';
      return ctx;
    }
    if (x != null) {
      ctx.strokeStyle = this.colors.axis; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, P.y0); ctx.lineTo(Math.round(x) + 0.5, P.y1); ctx.stroke();
      ctx.setLineDash([]);
    }
    return ctx;
  }

  hover(x, e) {
    const P = this.plot;
    if (!P || x < P.x0 || x > P.x1 || !this.series.length) { this.clearOverlay(); return; }
    const t = this.start + (x - P.x0) / (P.x1 - P.x0) * (this.end - this.start);
    const vis = this.visible();
    const drawn = this.drawnValues(vis);
    let best = null;
    const rows = [];
    for (const d of drawn) {
      const ts = d.s.ts;
      if (!ts.length) continue;
      let i = lowerBound(ts, t);
      if (i >= ts.length || (i > 0 && t - ts[i - 1] < ts[i] - t)) i--;
      if (i < 0) continue;
      if (this.step && Math.abs(ts[i] - t) > this.step * 1.5) continue;
      const v = d.s.vs[i];
      if (Number.isNaN(v)) continue;
      rows.push({ s: d.s, v, y: d.top[i], t: ts[i] });
      if (!best || Math.abs(ts[i] - t) < Math.abs(best - t)) best = ts[i];
    }
    const ctx = this.drawOverlay(best != null ? this.X(best) : x);
    for (const r of rows) {
      ctx.fillStyle = r.s.color;
      ctx.beginPath(); ctx.arc(this.X(r.t), this.Y(r.y), 3, 0, Math.PI * 2); ctx.fill();
    }
    const tip = tooltip();
    if (!rows.length) { tip.style.display = 'none'; return; }
    rows.sort((a, b) => b.v - a.v);
    const MAX = 24;
    const body = h('tbody', null, rows.slice(0, MAX).map((r) => h('tr', null,
      h('td', null, h('span', { class: 'sw', style: { background: r.s.color } })),
      h('td', { class: 'n' }, r.s.name || 'value'), h('td', { class: 'v' }, fmt(r.v, this.opts.unit)))));
    if (rows.length > MAX) body.append(h('tr', null, h('td'), h('td', { class: 'n' }, `… ${rows.length - MAX} more`), h('td')));
    const d = new Date(best);
    tip.replaceChildren(h('div', { class: 't' }, d.toLocaleString()), h('table', null, body));
    tip.style.display = 'block';
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = e.clientX + 16, top = e.clientY + 12;
    if (left + tw > window.innerWidth - 8) left = e.clientX - tw - 16;
    if (top + th > window.innerHeight - 8) top = Math.max(8, window.innerHeight - th - 8);
    tip.style.left = left + 'px'; tip.style.top = top + 'px';
  }
}

export function lastValue(vs) {
  for (let i = vs.length - 1; i >= 0; i--) if (!Number.isNaN(vs[i])) return vs[i];
  return NaN;
}

// Prometheus matrix results → chart series ([[t_seconds, "v"], ...] → typed arrays).
export function fromMatrix(result, nameOf) {
  return result.map((r) => {
    const n = r.values ? r.values.length : 0;
    const ts = new Float64Array(n), vs = new Float64Array(n);
    for (let i = 0; i < n; i++) { ts[i] = r.values[i][0] * 1000; vs[i] = parseFloat(r.values[i][1]); }
    const name = nameOf(r.metric);
    return { name, key: name + '\u0000' + JSON.stringify(r.metric), metric: r.metric, ts, vs };
  });
}
