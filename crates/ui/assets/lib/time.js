// Time ranges as the URL carries them ("now-1h" .. "now", or milliseconds), query steps,
// time-axis ticks, and the time-range / auto-refresh picker.
import { h } from './dom.js';
import { fmtTime } from './format.js';

export const QUICK = [['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['30m', 'Last 30 minutes'], ['1h', 'Last 1 hour'],
  ['3h', 'Last 3 hours'], ['6h', 'Last 6 hours'], ['12h', 'Last 12 hours'], ['24h', 'Last 24 hours'], ['2d', 'Last 2 days'], ['7d', 'Last 7 days']];
export const REFRESH = [['', 'Off'], ['5s', '5s'], ['10s', '10s'], ['30s', '30s'], ['1m', '1m'], ['5m', '5m'], ['15m', '15m']];

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000, y: 31536000000 };

// "1h30m" → ms; null when not a duration.
export function parseDuration(s) {
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
  let total = 0, seen = '', m;
  while ((m = re.exec(s))) { total += parseFloat(m[1]) * UNIT_MS[m[2]]; seen += m[0]; }
  return seen === s ? total : null;
}

export function fmtDurationShort(ms) {
  for (const [u, v] of [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]]) {
    if (ms >= v && ms % v === 0) return ms / v + u;
  }
  return Math.round(ms / 1000) + 's';
}

// One end of a range: "now", "now-15m", milliseconds, or an ISO date.
export function resolve(t, now = Date.now()) {
  if (t == null || t === '' || t === 'now') return now;
  const m = /^now-(.+)$/.exec(t);
  if (m) { const d = parseDuration(m[1]); if (d != null) return now - d; }
  if (/^\d+$/.test(t)) return Number(t);
  const d = Date.parse(t);
  return Number.isNaN(d) ? now : d;
}

export function rangeLabel(from, to) {
  if ((to || 'now') === 'now') {
    const m = /^now-(.+)$/.exec(from || '');
    const q = m && QUICK.find(([k]) => k === m[1]);
    if (q) return q[1];
    if (m) return 'Last ' + m[1];
  }
  return `${fmtTime(resolve(from))} → ${fmtTime(resolve(to))}`;
}

const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

// The query step for a range drawn `width` pixels wide: about one point per 2 pixels, at
// least `min` (the scrape interval), rounded to a step people recognise.
export function stepFor(rangeMs, width = 1000, min = 15000) {
  const raw = Math.max(min, rangeMs / Math.max(50, width / 2), rangeMs / 11000);
  return NICE_STEPS.find((s) => s >= raw) || Math.ceil(raw / 86400000) * 86400000;
}

const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800]
  .map((s) => s * 1000);

// Tick positions for a time axis `width` pixels wide: aligned to round local times, one per
// ~110 px; midnight ticks show the date.
export function timeTicks(start, end, width) {
  const span = end - start;
  const want = Math.max(2, Math.floor(width / 110));
  const step = TICK_STEPS.find((s) => span / s <= want) || TICK_STEPS[TICK_STEPS.length - 1];
  const tz = new Date(start).getTimezoneOffset() * 60000;
  const first = Math.ceil((start - tz) / step) * step + tz;
  const out = [];
  const pad = (n) => String(n).padStart(2, '0');
  for (let t = first; t <= end; t += step) {
    const d = new Date(t);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
    let label;
    if (step >= 86400000 || (midnight && span > 86400000 / 2)) label = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    else if (step < 60000) label = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    else label = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    out.push({ t, label });
  }
  return out;
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

// The picker: a button showing the range, a menu with quick ranges and a custom from/to,
// and an auto-refresh select. `state` is {from, to, refresh}; `onChange(next)` gets a copy.
export function picker(state, onChange, { refresh = true } = {}) {
  const menu = h('div', { class: 'menu', hidden: true });
  const btn = h('button', { type: 'button', class: 'range-btn', 'aria-haspopup': 'true', title: 'Time range',
    onclick: () => { menu.hidden = !menu.hidden; if (!menu.hidden) fromIn.focus(); } }, '◷ ', rangeLabel(state.from, state.to));
  const quick = h('div', { class: 'quick' }, QUICK.filter(([k]) => k !== '5m' || true).map(([k, label]) =>
    h('button', { type: 'button', 'aria-pressed': String(state.from === 'now-' + k && (state.to || 'now') === 'now'),
      onclick: () => { menu.hidden = true; onChange({ ...state, from: 'now-' + k, to: 'now' }); } }, label)));
  const fromIn = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(resolve(state.from)), 'aria-label': 'From' });
  const toIn = h('input', { type: 'datetime-local', step: '1', value: toLocalInput(resolve(state.to)), 'aria-label': 'To' });
  const apply = h('button', { type: 'button', class: 'primary', onclick: () => {
    const f = new Date(fromIn.value).getTime(), t = new Date(toIn.value).getTime();
    if (!(f < t)) { fromIn.setCustomValidity('must be before To'); fromIn.reportValidity(); return; }
    menu.hidden = true;
    onChange({ ...state, from: String(f), to: String(t) });
  } }, 'Apply');
  menu.append(quick, h('div', { class: 'custom' }, h('h3', null, 'Custom range'),
    h('label', { class: 'field' }, 'From', fromIn), h('label', { class: 'field' }, 'To', toIn), apply));
  document.addEventListener('click', (e) => { if (!wrap.contains(e.target)) menu.hidden = true; });
  const wrap = h('div', { class: 'picker' }, btn, menu);
  const parts = [wrap];
  if (refresh) {
    const sel = h('select', { 'aria-label': 'Auto-refresh', title: 'Auto-refresh',
      onchange: () => onChange({ ...state, refresh: sel.value }) },
    REFRESH.map(([v, label]) => h('option', { value: v, selected: (state.refresh || '') === v }, v ? '⟳ ' + label : '⟳ Off')));
    parts.push(sel);
  }
  parts.push(h('button', { type: 'button', class: 'icon', title: 'Refresh now', 'aria-label': 'Refresh now',
    onclick: () => onChange({ ...state }) }, '↻'));
  return h('div', { class: 'toolbar' }, parts);
}
