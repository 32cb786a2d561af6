// The query editor for PromQL and LogQL: a growing textarea with completion of metric
// names, functions, label names and label values (all from the server's APIs, cached per
// page), and syntax errors shown under it as you type (PromQL: the server's own parser via
// /api/v1/format_query, so the editor never disagrees with the engine).
import { h } from './dom.js';
import { prom, loki } from './api.js';

export const FUNCTIONS = ['abs', 'absent', 'absent_over_time', 'avg_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min',
  'count_over_time', 'day_of_month', 'day_of_week', 'delta', 'deriv', 'exp', 'floor', 'histogram_quantile', 'holt_winters', 'hour',
  'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10', 'log2', 'max_over_time',
  'min_over_time', 'minute', 'month', 'predict_linear', 'present_over_time', 'quantile_over_time', 'rate', 'resets', 'round',
  'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt', 'stddev_over_time', 'sum_over_time', 'time', 'timestamp', 'vector', 'year'];
export const AGGREGATIONS = ['sum', 'avg', 'min', 'max', 'count', 'count_values', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile'];
const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless'];
const LOGQL_WORDS = ['json', 'logfmt', 'regexp', 'pattern', 'unpack', 'line_format', 'label_format', 'unwrap', 'rate', 'count_over_time',
  'bytes_over_time', 'bytes_rate', 'sum', 'avg', 'topk', 'by', 'without'];
const DURATIONS = ['1m', '5m', '10m', '15m', '30m', '1h', '$__rate_interval', '$__interval'];

// Caches shared by every editor on a page; cleared on navigation.
const cache = new Map();
export function resetCompletionCache() { cache.clear(); }
function cached(key, f) {
  if (!cache.has(key)) cache.set(key, f().catch(() => []));
  return cache.get(key);
}

// What is being typed at the cursor: {kind: 'metric'|'label'|'value'|'duration'|'none', word, from, metric, label}
export function context(text, pos, lang = 'promql') {
  const before = text.slice(0, pos);
  // inside a string?
  let inStr = false, strStart = -1;
  for (let i = 0; i < before.length; i++) {
    const ch = before[i];
    if (ch === '\\' && inStr) { i++; continue; }
    if (ch === '"' || ch === '`') { inStr = !inStr; strStart = i; }
  }
  const brace = before.lastIndexOf('{'), close = before.lastIndexOf('}');
  const inBraces = brace > close;
  const metricBefore = (at) => { const m = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(text.slice(0, at)); return m ? m[1] : ''; };
  if (inStr) {
    if (!inBraces) return { kind: 'none' };
    const m = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(0, strStart));
    if (!m) return { kind: 'none' };
    const word = before.slice(strStart + 1);
    return { kind: 'value', label: m[1], word, from: strStart + 1, metric: lang === 'promql' ? metricBefore(brace) : '', selector: before.slice(brace, strStart - m[0].length + m[1].length) };
  }
  const wm = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  const word = wm ? wm[0] : '';
  const from = pos - word.length;
  if (inBraces) {
    const inner = before.slice(brace + 1, from);
    if (/^(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(\\.|[^"\\])*"\s*,)*\s*$/.test(inner)) {
      return { kind: 'label', word, from, metric: lang === 'promql' ? metricBefore(brace) : '' };
    }
    return { kind: 'none' };
  }
  if (lang === 'logql') return word ? { kind: 'keyword', word, from } : { kind: 'none' };
  const bm = /\[([0-9a-z_$]*)$/.exec(before);
  if (bm && before.lastIndexOf('[') > before.lastIndexOf(']')) return { kind: 'duration', word: bm[1], from: pos - bm[1].length };
  const grp = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)$/.exec(before);
  if (grp) return { kind: 'label', word, from, metric: '' };
  if (!word || /[0-9.]$/.test(before) && !wm) return { kind: 'none' };
  return { kind: 'metric', word, from };
}

async function suggestions(ctx, lang, range) {
  const w = ctx.word.toLowerCase();
  const rank = (items) => {
    const pre = [], sub = [];
    for (const it of items) {
      const t = it.text.toLowerCase();
      if (t === w) continue;
      if (t.startsWith(w)) pre.push(it); else if (w && t.includes(w)) sub.push(it);
    }
    return pre.concat(sub).slice(0, 60);
  };
  if (ctx.kind === 'metric') {
    const [names, meta] = await Promise.all([cached('names', () => prom.labelValues('__name__')), cached('meta', () => prom.metadata().catch(() => ({})))]);
    const items = names.map((n) => ({ text: n, kind: (meta[n] && meta[n][0] && meta[n][0].type) || 'metric' }));
    const fns = FUNCTIONS.map((f) => ({ text: f, kind: 'function', suffix: '(' }))
      .concat(AGGREGATIONS.map((f) => ({ text: f, kind: 'aggregation', suffix: '(' })), KEYWORDS.map((k) => ({ text: k, kind: 'keyword' })));
    if (!w) return [];
    return rank(fns.concat(items));
  }
  if (ctx.kind === 'keyword') return rank(LOGQL_WORDS.map((k) => ({ text: k, kind: 'keyword' })));
  if (ctx.kind === 'duration') return rank(DURATIONS.map((d) => ({ text: d, kind: 'range', suffix: ']' }))).concat(ctx.word ? [] : DURATIONS.map((d) => ({ text: d, kind: 'range', suffix: ']' }))).slice(0, 12);
  if (ctx.kind === 'label') {
    const names = lang === 'logql'
      ? await cached('loki-labels', () => loki.labels(range && range[0], range && range[1]))
      : await cached('labels:' + ctx.metric, () => prom.labels(ctx.metric ? [ctx.metric] : undefined));
    return rank(names.filter((n) => n !== '__name__').map((n) => ({ text: n, kind: 'label', suffix: '="' }))).concat(
      w ? [] : names.filter((n) => n !== '__name__').map((n) => ({ text: n, kind: 'label', suffix: '="' }))).slice(0, 60);
  }
  if (ctx.kind === 'value') {
    const vals = lang === 'logql'
      ? await cached('loki-values:' + ctx.label, () => loki.labelValues(ctx.label, range && range[0], range && range[1]))
      : await cached(`values:${ctx.metric}:${ctx.label}`, () => prom.labelValues(ctx.label, ctx.metric ? [ctx.metric] : undefined));
    const items = vals.map((v) => ({ text: v, kind: 'value', suffix: '"' }));
    return w ? rank(items) : items.slice(0, 60);
  }
  return [];
}

let measureCtx;
function textWidth(s, font) {
  measureCtx = measureCtx || document.createElement('canvas').getContext('2d');
  measureCtx.font = font;
  return measureCtx.measureText(s).width;
}

// opts: {value, lang, placeholder, onRun(value), onInput(value), range: () => [start, end]}
export function editor(opts) {
  const lang = opts.lang || 'promql';
  const ta = h('textarea', { rows: 1, spellcheck: false, autocomplete: 'off', 'aria-label': lang === 'logql' ? 'LogQL query' : 'PromQL query',
    placeholder: opts.placeholder || (lang === 'logql' ? '{job="app"} |= "error"' : 'Type a metric name or PromQL expression, e.g. rate(node_cpu_seconds_total[5m])') });
  ta.value = opts.value || '';
  const err = h('div', { class: 'err', role: 'alert' });
  const list = h('div', { class: 'complete', role: 'listbox', hidden: true });
  const root = h('div', { class: 'editor' }, ta, list, err);
  let items = [], sel = 0, ctx = null, seq = 0, checkTimer = 0, checkAbort = null;

  const grow = () => { ta.style.height = 'auto'; ta.style.height = Math.min(240, ta.scrollHeight + 2) + 'px'; };
  const close = () => { list.hidden = true; items = []; };
  const render = () => {
    list.replaceChildren(...items.map((it, i) => h('div', { role: 'option', 'aria-selected': String(i === sel),
      onmousedown: (e) => { e.preventDefault(); sel = i; accept(); } }, h('span', null, it.text), h('span', { class: 'k' }, it.kind))));
    list.hidden = !items.length;
    if (!items.length) return;
    const cs = getComputedStyle(ta);
    const lineStart = ta.value.lastIndexOf('\n', ctx.from - 1) + 1;
    const line = ta.value.slice(0, ctx.from).split('\n').length - 1;
    const x = textWidth(ta.value.slice(lineStart, ctx.from), `${cs.fontSize} ${cs.fontFamily}`) + parseFloat(cs.paddingLeft) - ta.scrollLeft;
    list.style.left = Math.max(0, Math.min(x, ta.clientWidth - 240)) + 'px';
    list.style.top = (parseFloat(cs.paddingTop) + (line + 1) * parseFloat(cs.lineHeight) + 4) + 'px';
    const cur = list.children[sel];
    if (cur) cur.scrollIntoView({ block: 'nearest' });
  };
  const update = async (force) => {
    const my = ++seq;
    ctx = context(ta.value, ta.selectionStart, lang);
    if (ctx.kind === 'none' || (!force && ctx.kind === 'metric' && ctx.word.length < 1)) { close(); return; }
    const got = await suggestions(ctx, lang, opts.range && opts.range());
    if (my !== seq) return;
    items = got; sel = 0; render();
  };
  const accept = () => {
    const it = items[sel]; if (!it) return;
    const v = ta.value, pos = ta.selectionStart;
    let end = pos;
    while (end < v.length && /[a-zA-Z0-9_:]/.test(v[end]) && ctx.kind !== 'value') end++;
    let suffix = it.suffix || '';
    if (suffix && v.slice(end).startsWith(suffix)) suffix = '';
    if (ctx.kind === 'value' && v[end] === '"') suffix = '';
    const ins = it.text + suffix;
    ta.value = v.slice(0, ctx.from) + ins + v.slice(end);
    const caret = ctx.from + ins.length;
    ta.setSelectionRange(caret, caret);
    close(); grow(); changed();
    if (suffix === '="' || suffix === '(') update(true);
  };
  const check = () => {
    clearTimeout(checkTimer);
    if (lang !== 'promql') return;
    checkTimer = setTimeout(async () => {
      const q = ta.value.trim();
      if (checkAbort) checkAbort.abort();
      if (!q || /\$/.test(q)) { showError(''); return; }
      checkAbort = new AbortController();
      try { await prom.formatQuery(q, checkAbort.signal); showError(''); } catch (e) { if (e.name !== 'AbortError' && e.status === 400) showError(e.message); }
    }, 350);
  };
  const showError = (msg) => { err.textContent = msg; root.classList.toggle('bad', !!msg); };
  const changed = () => { check(); if (opts.onInput) opts.onInput(ta.value); };

  ta.addEventListener('input', () => { grow(); changed(); update(false); });
  ta.addEventListener('keydown', (e) => {
    if (!list.hidden && items.length) {
      if (e.key === 'ArrowDown') { sel = (sel + 1) % items.length; render(); e.preventDefault(); return; }
      if (e.key === 'ArrowUp') { sel = (sel - 1 + items.length) % items.length; render(); e.preventDefault(); return; }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey)) { accept(); e.preventDefault(); return; }
      if (e.key === 'Escape') { close(); e.preventDefault(); return; }
    }
    if (e.key === ' ' && e.ctrlKey) { update(true); e.preventDefault(); return; }
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); close(); if (opts.onRun) opts.onRun(ta.value); }
  });
  ta.addEventListener('blur', () => setTimeout(close, 150));
  requestAnimationFrame(grow);
  if (ta.value) check();
  return {
    el: root,
    textarea: ta,
    get value() { return ta.value; },
    set value(v) { ta.value = v; grow(); check(); },
    showError,
    focus() { ta.focus(); },
  };
}
