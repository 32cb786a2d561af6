// Units and number formatting shared by charts, stats and tables.
// Units: '' (plain), 'short', 'percent' (0-100), 'percentunit' (0-1), 'bytes', 'decbytes',
// 'bytes/s', 'bits/s', 'seconds', 'ms', 'ops/s', 'reqps', 'celsius', 'hertz'.

export const UNITS = [
  ['', 'None'], ['short', 'Short (k, M, G)'], ['percent', 'Percent (0-100)'], ['percentunit', 'Percent (0.0-1.0)'],
  ['bytes', 'Bytes (IEC)'], ['decbytes', 'Bytes (SI)'], ['bytes/s', 'Bytes/s'], ['bits/s', 'Bits/s'],
  ['seconds', 'Seconds'], ['ms', 'Milliseconds'], ['ops/s', 'Ops/s'], ['reqps', 'Requests/s'], ['celsius', '°C'], ['hertz', 'Hertz'],
];

const SI = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, ''], [1e-3, 'm'], [1e-6, 'µ'], [1e-9, 'n']];
const IEC = [[2 ** 50, 'PiB'], [2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'], [1, 'B']];
const DEC = [[1e15, 'PB'], [1e12, 'TB'], [1e9, 'GB'], [1e6, 'MB'], [1e3, 'kB'], [1, 'B']];
const DUR = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's'], [1e-3, 'ms'], [1e-6, 'µs'], [1e-9, 'ns']];

function pick(table, mag) {
  for (const [div, suf] of table) if (mag >= div) return [div, suf];
  return table[table.length - 1];
}

// The divisor and suffix for values up to `mag` (absolute) in `unit`.
export function scaleFor(mag, unit) {
  mag = Math.abs(mag) || 0;
  switch (unit) {
    case 'percent': return [1, '%'];
    case 'percentunit': return [0.01, '%'];
    case 'bytes': { const [d, s] = pick(IEC, mag); return [d, ' ' + s]; }
    case 'decbytes': { const [d, s] = pick(DEC, mag); return [d, ' ' + s]; }
    case 'bytes/s': { const [d, s] = pick(IEC, mag); return [d, ' ' + s + '/s']; }
    case 'bits/s': { const [d, s] = pick(SI.slice(0, 5), mag); return [d, ' ' + s + 'b/s']; }
    case 'seconds': { const [d, s] = pick(DUR, mag); return [d, ' ' + s]; }
    case 'ms': { const [d, s] = pick(DUR, mag / 1000); return [d * 1000, ' ' + s]; }
    case 'celsius': return [1, ' °C'];
    case 'hertz': { const [d, s] = pick(SI.slice(0, 5), mag); return [d, ' ' + s + 'Hz']; }
    case 'ops/s': case 'reqps': case 'short': {
      const [d, s] = pick(SI, mag || 1);
      const tail = unit === 'ops/s' ? ' ops/s' : unit === 'reqps' ? ' req/s' : '';
      return [d, (s ? ' ' + s : '') + tail];
    }
    default: {
      if (mag >= 1e4 || (mag > 0 && mag < 1e-3)) { const [d, s] = pick(SI, mag); return [d, s]; }
      return [1, ''];
    }
  }
}

function trim(s) {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

// One value, for tooltips, stats and tables.
export function fmt(v, unit = '', digits) {
  if (v == null || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const [div, suf] = scaleFor(v, unit);
  const x = v / div;
  const a = Math.abs(x);
  const d = digits ?? (a === 0 ? 0 : a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  return trim(x.toFixed(d)) + suf;
}

// About `n` round tick values covering [min, max], labelled with one shared scale.
export function ticks(min, max, n, unit = '') {
  if (!(max > min)) { max = min + 1; }
  const [div, suf] = scaleFor(Math.max(Math.abs(min), Math.abs(max)), unit);
  const lo = min / div, hi = max / div;
  const raw = (hi - lo) / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) || 10 * p;
  const dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / p === 2.5 ? 1 : 0));
  const out = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    out.push({ v: t * div, label: trim(t.toFixed(dec)) + suf });
  }
  return out;
}

export function fmtDuration(sec) {
  if (!Number.isFinite(sec)) return '–';
  sec = Math.max(0, Math.round(sec));
  const d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

// "3m ago" for a Date, a millisecond number or an RFC 3339 string.
export function ago(t, now = Date.now()) {
  const ms = typeof t === 'number' ? t : new Date(t).getTime();
  if (!Number.isFinite(ms) || ms <= 0) return '–';
  const s = (now - ms) / 1000;
  return s < 0 ? 'in ' + fmtDuration(-s) : fmtDuration(s) + ' ago';
}

const pad = (n) => String(n).padStart(2, '0');
export function fmtTime(ms, withDate = true) {
  const d = new Date(ms);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
}

export function fmtBytes(b) {
  return fmt(b, 'bytes');
}

// `{{label}}` templates for legends, as Grafana and Prometheus's console templates write them.
export function legendOf(metric, tmpl) {
  if (tmpl) return tmpl.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k) => metric[k] ?? '');
  const name = metric.__name__ || '';
  const rest = Object.entries(metric).filter(([k]) => k !== '__name__' && !k.startsWith('__tt'))
    .map(([k, v]) => `${k}="${v}"`).join(', ');
  return rest ? `${name}{${rest}}` : name || '{}';
}
