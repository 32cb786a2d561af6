// Audit (/audit, admins): who did what, from the audit log in the reserved tenant _audit.
// Filters (range, action, who) live in the URL, so a filtered view can be shared.
import { h, clear } from '../lib/dom.js';
import { auth } from '../lib/api.js';
import { fmtTime } from '../lib/format.js';

export const title = 'Audit';

const RANGES = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
const LIMIT = 1000;

const details = (e) => Object.entries(e).filter(([k]) => !['t', 'action', 'who'].includes(k))
  .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');

export async function mount(root, ctx) {
  const range = RANGES[ctx.params.get('range')] ? ctx.params.get('range') : '24h';
  const action = ctx.params.get('action') || '';
  const who = ctx.params.get('who') || '';
  const go = (change) => {
    const p = new URLSearchParams({ range, action, who, ...change });
    for (const [k, v] of [...p]) if (!v) p.delete(k);
    ctx.nav(`/audit?${p}`);
  };
  const body = h('div', { class: 'panel-msg' }, 'Loading…');
  const rangeSel = h('select', { 'aria-label': 'Time range', onchange: () => go({ range: rangeSel.value }) },
    Object.keys(RANGES).map((r) => h('option', { value: r, selected: r === range }, `last ${r}`)));
  const actionSel = h('select', { 'aria-label': 'Action', onchange: () => go({ action: actionSel.value }) },
    h('option', { value: '' }, 'every action'));
  const whoInput = h('input', { type: 'search', placeholder: 'who contains…', value: who, 'aria-label': 'Who' });
  root.append(h('section', { class: 'card card-body' },
    h('div', { class: 'toolbar' }, h('h2', null, 'Audit log'), rangeSel, actionSel,
      h('form', { onsubmit: (e) => { e.preventDefault(); go({ who: whoInput.value.trim() }); } }, whoInput)),
    h('div', { class: 'sub' }, 'Logins, user, token and receiver changes, reloads, silences, dashboards and every refusal (403). Secrets are never recorded.'),
    body));

  let events;
  try {
    events = await auth.audit(LIMIT, RANGES[range]);
  } catch (e) {
    clear(body, h('div', { class: 'panel-msg error' }, e.message));
    return;
  }
  for (const a of [...new Set(events.map((e) => e.action))].sort()) actionSel.append(h('option', { value: a, selected: a === action }, a));
  if (action && !events.some((e) => e.action === action)) actionSel.append(h('option', { value: action, selected: true }, action));
  const shown = events.filter((e) => (!action || e.action === action) && (!who || String(e.who).includes(who)));
  clear(body, shown.length
    ? h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl' },
      h('thead', null, h('tr', null, ['Time', 'Action', 'Who', 'Details'].map((x) => h('th', null, x)))),
      h('tbody', null, shown.map((e) => h('tr', null, h('td', null, fmtTime(e.t)), h('td', { class: 'mono' }, e.action),
        h('td', { class: 'mono' }, e.who), h('td', { class: 'sub' }, details(e)))))))
    : h('div', { class: 'sub' }, `Nothing recorded in the last ${range}${action || who ? ' that matches' : ''}.`),
  events.length >= LIMIT ? h('div', { class: 'sub' }, `The newest ${LIMIT} events; narrow the range for older ones.`) : null);
}
