// Overview (/): the built-in host dashboard, with the firing alerts on top. The dashboard is
// served by /api/v1/dashboards/overview like any other, so "Copy" gives an editable one.
import { h, clear, labelChips } from '../lib/dom.js';
import { prom, dashboards } from '../lib/api.js';
import { DashboardView } from '../lib/dashboard.js';
import { ago } from '../lib/format.js';

export const title = 'Overview';

// Firing alerts from the ALERTS and ALERTS_FOR_STATE series that rule evaluation writes
// (as Prometheus does), in one query: no alerting API needed, one round trip.
async function banner(el) {
  const q = 'label_replace(ALERTS{alertstate="firing"}, "__tt_q", "0", "", "") or label_replace(ALERTS_FOR_STATE, "__tt_q", "1", "", "")';
  let data;
  try { data = await prom.query(q); } catch { return; }
  const since = new Map();
  const key = (m) => JSON.stringify(Object.entries(m).filter(([k]) => !['__name__', '__tt_q', 'alertstate'].includes(k)).sort());
  for (const r of data.result) if (r.metric.__tt_q === '1') since.set(key(r.metric), parseFloat(r.value[1]) * 1000);
  const firing = data.result.filter((r) => r.metric.__tt_q === '0');
  clear(el, firing.slice(0, 8).map((r) => {
    const m = r.metric;
    return h('div', { class: 'alert-line ' + (m.severity || '') },
      h('span', { class: 'badge firing' }, 'firing'), h('span', { class: 'what' }, m.alertname),
      labelChips(m, ['__name__', '__tt_q', 'alertname', 'alertstate']),
      h('span', { class: 'since' }, since.has(key(m)) ? 'since ' + ago(since.get(key(m))) : ''),
      h('a', { href: '/alerts?q=' + encodeURIComponent(m.alertname), 'data-nav': '' }, 'Details'));
  }), firing.length > 8 ? h('a', { href: '/alerts', 'data-nav': '' }, `… and ${firing.length - 8} more firing`) : null);
}

export async function mount(root, ctx) {
  let doc;
  try {
    doc = await dashboards.get('overview');
  } catch (e) {
    clear(root, h('div', { class: 'card empty' }, h('b', null, 'The Overview cannot load'), e.message));
    return null;
  }
  const view = new DashboardView(root, doc, { ...ctx, path: '/', banner, editing: false });
  await view.mount();
  if (!view.varOptions.instance || !view.varOptions.instance.length) {
    view.grid.before(h('div', { class: 'card empty', style: { marginBottom: '12px' } }, h('b', null, 'No host metrics yet'),
      'Telltale shows a host here once it receives node_exporter metrics (node_cpu_seconds_total, node_load1, …): ',
      'from its built-in host collectors, from a scrape of node_exporter, or by remote write.'));
  }
  return { unmount: () => view.unmount() };
}
